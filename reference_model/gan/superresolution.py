"""Super-resolution: neural-rendered features ``(B, F, r, r)`` -> RGB ``(B, 3, R, R)`` in [0, 1].

The output is the bilinear upsampling of the raw colour plus a learned residual from the features. As in EG3D's
super-resolution blocks, the convolutions are modulated by ``w`` (StyleGAN2 modulation), so the latent reaches
the image directly too (backgrounds and colour the volume does not carry). With ``r == R`` it refines at full
size. ``style=False`` is the plain-convolution variant of checkpoints written before the modulation existed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from reference_model.gan.synthesis import ModulatedConv2d


class SuperResolution(nn.Module):
    def __init__(self, in_features: int, channels: int, out_res: int, w_dim: int, style: bool = True) -> None:
        super().__init__()
        self.out_res, self.style = out_res, style
        if style:
            self.conv0 = ModulatedConv2d(in_features, channels, w_dim)
            self.conv1 = ModulatedConv2d(channels, channels, w_dim)
            self.to_rgb = ModulatedConv2d(channels, 3, w_dim, kernel=1, demodulate=False)
            nn.init.zeros_(self.to_rgb.weight)  # starts as the upsampled raw colour
        else:
            self.net = nn.Sequential(
                nn.Conv2d(in_features, channels, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(channels, 3, 3, padding=1),
            )
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, feats: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``feats (B, F, r, r)``, ``w (B, w_dim)`` -> ``(B, 3, R, R)``."""
        up = F.interpolate(feats, size=(self.out_res, self.out_res), mode="bilinear", align_corners=False)
        if not self.style:
            return (up[:, :3] + self.net(up)).clamp(0, 1)
        x = F.leaky_relu(self.conv0(up, w), 0.2)
        x = F.leaky_relu(self.conv1(x, w), 0.2)
        return (up[:, :3] + self.to_rgb(x, w)).clamp(0, 1)
