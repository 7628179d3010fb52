"""Self-describing Stage I checkpoints.

A checkpoint is a ``torch.save`` dict of plain types and tensors only, written and read through the core's
checkpoint header (:func:`omnibench.generators.base.save_checkpoint`, ``weights_only`` loading that never
unpickles code):
``{"kind": "omnibench.sdf", "format": 1, "config": {...}, "head_model": {"name", "sha256"},
"data_seed", "step", "center", "radius", "state_dict", "optimizer" (optional), "code_version"}``.
"""

from __future__ import annotations

import os
from pathlib import Path

from omnibench import __version__
from omnibench.errors import CheckpointError
from omnibench.generators.base import load_checkpoint, save_checkpoint
from reference_model.sdf.config import SDFConfig
from reference_model.sdf.model import SemanticSDF

KIND = "omnibench.sdf"
FORMAT = 1


def save_sdf(path: str | os.PathLike, model: SemanticSDF, head, step: int, optimizer=None) -> None:
    """Write atomically (:func:`~omnibench.generators.base.save_checkpoint`)."""
    ckpt = {
        "code_version": __version__,
        "config": model.cfg.to_dict(),
        "head_model": {"name": str(getattr(head, "name", "unknown")), "sha256": str(getattr(head, "sha256", ""))},
        "data_seed": model.cfg.seed,
        "step": int(step),
        "center": model.center.detach().cpu(),
        "radius": float(model.radius),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    save_checkpoint(path, KIND, ckpt, FORMAT)


def export_release(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a training checkpoint without its optimiser state (the file Stage II and ``eval-sdf`` need)."""
    ckpt = read_sdf_checkpoint(src)
    ckpt.pop("optimizer", None)
    save_checkpoint(dst, KIND, ckpt, FORMAT)
    return Path(dst)


def read_sdf_checkpoint(path: str | os.PathLike) -> dict:
    return load_checkpoint(path, KIND, (FORMAT,), name="a Stage I SDF", hint="pass a W written by omnibench train sdf")


def load_sdf(path: str | os.PathLike, head=None, device: str = "cpu") -> SemanticSDF:
    """Load W; if ``head`` is given, refuse a checkpoint trained on another head model."""
    ckpt = read_sdf_checkpoint(path)
    if head is not None:
        want = str(getattr(head, "sha256", ""))
        got = ckpt["head_model"]["sha256"]
        if want and got != want:
            raise CheckpointError(
                f"'{path}' was trained on head model '{ckpt['head_model']['name']}' (sha256 {got[:12]}), "
                f"not on '{getattr(head, 'name', '?')}' (sha256 {want[:12]}); retrain with `omnibench train sdf`"
            )
    model = SemanticSDF(SDFConfig.from_dict(ckpt["config"]), ckpt["center"], ckpt["radius"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"'{path}': weights do not match its config ({str(exc).splitlines()[0]})") from None
    model.sdf_checkpoint = ckpt  # provenance for callers
    return model.to(device).eval()
