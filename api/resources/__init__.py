"""One resource class per route; each receives its services in ``__init__``."""
