"""Self-describing Stage II checkpoints behind the core's checkpoint header
(:func:`omnibench.generators.base.save_checkpoint` / :func:`~omnibench.generators.base.load_checkpoint`:
``torch.load(weights_only=True)``, never unpickles code).

``{"kind": "omnibench.gan", "format": 1, "code_version", "config", "head_model": {"name", "sha256"},
"sdf": {"sha256", "config", "center", "radius"}, "dataset": {"path", "content_hash"}, "step",
"G_ema": state_dict (includes the frozen W as ``sdf.*``), "E": state_dict | None,
"training": {"G", "D", "opt_g", "opt_d"} (absent in release checkpoints)}``.
"""

from __future__ import annotations

import os

from omnibench.errors import CheckpointError
from omnibench.generators.base import load_checkpoint, save_checkpoint
from reference_model.gan.config import GANConfig
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.generator import OmniAvatarG

KIND = "omnibench.gan"
FORMAT = 1


def save_gan_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write a Stage II checkpoint (header ``kind``/``format`` first, then ``payload``)."""
    save_checkpoint(path, KIND, payload, FORMAT)


def read_gan_checkpoint(path: str | os.PathLike) -> dict:
    return load_checkpoint(path, KIND, (FORMAT,), name="an OmniAvatar generator",
                           hint="pass a checkpoint written by omnibench train gan")


def build_sdf_from_meta(meta: dict):
    from reference_model.sdf.config import SDFConfig
    from reference_model.sdf.model import SemanticSDF

    return SemanticSDF(SDFConfig.from_dict(meta["config"]), meta["center"], meta["radius"])


def load_generator(path: str | os.PathLike, head=None, device: str = "cpu") -> tuple[OmniAvatarG, ControlEncoder | None, dict]:
    """(G_ema, E, checkpoint metadata); refuses a checkpoint made for another head model."""
    ckpt = read_gan_checkpoint(path)
    if head is not None and ckpt["head_model"]["sha256"] and ckpt["head_model"]["sha256"] != str(getattr(head, "sha256", "")):
        raise CheckpointError(
            f"'{path}' was trained for head model '{ckpt['head_model']['name']}' "
            f"(sha256 {ckpt['head_model']['sha256'][:12]}), not '{getattr(head, 'name', '?')}'"
        )
    cfg = GANConfig.from_dict(ckpt["config"])
    sdf = build_sdf_from_meta(ckpt["sdf"]) if cfg.use_sdf else None
    G = OmniAvatarG(cfg, sdf)
    try:
        G.load_state_dict(ckpt["G_ema"])
    except RuntimeError as exc:
        raise CheckpointError(f"'{path}': weights do not match its config ({str(exc).splitlines()[0]})") from None
    E = None
    if ckpt.get("E") is not None:
        try:
            E = ControlEncoder.from_state_dict(cfg.n_expression, ckpt["E"])
        except RuntimeError as exc:
            raise CheckpointError(f"'{path}': encoder weights do not match ({str(exc).splitlines()[0]})") from None
        E.eval().to(device)
    meta = {k: v for k, v in ckpt.items() if k not in ("G_ema", "E", "training")}
    return G.eval().to(device), E, meta
