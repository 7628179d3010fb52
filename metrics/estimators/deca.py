"""``deca``: DECA's coarse encoder ``E_flame`` rebuilt from a torchvision ResNet-50 trunk and our own two-layer
head, loading the user's ``deca_model.tar`` strictly (docs/metrics-control.md; checked against yfeng95/DECA).

Network: ``encoder`` = torchvision ResNet-50 without ``fc`` (2048 features after global average pooling),
``layers`` = Linear(2048, 1024), ReLU, Linear(1024, 236): exactly DECA's ``E_flame`` key set (322 entries).
The 236 outputs split as DECA's ``param_list``: shape 0:100, texture 100:150, expression 150:200, pose 200:206
(global axis-angle, jaw axis-angle), camera 206:209 (``s, tx, ty``), light 209:236. Crop: DECA's ``kpt68`` rule
(landmark box x 1.1, side x 1.25, similarity to 224, RGB in [0, 1]); DECA detects with FAN, used here when
its weights are present, else dlib (a documented deviation, recorded in ``describe()``). DECA's codes refer
to real FLAME 2020 (shape 100, expression 50): on the synthetic head they are not meaningful.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from metrics.estimators.crop_encoder import CropEncoderEstimator, user_weights
from metrics.estimators.ortho import DECA_CROP
from metrics.estimators.safe_load import load_strict, read_torch_file
from omnibench.errors import CheckpointError

DECA_CODE = {"shape": (0, 100), "tex": (100, 150), "expression": (150, 200), "global": (200, 203),
             "jaw": (203, 206), "cam": (206, 209), "light": (209, 236)}
DECA_N_CODE = 236


class ResnetCoder(nn.Module):
    """DECA's ``ResnetEncoder`` layout: ``encoder.*`` (torchvision ResNet-50, no fc) + ``layers.{0,2}`` (MLP)."""

    def __init__(self, n_out: int) -> None:
        super().__init__()
        from torchvision.models import resnet50

        self.encoder = resnet50(weights=None)
        self.encoder.fc = nn.Identity()
        self.layers = nn.Sequential(nn.Linear(2048, 1024), nn.ReLU(), nn.Linear(1024, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: RGB ``(B, 3, 224, 224)`` in [0, 1] -> ``(B, n_out)``."""
        return self.layers(self.encoder(x))


def split_deca_code(code: torch.Tensor) -> dict[str, torch.Tensor]:
    """``(B, 236)`` -> DECA's named parts (:data:`DECA_CODE`)."""
    if code.shape[1] != DECA_N_CODE:
        raise CheckpointError(f"DECA code must have {DECA_N_CODE} values, got {code.shape[1]}")
    return {k: code[:, a:b] for k, (a, b) in DECA_CODE.items()}


def load_e_flame(path: Path, state: dict | None = None, what: str | None = None) -> ResnetCoder:
    """``E_flame`` from a ``deca_model.tar`` (or the given ``state``), strictly."""
    what = what or f"DECA weights '{path}'"
    if state is None:
        blob, _ = read_torch_file(path, "DECA weights")
        if not isinstance(blob, dict) or "E_flame" not in blob:
            keys = sorted(blob)[:5] if isinstance(blob, dict) else type(blob).__name__
            raise CheckpointError(f"{what} has no 'E_flame' entry (found {keys}): is it DECA's deca_model.tar?")
        state, what = blob["E_flame"], f"{what} E_flame"
    net = ResnetCoder(DECA_N_CODE)
    load_strict(net, state, what)
    return net


class DecaEstimator(CropEncoderEstimator):
    """DECA's coarse encoder on the user's ``deca_model.tar`` (options: :class:`CropEncoderEstimator`)."""

    name = "deca"
    version = 1
    crop_rule = DECA_CROP
    n_shape = 100
    n_expression = 50

    def weights_path(self, weights: str | None) -> Path:
        return user_weights(weights, "deca_model.tar", "DECA", "DECA's deca_model.tar from its release")

    def load_network(self, path: Path) -> nn.Module:
        return load_e_flame(path)

    def encode(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        return split_deca_code(self.net(crops))
