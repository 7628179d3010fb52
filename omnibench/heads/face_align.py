"""Face-aligned resampling: read an image on a fixed grid of 3D points of the head model's mean face.

The grid is a ``size x size`` lattice in the head model's frontal (x right, y up) plane over the ``face``
region, each point lifted onto the mean neutral face (the largest z among face vertices within
``radius`` metres in x/y, i.e. the visible front surface). Projecting the grid with a camera (EG3D
layout, :func:`omnibench.cameras.project`) and sampling the image there gives a *frontalised* face crop:
the mouth, eyes and brows land on the same pixels whatever the view, scale or position of the head, so a
small CNN reads expression and shape from local cues instead of re-learning them for every view.
Coordinates are those of the head model (FLAME: metres, head at the origin, zero global pose), which is
where every generator of the protocol places the head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from omnibench.cameras import project
from omnibench.errors import OmnibenchError

GRID_RADIUS = 0.004  # metres: face vertices within this x/y distance of a grid point lift it onto the surface


def _mean_face_vertices(head: Any) -> np.ndarray:
    """Vertices ``(F, 3)`` of the mean neutral face region (``face`` mask, else the front 30 % in depth)."""
    dev = next((p.device for p in head.parameters()), torch.device("cpu")) if hasattr(head, "parameters") else "cpu"
    z = lambda n: torch.zeros(1, int(n), device=dev)  # noqa: E731
    with torch.no_grad():
        v = head(shape=z(head.n_shape), expression=z(head.n_expression), pose=z(15)).vertices[0]
    v = v.detach().double().cpu().numpy()
    masks = getattr(head, "masks", None) or {}
    if "face" in masks:
        idx = np.asarray(torch.as_tensor(masks["face"]).cpu()).astype(np.int64)
    else:
        idx = np.nonzero(v[:, 2] >= np.quantile(v[:, 2], 0.7))[0]
    if idx.size < 3:
        raise OmnibenchError(f"head model '{getattr(head, 'name', '?')}' has too few face vertices ({idx.size}) to align on")
    return v[idx]


def face_grid(head: Any, size: int = 32, margin: float = 0.1, radius: float = GRID_RADIUS) -> torch.Tensor:
    """``(size * size, 3)`` float32 points on the mean face, row-major from the top-left (x right, y down
    in the crop); ``margin`` widens the face's x/y bounding square by that fraction."""
    from scipy.spatial import cKDTree

    f = _mean_face_vertices(head)
    lo, hi = f[:, :2].min(0), f[:, :2].max(0)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + margin)
    xs = np.linspace(centre[0] - half, centre[0] + half, size)
    ys = np.linspace(centre[1] + half, centre[1] - half, size)
    gx, gy = np.meshgrid(xs, ys)
    q = np.stack([gx.ravel(), gy.ravel()], -1)
    tree = cKDTree(f[:, :2])
    near = tree.query_ball_point(q, r=radius)
    _, nearest = tree.query(q)
    depth = np.array([f[n, 2].max() if n else f[j, 2] for n, j in zip(near, nearest)])
    return torch.tensor(np.stack([q[:, 0], q[:, 1], depth], -1), dtype=torch.float32)


def frontalise(images: torch.Tensor, camera: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample float images ``(B, 3, H, W)`` (square) at the projections of ``grid`` ``(S*S, 3)`` under
    ``camera`` ``(B, 25)``: returns ``(B, 3, S, S)`` (bilinear, zeros outside the image)."""
    b, _, h, w = images.shape
    if h != w:
        raise OmnibenchError(f"face alignment needs square images, got {h}x{w}")
    s = int(round(grid.shape[0] ** 0.5))
    px, _ = project(grid.to(images)[None].expand(b, -1, -1), camera.to(images), h)
    norm = px / h * 2 - 1  # pixel centres at +0.5 <-> align_corners=False
    return torch.nn.functional.grid_sample(images, norm.view(b, s, s, 2), mode="bilinear", padding_mode="zeros",
                                           align_corners=False)
