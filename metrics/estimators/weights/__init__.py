"""Shipped regressor weights (``*.pt`` + ``*.pt.json`` sidecars pinning sha256, head model and command)."""
