"""Synthesis network: ``w`` -> tri-plane features ``(B, 3, C, R, R)`` with modulated convolutions
(StyleGAN2 weight modulation/demodulation, written in plain torch; no custom CUDA ops)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ModulatedConv2d(nn.Module):
    """3x3 (or 1x1) convolution whose weights are scaled per sample by a style from ``w``."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, kernel: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = nn.Linear(w_dim, c_in)
        nn.init.ones_(self.affine.bias)
        self.demodulate, self.padding = demodulate, kernel // 2
        self.scale = 1 / math.sqrt(c_in * kernel * kernel)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        b, c_in, h, wd = x.shape
        style = self.affine(w)  # (B, c_in)
        weight = self.weight[None] * self.scale * style[:, None, :, None, None]  # (B, out, in, k, k)
        if self.demodulate:
            weight = weight * (weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).rsqrt()
        out = F.conv2d(x.reshape(1, b * c_in, h, wd), weight.reshape(-1, c_in, *weight.shape[3:]), padding=self.padding, groups=b)
        return out.reshape(b, -1, h, wd) + self.bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, w_dim: int) -> None:
        super().__init__()
        self.conv0 = ModulatedConv2d(c_in, c_out, w_dim)
        self.conv1 = ModulatedConv2d(c_out, c_out, w_dim)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.leaky_relu(self.conv0(x, w), 0.2)
        return F.leaky_relu(self.conv1(x, w), 0.2)


class TriplaneSynthesis(nn.Module):
    """Constant 4x4 input, upsampling blocks to ``triplane_res``, then a 1x1 modulated conv to 3*C channels."""

    def __init__(self, w_dim: int, channels: int, triplane_res: int, triplane_channels: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.randn(channels, 4, 4))
        n_blocks = int(math.log2(triplane_res)) - 2
        if 4 * 2**n_blocks != triplane_res:
            raise ValueError("triplane_res must be a power of two >= 8")
        self.blocks = nn.ModuleList([SynthesisBlock(channels, channels, w_dim) for _ in range(n_blocks)])
        self.to_planes = ModulatedConv2d(channels, 3 * triplane_channels, w_dim, kernel=1, demodulate=False)
        self.triplane_channels = triplane_channels

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        x = self.const[None].expand(w.shape[0], -1, -1, -1)
        for blk in self.blocks:
            x = blk(x, w)
        planes = self.to_planes(x, w)
        return planes.reshape(w.shape[0], 3, self.triplane_channels, *planes.shape[-2:])
