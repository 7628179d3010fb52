"""``synthetic``: a small embedding CNN trained on oracle renders of the synthetic head.

Identity = the latent ``z`` (which fixes the procedural appearance) plus the FLAME shape of that identity;
training positives are renders of one identity under other cameras, expressions and jaw poses, with
backgrounds randomised so that the background cannot carry identity (see
:mod:`metrics.backbones.train_synthetic`). A second output, trained against non-head images (noise,
backgrounds, scrambled renders), decides ``detected``: images without a head are failures, not embeddings.

Input: uint8 ``(B, 3, H, W)``, resized to 64x64 (bilinear, antialiased), scaled to [-1, 1].
Output: 64-d unit-norm embeddings. Weights are stored in float16 and run in float32; the shipped file is pinned by sha256 (:data:`WEIGHTS_SHA256`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from metrics.backbones.base import IdentityBackbone, as_uint8_nchw
from omnibench.assets import sha256_file as file_sha256
from omnibench.errors import CheckpointError, MissingAssetError
from omnibench.generators.base import checkpoint_format, checkpoint_kind, read_checkpoint

INPUT_SIZE = 64
EMBED_DIM = 64
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "synthetic_id_v1.pt"
WEIGHTS_SHA256 = "257427ce645ae871f6ada2b023a9426cafd8feb6bec1367a4939cd44da2447e4"
# Shipped weights per camera framing (omnibench.cameras.FRAMINGS): the v1 file was trained on v1 renders; on
# ffhq-framed renders it loses identity (oracle id-views 0.787 vs 0.968), so protocols v2 use their own.
PINNED: dict[str, tuple[Path, str]] = {
    "v1": (WEIGHTS_FILE, WEIGHTS_SHA256),
    "ffhq": (WEIGHTS_DIR / "synthetic_id_ffhq.pt", "f652147f53548bab73fd317471467c73228229e012077d761b84dec13708cc6c"),
}
CHECKPOINT_KIND = "omnibench.synthetic-identity"  # the shipped v1 file predates the header and has none


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class EmbedNet(nn.Module):
    """``(B, 3, 64, 64)`` in [-1, 1] -> ``(B, 64)`` unit-norm embeddings."""

    def __init__(self, width: int = 16, dim: int = EMBED_DIM) -> None:
        super().__init__()
        w = width
        self.width = width
        self.features = nn.Sequential(
            _block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 6 * w)
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Linear(6 * w * 2 * 2, dim)
        self.det = nn.Linear(6 * w * 2 * 2, 1)  # "is a rendered head" logit

    def detect_logit(self, x: torch.Tensor) -> torch.Tensor:
        """``(B,)`` logits of "this is a head" (> 0: detected)."""
        return self.det(self.pool(self.features(x)).flatten(1))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.features(x)).flatten(1)
        return nn.functional.normalize(self.head(f), dim=1)


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float ``(B, 3, 64, 64)`` in [-1, 1]."""
    x = images.float() / 255.0
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = nn.functional.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return x * 2.0 - 1.0


class SyntheticBackbone(IdentityBackbone):
    """Embeddings of the shipped (or a given) ``EmbedNet`` checkpoint; CPU, float32, eval mode."""

    dim = EMBED_DIM

    def __init__(self, weights: str | os.PathLike | None = None) -> None:
        """``weights``: None (the shipped ``v1`` file), a framing name of :data:`PINNED` (that framing's
        shipped file, sha256-pinned) or a checkpoint path."""
        pinned = PINNED.get(str(weights or "v1"))
        path = pinned[0] if pinned else Path(weights).expanduser()  # type: ignore[arg-type]
        if not path.is_file():
            raise MissingAssetError(
                f"synthetic identity backbone: weights '{path}' not found; train them with "
                f"'python -m metrics.backbones.train_synthetic --out {path}'"
            )
        sha = file_sha256(path)
        if pinned and sha != pinned[1]:
            raise CheckpointError(
                f"synthetic identity backbone: '{path}' has sha256 {sha}, expected {pinned[1]}; "
                "restore the shipped file or pass your own weights path"
            )
        ckpt = read_checkpoint(path)
        if not isinstance(ckpt, dict) or checkpoint_kind(ckpt) not in (None, CHECKPOINT_KIND) or checkpoint_format(ckpt) not in (None, 1):
            raise CheckpointError(
                f"synthetic identity backbone: '{path}' is not an EmbedNet checkpoint ('{CHECKPOINT_KIND}', format 1)"
            )
        try:
            self.net = EmbedNet(width=int(ckpt.get("width", 16)), dim=int(ckpt.get("dim", EMBED_DIM)))
            self.net.load_state_dict({k: v.float() for k, v in ckpt["state_dict"].items()})
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"synthetic identity backbone: '{path}' is not an EmbedNet checkpoint ({exc})"
            ) from exc
        self.net.eval()
        self.dim = self.net.head.out_features
        self.sha256 = sha
        self.name = "synthetic:" + path.name

    @torch.no_grad()
    def embed(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        arr = torch.from_numpy(as_uint8_nchw(images))
        embs, dets = [], []
        for i in range(arr.shape[0]):  # one image at a time: numbers never depend on the batch size
            f = self.net.pool(self.net.features(preprocess(arr[i : i + 1]))).flatten(1)
            embs.append(nn.functional.normalize(self.net.head(f), dim=1))
            dets.append(self.net.det(f)[:, 0] > 0)
        if not embs:
            return torch.zeros(0, self.dim), torch.zeros(0, dtype=torch.bool)
        det = torch.cat(dets)
        emb = torch.where(det[:, None], torch.cat(embs), torch.zeros(1))
        return emb.float(), det
