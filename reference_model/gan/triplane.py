"""Tri-plane lookup ``M(xbar | z)``: project points onto the xy, xz and zy planes of the canonical box,
bilinearly sample each plane, average the three feature vectors (EG3D)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sample_triplanes(planes: torch.Tensor, points: torch.Tensor, center: torch.Tensor, half: float) -> torch.Tensor:
    """``planes (B, 3, C, R, R)``, ``points (B, N, 3)`` metres -> features ``(B, N, C)``.

    Points are normalised to ``[-1, 1]`` by the box (``center``, ``half``); outside it features are zero
    (``padding_mode='zeros'``).
    """
    b, _, c, r, _ = planes.shape
    u = (points - center) / half
    coords = torch.stack([u[..., [0, 1]], u[..., [0, 2]], u[..., [2, 1]]], dim=1)  # (B, 3, N, 2)
    feats = F.grid_sample(
        planes.reshape(b * 3, c, r, r),
        coords.reshape(b * 3, 1, -1, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # (B*3, C, 1, N)
    return feats.reshape(b, 3, c, -1).mean(dim=1).transpose(1, 2)
