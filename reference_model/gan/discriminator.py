"""Dual discriminator (EG3D): the final image and the upsampled raw neural rendering are stacked into 6
channels, so both must agree; camera-conditioned by a projection of the 25 camera values."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class DualDiscriminator(nn.Module):
    def __init__(self, image_res: int, channels: int, c_dim: int = 25) -> None:
        super().__init__()
        n = int(math.log2(image_res)) - 2
        layers: list[nn.Module] = [nn.Conv2d(6, channels, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * 16, channels)
        self.out = nn.Linear(channels, 1)
        self.cmap = nn.Linear(c_dim, channels)

    def forward(self, image: torch.Tensor, image_raw: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1]; returns one logit per sample ``(B,)``."""
        raw = F.interpolate(image_raw, size=image.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([image, raw], dim=1) * 2 - 1
        h = F.leaky_relu(self.fc(self.body(x).flatten(1)), 0.2)
        proj = (h * self.cmap(camera)).sum(1) / math.sqrt(h.shape[1])
        return self.out(h)[:, 0] + proj
