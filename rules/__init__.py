"""Built-in rules, registered through the same entry point group as third-party plugins."""
