"""Release checkpoints of the reference model that ship with omnibench (see docs/reference-model.md)."""
