"""The scoring core: configuration, storage, the rule registry, the pipeline and the read layer."""
