"""Crop geometry and orthographic cameras of the DECA family (DECA, EMOCA, SMIRK), and their conversion to
EG3D's 25-value perspective camera.

Coordinates. Landmarks arrive in pixel-centre coordinates (pixel ``j`` spans ``[j, j+1)``, centre
``j + 0.5``; :mod:`metrics.estimators.landmarks`). The crop is computed, as DECA does with scikit-image, in
pixel *index* coordinates (centre of pixel ``j`` at ``j``): a square of side ``size`` whose corner
``(x0, y0)`` maps to crop index 0 and ``(x0 + size, y0 + size)`` to index ``S - 1`` (``S`` = 224), bilinear,
zeros outside.

Orthographic camera ``(s, tx, ty)`` (DECA's ``batch_orth_proj``): a point ``p`` of the posed head (FLAME
frame, metres, global rotation ``R_g`` about the root joint ``J0`` applied) lands at
``ndc = (s (p_x + tx), -s (p_y + ty))`` in the crop's [-1, 1], crop index ``(ndc + 1) S / 2`` (DECA's
landmark normalisation), i.e. source index ``x0 + (ndc + 1) k`` with ``k = (S / 2) size / (S - 1)`` source
pixels per ndc unit.

Perspective equivalent (:func:`ortho_to_camera`): a camera with normalised focal ``f`` on an image ``W``
pixels wide, looking along -z of the posed frame from ``C``, projects ``p`` to pixel-centre
``x = f W (p_x - C_x) / (C_z - p_z) + W / 2`` (``y`` likewise, flipped). Matching both at the depth plane
``z_ref`` (the face) gives ``C_z - z_ref = f W / (s k)`` and ``C_x``, ``C_y`` from ``tx``, ``ty`` and the crop
offset; points off that plane differ by the weak-perspective error (depth / distance). The global rotation
is then folded into the camera (:func:`metrics.estimators.fitting.fold_rigid_into_camera`), so the
estimate follows the generator convention (global pose 0). :func:`camera_to_ortho` is the inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from metrics.control_math import FRONTAL, matrix_to_axis_angle
from metrics.estimators.fitting import fold_rigid_into_camera
from omnibench.cameras import split_camera

CROP_SIZE = 224


@dataclass(frozen=True)
class CropRule:
    """How a square crop follows 68 landmarks: side = ``(w + h) / 2 * box_scale * scale`` (truncated to an
    integer when ``integer``), centre = the landmark box's centre."""

    name: str
    box_scale: float
    scale: float
    integer: bool

    def to_dict(self) -> dict:
        return {"rule": self.name, "box_scale": self.box_scale, "scale": self.scale, "size": CROP_SIZE}


DECA_CROP = CropRule("deca-kpt68", 1.1, 1.25, True)  # DECA/EMOCA TestData with 68 landmarks ('kpt68')
SMIRK_CROP = CropRule("smirk", 1.0, 1.4, True)  # SMIRK's demo crop_face: landmark box, int(side x 1.4)


def crop_boxes(points: torch.Tensor, rule: CropRule) -> torch.Tensor:
    """``(B, 3)`` = ``(x0, y0, size)`` in pixel-index coordinates from pixel-centre landmarks ``(B, K, 2)``."""
    idx = points.double() - 0.5
    lo, hi = idx.min(1).values, idx.max(1).values
    centre = (lo + hi) / 2
    size = ((hi - lo).sum(1) / 2) * rule.box_scale * rule.scale
    if rule.integer:
        size = size.floor()
    return torch.cat([centre - size[:, None] / 2, size[:, None]], 1)


def warp_crops(images: torch.Tensor, boxes: torch.Tensor, out: int = CROP_SIZE) -> torch.Tensor:
    """Bilinear crops ``(B, 3, out, out)`` of float images ``(B, 3, H, W)``: crop index ``u`` samples source
    index ``x0 + u size / (out - 1)``; zeros outside the image."""
    b, _, h, w = images.shape
    u = torch.arange(out, dtype=torch.float64)
    step = boxes[:, 2:3] / (out - 1)
    xs = boxes[:, 0:1] + u[None] * step  # (B, out) source index
    ys = boxes[:, 1:2] + u[None] * step
    gx = xs / max(w - 1, 1) * 2 - 1
    gy = ys / max(h - 1, 1) * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(b, out, out), gy[:, :, None].expand(b, out, out)], -1)
    return torch.nn.functional.grid_sample(images.float(), grid.float().to(images.device), mode="bilinear",
                                           padding_mode="zeros", align_corners=True)


def _k(boxes: torch.Tensor, crop: int) -> torch.Tensor:
    return (crop / 2) * boxes[:, 2].double() / (crop - 1)


def ortho_to_camera(cam: torch.Tensor, global_aa: torch.Tensor, boxes: torch.Tensor, root: torch.Tensor,
                    z_ref: torch.Tensor, focal: float, width: int, crop: int = CROP_SIZE) -> torch.Tensor:
    """EG3D cameras ``(B, 25)`` seeing the *unrotated* head as the orthographic camera ``cam (B, 3)`` = ``(s, tx, ty)``
    sees it posed by ``global_aa (B, 3)`` about ``root (B, 3)``, in images ``width`` px wide cropped by ``boxes``
    ``(B, 3)``; exact for points of the posed head at depth ``z_ref (B,)``."""
    s, tx, ty = (cam[:, i].double() for i in range(3))
    k = _k(boxes, crop)
    x0, y0 = boxes[:, 0].double(), boxes[:, 1].double()
    sk = s * k
    dist = focal * width / sk
    cx = (width / 2 - x0 - 0.5 - k - sk * tx) / sk
    cy = (y0 + 0.5 + k - sk * ty - width / 2) / sk
    c2w = torch.eye(4, dtype=torch.float64).repeat(cam.shape[0], 1, 1)
    c2w[:, :3, :3] = FRONTAL
    c2w[:, :3, 3] = torch.stack([cx, cy, z_ref.double() + dist], -1)
    intr = torch.tensor([focal, 0.0, 0.5, 0.0, focal, 0.5, 0.0, 0.0, 1.0], dtype=torch.float64).expand(cam.shape[0], 9)
    posed = torch.cat([c2w.reshape(-1, 16), intr], 1)
    return fold_rigid_into_camera(posed, global_aa.double(), torch.zeros_like(root, dtype=torch.float64), root.double()).float()


def camera_to_ortho(camera: torch.Tensor, boxes: torch.Tensor, root: torch.Tensor, z_ref: torch.Tensor,
                    width: int, crop: int = CROP_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`ortho_to_camera` for cameras with square pixels and a centred principal point:
    ``(cam (B, 3) = (s, tx, ty), global_aa (B, 3))``."""
    c2w, intr = split_camera(camera.double())
    focal = intr[:, 0, 0]
    r_g = FRONTAL @ c2w[:, :3, :3].transpose(1, 2)  # the posed frame's camera looks along -z
    root = root.double()
    centre = (r_g @ (c2w[:, :3, 3] - root)[..., None])[..., 0] + root
    k = _k(boxes, crop)
    x0, y0 = boxes[:, 0].double(), boxes[:, 1].double()
    sk = focal * width / (centre[:, 2] - z_ref.double())
    s = sk / k
    tx = (width / 2 - x0 - 0.5 - k - sk * centre[:, 0]) / sk
    ty = (y0 + 0.5 + k - width / 2 - sk * centre[:, 1]) / sk
    return torch.stack([s, tx, ty], -1), matrix_to_axis_angle(r_g)


def ortho_project(points: torch.Tensor, cam: torch.Tensor, global_aa: torch.Tensor, root: torch.Tensor,
                  boxes: torch.Tensor, crop: int = CROP_SIZE) -> torch.Tensor:
    """Pixel-centre coordinates ``(B, N, 2)`` in the source image of unposed points ``(B, N, 3)`` under DECA's
    orthographic model (global rotation about ``root``, then ``batch_orth_proj``, then the crop's inverse)."""
    from metrics.control_math import axis_angle_to_matrix

    r = axis_angle_to_matrix(global_aa.double())
    p = torch.einsum("bij,bnj->bni", r, points.double() - root.double()[:, None]) + root.double()[:, None]
    s, tx, ty = (cam[:, i : i + 1].double() for i in range(3))
    ndc_x, ndc_y = s * (p[..., 0] + tx), -s * (p[..., 1] + ty)
    k = _k(boxes, crop)[:, None]
    return torch.stack([boxes[:, 0:1].double() + 0.5 + (ndc_x + 1) * k, boxes[:, 1:2].double() + 0.5 + (ndc_y + 1) * k], -1)
