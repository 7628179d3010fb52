"""Self-describing Stage I checkpoints.

A checkpoint is a ``torch.save`` dict of plain types and tensors only (loaded with
``weights_only=True``, so loading never unpickles code):
``{"kind": "omnibench.sdf", "format": 1, "config": {...}, "head_model": {"name", "sha256"},
"data_seed", "step", "center", "radius", "state_dict", "optimizer" (optional), "code_version"}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from omnibench import __version__
from omnibench.errors import CheckpointError
from omnibench.fileio import atomic_torch_save
from reference_model.sdf.config import SDFConfig
from reference_model.sdf.model import SemanticSDF

KIND = "omnibench.sdf"
FORMAT = 1


def save_sdf(path: str | os.PathLike, model: SemanticSDF, head, step: int, optimizer=None) -> None:
    """Write atomically (tmp file + rename)."""
    ckpt = {
        "kind": KIND,
        "format": FORMAT,
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
    atomic_torch_save(ckpt, path)


def export_release(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a training checkpoint without its optimiser state (the file Stage II and ``eval-sdf`` need)."""
    ckpt = read_sdf_checkpoint(src)
    ckpt.pop("optimizer", None)
    atomic_torch_save(ckpt, dst)
    return Path(dst)


def read_sdf_checkpoint(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"SDF checkpoint '{p}' does not exist")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
        raise CheckpointError(f"'{p}' is not a readable omnibench checkpoint ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != KIND:
        kind = ckpt.get("kind") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"'{p}' is a '{kind}' checkpoint, not a Stage I SDF ('{KIND}')")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"'{p}': SDF checkpoint format {ckpt.get('format')} is not supported (expected {FORMAT})")
    return ckpt


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
