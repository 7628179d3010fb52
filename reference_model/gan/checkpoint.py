"""Self-describing Stage II checkpoints behind the core's checkpoint header
(:func:`omnibench.generators.base.save_checkpoint` / :func:`~omnibench.generators.base.load_checkpoint`:
``torch.load(weights_only=True)``, never unpickles code).

``{"kind": "omnibench.gan", "format": 1, "code_version", "config", "head_model": {"name", "sha256"},
"sdf": {"sha256", "config", "center", "radius"}, "dataset": {"path", "content_hash"}, "step",
"G_ema": state_dict (includes the frozen W as ``sdf.*``), "E": state_dict | None,
"training": {"G", "D", "opt_g", "opt_d"} (absent in release checkpoints)}``.
The AniFaceGAN-style baseline (``config.method == "anifacegan"``) writes the same layout under its own kind
``omnibench.anifacegan`` (its ``sdf`` entry names the W whose head model it was trained with; G holds no W).
"""

from __future__ import annotations

import os

from omnibench.errors import CheckpointError
from omnibench.generators.base import load_checkpoint, save_checkpoint
from reference_model.gan.config import GANConfig
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.generator import OmniAvatarG

KIND = "omnibench.gan"
KINDS = {"omniavatar": KIND, "anifacegan": "omnibench.anifacegan"}  # config.method -> checkpoint kind
NAMES = {"omniavatar": "an OmniAvatar generator", "anifacegan": "an AniFaceGAN-style generator"}
FORMAT = 1


def save_gan_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write a Stage II checkpoint (header ``kind``/``format`` first, then ``payload``); the kind
    follows ``payload["config"]["method"]``."""
    save_checkpoint(path, KINDS[payload["config"].get("method", "omniavatar")], payload, FORMAT)


def read_gan_checkpoint(path: str | os.PathLike, method: str = "omniavatar") -> dict:
    """Read a checkpoint of ``method``'s kind (:data:`KINDS`); another kind is refused."""
    return load_checkpoint(path, KINDS[method], (FORMAT,), name=NAMES[method],
                           hint="pass a checkpoint written by omnibench train gan"
                                + (" --ablation anifacegan" if method == "anifacegan" else ""))


def checkpoint_method(path: str | os.PathLike) -> str:
    """The ``config.method`` a Stage II checkpoint file was written for, from its header kind (default omniavatar)."""
    from omnibench.generators.base import read_checkpoint_kind

    found = read_checkpoint_kind(path)
    return next((m for m, k in KINDS.items() if k == found), "omniavatar")


def build_generator(cfg: GANConfig, sdf) -> OmniAvatarG:
    """The generator class of ``cfg.method``: :class:`OmniAvatarG` (with ``sdf`` = W) or the AniFaceGAN-style one."""
    if cfg.method == "anifacegan":
        from reference_model.gan.anifacegan import AniFaceGANG

        return AniFaceGANG(cfg)
    if cfg.method != "omniavatar":
        raise CheckpointError(f"unknown generator method '{cfg.method}' (omniavatar or anifacegan)")
    return OmniAvatarG(cfg, sdf)


def build_sdf_from_meta(meta: dict):
    from reference_model.sdf.config import SDFConfig
    from reference_model.sdf.model import SemanticSDF

    return SemanticSDF(SDFConfig.from_dict(meta["config"]), meta["center"], meta["radius"])


def load_generator(path: str | os.PathLike, head=None, device: str = "cpu",
                   method: str = "omniavatar") -> tuple[OmniAvatarG, ControlEncoder | None, dict]:
    """(G_ema, E, checkpoint metadata) of a checkpoint of ``method``'s kind; refuses a checkpoint made for
    another head model."""
    ckpt = read_gan_checkpoint(path, method)
    if head is not None and ckpt["head_model"]["sha256"] and ckpt["head_model"]["sha256"] != str(getattr(head, "sha256", "")):
        raise CheckpointError(
            f"'{path}' was trained for head model '{ckpt['head_model']['name']}' "
            f"(sha256 {ckpt['head_model']['sha256'][:12]}), not '{getattr(head, 'name', '?')}'"
        )
    cfg = GANConfig.from_dict(ckpt["config"])
    sdf = build_sdf_from_meta(ckpt["sdf"]) if cfg.use_sdf else None
    G = build_generator(cfg, sdf)
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
