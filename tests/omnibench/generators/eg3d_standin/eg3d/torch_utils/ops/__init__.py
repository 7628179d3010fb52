"""Stand-in custom ops: each module's ``_init()`` would compile a CUDA plugin (tests only)."""
