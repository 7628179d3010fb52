"""The control encoder ``E(I, c) = (beta~, theta~)`` behind ``L_enc``: a small CNN trained first on the
training images and their FLAME labels, then frozen. It predicts the expression (``n_expression``
coefficients) and the neck and jaw axis-angle (pose indices 3:9).

Two layouts. *Whole image* (the original): the image resized to ``res`` px. *Face-aligned*
(``GANConfig.enc_aligned``): the image resized to ``res`` px is resampled on a grid of points of the head
model's mean face projected with the camera ``c`` the image was rendered with
(:func:`omnibench.heads.face_align.frontalise`), so mouth and eyes sit on fixed pixels whatever the view.
In Stage II that camera is the one G rendered with, so no camera estimate is involved; both resampling
steps are differentiable, so ``L_enc`` reaches G through them. At 64 px a whole-image CNN reads almost
no expression on the synthetic head while the aligned one does (docs/metrics-control.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from omnibench.errors import OmnibenchError
from omnibench.heads.face_align import frontalise


class ControlEncoder(nn.Module):
    """``grid``: ``(S*S, 3)`` face points (:func:`omnibench.heads.face_align.face_grid`) for the face-aligned
    layout, None for the whole-image one."""

    def __init__(self, n_expression: int, res: int = 64, channels: int = 32, grid: torch.Tensor | None = None) -> None:
        super().__init__()
        self.n_expression, self.res = n_expression, res
        c = channels
        self.aligned = grid is not None
        if self.aligned:
            self.register_buffer("grid", grid.float().clone())
            side = round(grid.shape[0] ** 0.5)
            if side * side != grid.shape[0] or side % 8:
                raise OmnibenchError(f"face grid must be S x S points with S divisible by 8, got {grid.shape[0]} points")
            self.body = nn.Sequential(
                nn.Conv2d(3, c, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(4 * c, 4 * c, 3, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Flatten(), nn.Linear(4 * c * (side // 8) ** 2, 8 * c), nn.LeakyReLU(0.2),
            )
            self.head = nn.Linear(8 * c, n_expression + 6)
        else:
            self.body = nn.Sequential(
                nn.Conv2d(3, c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.Conv2d(4 * c, 4 * c, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            )
            self.head = nn.Linear(16 * c, n_expression + 6)

    @classmethod
    def from_state_dict(cls, n_expression: int, state: dict) -> ControlEncoder:
        """Rebuild (either layout) from a saved ``state_dict``."""
        grid = state.get("grid")
        enc = cls(n_expression, grid=torch.zeros_like(grid) if grid is not None else None)
        enc.load_state_dict(state)
        return enc

    def forward(self, image: torch.Tensor, camera: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (B, 3, H, W)`` in [0, 1], ``camera (B, 25)`` (needed by the aligned layout) ->
        (expression ``(B, E)``, neck+jaw ``(B, 6)``)."""
        x = image
        if x.shape[-2:] != (self.res, self.res):
            x = F.interpolate(x, size=(self.res, self.res), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.res)
        if self.aligned:
            if camera is None:
                raise OmnibenchError("the face-aligned control encoder needs the camera each image was rendered with")
            x = frontalise(x, camera.to(x), self.grid)
        out = self.head(self.body(x * 2 - 1))
        return out[:, : self.n_expression], out[:, self.n_expression :]
