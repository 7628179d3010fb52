"""Where the shipped Stage I checkpoint lives (reproduced by the command in docs/reference-model.md)."""

from pathlib import Path

SHIPPED_SDF = Path(__file__).resolve().parent.parent / "checkpoints" / "sdf-tiny.pt"
