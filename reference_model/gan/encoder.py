"""The control encoder ``E(I) = (beta~, theta~)`` behind ``L_enc``: a small CNN trained first on the
training images and their FLAME labels, then frozen. It predicts the expression (``n_expression``
coefficients) and the neck and jaw axis-angle (pose indices 3:9)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ControlEncoder(nn.Module):
    def __init__(self, n_expression: int, res: int = 64, channels: int = 32) -> None:
        super().__init__()
        self.n_expression, self.res = n_expression, res
        c = channels
        self.body = nn.Sequential(
            nn.Conv2d(3, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )
        self.head = nn.Linear(16 * c, n_expression + 6)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (B, 3, H, W)`` in [0, 1] -> (expression ``(B, E)``, neck+jaw ``(B, 6)``)."""
        x = F.interpolate(image, size=(self.res, self.res), mode="bilinear", align_corners=False) * 2 - 1
        out = self.head(self.body(x))
        return out[:, : self.n_expression], out[:, self.n_expression :]
