"""Super-resolution: neural-rendered features ``(B, F, r, r)`` -> RGB ``(B, 3, R, R)`` in [0, 1].

The output is the bilinear upsampling of the raw colour plus a learned residual from the features
(EG3D's super-resolution module, without style modulation). With ``r == R`` it refines at full size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SuperResolution(nn.Module):
    def __init__(self, in_features: int, channels: int, out_res: int) -> None:
        super().__init__()
        self.out_res = out_res
        self.net = nn.Sequential(
            nn.Conv2d(in_features, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 3, 3, padding=1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(feats, size=(self.out_res, self.out_res), mode="bilinear", align_corners=False)
        return (up[:, :3] + self.net(up)).clamp(0, 1)
