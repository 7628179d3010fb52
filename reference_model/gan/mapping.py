"""Mapping network ``(z, c) -> w`` (StyleGAN2/EG3D style) with truncation around a tracked ``w_avg``."""

from __future__ import annotations

import torch
from torch import nn


class MappingNetwork(nn.Module):
    """``z (B, z_dim)`` and camera conditioning ``c (B, 25)`` -> ``w (B, w_dim)``.

    Both inputs are normalised to unit second moment, the camera is embedded by one linear layer, and
    ``w_avg`` is an exponential moving average of ``w`` during training (for truncation).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, layers: int, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.w_avg_beta = z_dim, c_dim, w_dim, w_avg_beta
        self.embed_c = nn.Linear(c_dim, w_dim)
        dims = [z_dim + w_dim] + [w_dim] * layers
        self.net = nn.Sequential(*[m for a, b in zip(dims[:-1], dims[1:]) for m in (nn.Linear(a, b), nn.LeakyReLU(0.2))])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @staticmethod
    def _normalize(x: torch.Tensor) -> torch.Tensor:
        return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        x = torch.cat([self._normalize(z), self._normalize(self.embed_c(c))], dim=1)
        w = self.net(x)
        if update_w_avg:
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            w = self.w_avg.lerp(w, truncation_psi)
        return w
