"""Dual discriminator (EG3D): the final image and the upsampled raw neural rendering are stacked into 6
channels, so both must agree; camera-conditioned by a projection of the 25 camera values. The epilogue has
StyleGAN2's minibatch standard deviation layer, which lets D see a batch's diversity (against mode collapse).

With ``n_controls > 0`` the projection also reads that many control values per sample (the FLAME expression
and jaw/neck pose, :func:`reference_model.gan.decoder.control_conditioning`): a conditional D that sees whether an image's appearance fits
its expression. Not in the paper (EG3D and OmniAvatar condition D on the camera only); an experiment of #20."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def minibatch_std(x: torch.Tensor, group: int) -> torch.Tensor:
    """Append one channel: the feature standard deviation over groups of ``group`` consecutive samples.

    ``x (N, C, H, W)`` -> ``(N, C + 1, H, W)``; every sample of a group gets its group's mean (over C, H, W) of
    the per-feature standard deviation across the group. Groups hold consecutive samples (not StyleGAN2's strided
    ones), so data-parallel ranks whose batch is a multiple of ``group`` form the same groups as one process.
    ``group`` is capped at N and must divide N.
    """
    n, c, h, w = x.shape
    g = min(group, n)
    if n % g:
        raise ValueError(f"minibatch-std group {g} does not divide the batch of {n}")
    y = x.reshape(n // g, g, c, h, w)
    y = (y - y.mean(dim=1, keepdim=True)).square().mean(dim=1).add(1e-8).sqrt()  # (n/g, C, H, W)
    y = y.mean(dim=(1, 2, 3)).repeat_interleave(g)  # (N,)
    return torch.cat([x, y[:, None, None, None].expand(n, 1, h, w)], dim=1)


class DualDiscriminator(nn.Module):
    def __init__(self, image_res: int, channels: int, c_dim: int = 25, mbstd_group: int = 4, n_controls: int = 0) -> None:
        super().__init__()
        n = int(math.log2(image_res)) - 2
        layers: list[nn.Module] = [nn.Conv2d(6, channels, 3, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(n):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.2), nn.AvgPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.mbstd_group = mbstd_group
        self.epilogue_conv = nn.Conv2d(channels + 1, channels, 3, padding=1)  # 4x4, after minibatch std
        self.fc = nn.Linear(channels * 16, channels)
        self.out = nn.Linear(channels, 1)
        self.n_controls = n_controls
        self.cmap = nn.Linear(c_dim + n_controls, channels)

    def forward(self, image: torch.Tensor, image_raw: torch.Tensor, camera: torch.Tensor,
                controls: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1], ``camera (B, 25)``, ``controls (B, n_controls)`` (required iff ``n_controls > 0``);
        returns one logit per sample ``(B,)``."""
        if (controls is None) != (self.n_controls == 0) or (controls is not None and controls.shape[1] != self.n_controls):
            raise ValueError(f"this D is conditioned on {self.n_controls} control values, got "
                             f"{None if controls is None else tuple(controls.shape)}")
        cond = camera if controls is None else torch.cat([camera, controls], dim=1)
        raw = F.interpolate(image_raw, size=image.shape[-2:], mode="bilinear", align_corners=False)
        x = torch.cat([image, raw], dim=1) * 2 - 1
        x = F.leaky_relu(self.epilogue_conv(minibatch_std(self.body(x), self.mbstd_group)), 0.2)
        h = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        proj = (h * self.cmap(cond)).sum(1) / math.sqrt(h.shape[1])
        return self.out(h)[:, 0] + proj

