"""``smirk``: SMIRK's three encoders built with ``timm`` (``pretrained=False``: nothing is downloaded), loading
the user's ``SMIRK_em1.pt`` strictly (docs/metrics-control.md; checked against georgeretsi/smirk). Needs the
optional extra ``omnibench[smirk]`` (timm).

Network (keys under ``smirk_encoder.``; ``smirk_generator.*``, the neural renderer, is ignored):

* ``pose_encoder``: timm ``tf_mobilenetv3_small_minimal_100`` (``features_only``, last map 576 channels),
  global average pool, ``pose_cam_layers.0`` Linear -> 6 = global axis-angle 3 + orthographic ``(s, tx, ty)``;
* ``shape_encoder``: ``tf_mobilenetv3_large_minimal_100`` (960 channels) -> ``shape_layers.0`` -> 300 shape;
* ``expression_encoder``: the same trunk -> ``expression_layers.0`` -> 55 = expression 50, eyelids 2 (clamped to
  [0, 1]), jaw 3 (the first through ReLU, the other two clamped to +-0.2).

Crop: SMIRK's rule (landmark box, side x 1.4 truncated to an integer, similarity to 224, RGB in [0, 1]) on 68
offline landmarks (SMIRK uses MediaPipe's 478; a documented deviation, recorded in ``describe()``). Mapped to
omnibench: shape 300, expression 50, jaw into ``pose[6:9]``, global pose and camera into the EG3D camera; the
eyelid values have no place in :class:`FlameEstimate` and are dropped. SMIRK's codes refer to FLAME 2020.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from metrics.estimators.crop_encoder import CropEncoderEstimator, user_weights
from metrics.estimators.ortho import SMIRK_CROP
from metrics.estimators.safe_load import load_strict, read_torch_file, sub_state
from omnibench.errors import CheckpointError, MissingAssetError

PARTS = (("pose_encoder", "tf_mobilenetv3_small_minimal_100", "pose_cam_layers", 6),
         ("shape_encoder", "tf_mobilenetv3_large_minimal_100", "shape_layers", 300),
         ("expression_encoder", "tf_mobilenetv3_large_minimal_100", "expression_layers", 55))


def _timm():
    try:
        import timm
    except ImportError:
        raise MissingAssetError("the smirk estimator needs timm: pip install 'omnibench[smirk]'") from None
    return timm


class _Branch(nn.Module):
    """A timm ``features_only`` trunk + global average pooling + one Linear (SMIRK's encoder shape)."""

    def __init__(self, arch: str, head: str, n_out: int) -> None:
        super().__init__()
        self.encoder = _timm().create_model(arch, pretrained=False, features_only=True)
        self.head_name = head
        self.add_module(head, nn.Sequential(nn.Linear(self.encoder.feature_info[-1]["num_chs"], n_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.encoder(x)[-1].mean((2, 3))
        return getattr(self, self.head_name)(feat)


class SmirkNet(nn.Module):
    """SMIRK's encoder: ``pose_encoder``, ``shape_encoder``, ``expression_encoder``."""

    def __init__(self) -> None:
        super().__init__()
        for name, arch, head, n in PARTS:
            self.add_module(name, _Branch(arch, head, n))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """RGB ``(B, 3, 224, 224)`` in [0, 1] -> SMIRK's outputs in omnibench's names."""
        pose_cam = self.pose_encoder(x)
        expr = self.expression_encoder(x)
        jaw = torch.cat([torch.relu(expr[:, 52:53]), expr[:, 53:55].clamp(-0.2, 0.2)], 1)
        return {"global": pose_cam[:, :3], "cam": pose_cam[:, 3:6], "shape": self.shape_encoder(x),
                "expression": expr[:, :50], "eyelids": expr[:, 50:52].clamp(0, 1), "jaw": jaw}


class SmirkEstimator(CropEncoderEstimator):
    """SMIRK's encoder (timm MobileNetV3 trunks) on the user's ``SMIRK_em1.pt``."""

    name = "smirk"
    version = 2  # 2: crop side truncated to an integer, as SMIRK's crop_face
    crop_rule = SMIRK_CROP
    n_shape = 300
    n_expression = 50

    def weights_path(self, weights: str | None) -> Path:
        return user_weights(weights, "SMIRK_em1.pt", "SMIRK", "SMIRK's released SMIRK_em1.pt")

    def load_network(self, path: Path) -> nn.Module:
        blob, _ = read_torch_file(path, "SMIRK weights")
        if not isinstance(blob, dict):
            raise CheckpointError(f"SMIRK weights '{path}' are not a state dict")
        state = sub_state(blob, "smirk_encoder.")
        if not state:
            raise CheckpointError(f"SMIRK weights '{path}' have no smirk_encoder.* entries: is it SMIRK_em1.pt?")
        net = SmirkNet()
        load_strict(net, state, f"SMIRK weights '{path}' smirk_encoder (timm {_timm().__version__})")
        return net

    def encode(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(crops)
