"""Geometry of the renderer: depth against analytic answers and across views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from omnibench.cameras import EG3D_FOCAL, orbit_camera, project, split_camera
from omnibench.render import render_mesh


def unproject(depth: np.ndarray, camera: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """World points of every pixel centre with finite depth (independent of the renderer's ray code)."""
    c2w, k = (m[0].double().numpy() for m in split_camera(camera))
    res = depth.shape[0]
    rows, cols = np.nonzero(np.isfinite(depth))
    z = depth[rows, cols].astype(np.float64)
    x = ((cols + 0.5) / res - k[0, 2]) / k[0, 0] * z
    y = ((rows + 0.5) / res - k[1, 2]) / k[1, 1] * z
    p_cam = np.stack([x, y, z], axis=-1)
    return p_cam @ c2w[:3, :3].T + c2w[:3, 3], np.stack([rows, cols], -1)


def test_sphere_depth_lies_on_the_sphere_and_silhouette_area_matches():
    r, dist, res = 0.1, 1.6, 96
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=r)
    cam = orbit_camera(torch.tensor([0.3]), torch.tensor([-0.2]), radius=dist)
    out = render_mesh(sphere.vertices[None], sphere.faces, cam, res, hair=False, supersample=3)
    depth = out.depth[0].numpy()
    pts, pix = unproject(depth, cam)
    # every pixel-centre depth lies on the sphere (faceting of a level-5 icosphere < 0.1 mm)
    assert np.abs(np.linalg.norm(pts, axis=1) - r).max() < 5e-4
    # and reprojects to its own pixel centre through omnibench.cameras.project
    uv, z = project(torch.from_numpy(pts)[None], cam.double(), res)
    assert torch.allclose(uv[0], torch.from_numpy(pix[:, ::-1] + 0.5), atol=1e-3)
    assert torch.allclose(z[0], torch.from_numpy(depth[pix[:, 0], pix[:, 1]]).double(), atol=1e-5)
    # nearest point of the sphere: depth of the centre pixel ray ~ dist - r
    assert abs(depth.min() - (dist - r)) < 1e-3
    # silhouette: a disc of angular radius asin(r / dist)
    radius_px = EG3D_FOCAL * res * math.tan(math.asin(r / dist))
    assert out.mask[0].sum().item() == pytest.approx(math.pi * radius_px**2, rel=0.02)
    assert np.isfinite(depth).sum() == pytest.approx(math.pi * radius_px**2, rel=0.03)


def _reprojection_check(depth_a: np.ndarray, cam_a: torch.Tensor, depth_b: np.ndarray, cam_b: torch.Tensor,
                        tol: float = 1e-3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reproject A's pixel-centre points into B and compare with B's depth within 1 pixel.

    For each point (depth z in B) the 3x3 B pixels around its reprojection give depths [lo, hi]:
    ``consistent`` if lo - tol <= z <= hi + tol (B's continuous surface passes through the point within
    1 pixel), ``in_front`` if z < lo - tol (B should have seen the point: an error), ``occluded`` if
    z > hi + tol (something nearer hides it in B: not part of the visible overlap).
    """
    res = depth_b.shape[0]
    pts, _ = unproject(depth_a, cam_a)
    uv, z = project(torch.from_numpy(pts)[None], cam_b.double(), res)
    uv, z = uv[0].numpy(), z[0].numpy()
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (col >= 1) & (col < res - 1) & (row >= 1) & (row < res - 1)
    col, row, z = col[inside], row[inside], z[inside]
    nb = np.stack([depth_b[row + dr, col + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], axis=-1)
    lo = np.min(np.where(np.isfinite(nb), nb, np.inf), axis=1)
    hi = np.max(np.where(np.isfinite(nb), nb, -np.inf), axis=1)
    in_front = z < lo - tol
    occluded = z > hi + tol
    return ~in_front & ~occluded, in_front, occluded


def test_depth_from_view_a_reprojects_into_view_b(toy):
    v, f, _, regions = toy
    res = 128
    cams = orbit_camera(torch.tensor([0.0, 0.45]), torch.tensor([0.05, -0.15]))
    out = render_mesh(np.repeat(v[None], 2, 0), f, cams, res, regions=regions)  # hair shell included
    da, db = out.depth[0].numpy(), out.depth[1].numpy()
    consistent, in_front, occluded = _reprojection_check(da, cams[:1], db, cams[1:])
    n = np.isfinite(da).sum()
    assert consistent.sum() > 0.6 * n  # the visible overlap is most of the head
    assert in_front.mean() < 0.005  # B never misses a surface point that A saw and that is not hidden
    # the check has power: depths 0.3 % short (4.5 mm) put many points in front of B's surface
    ok_bad, front_bad, _ = _reprojection_check(da * 0.997, cams[:1], db, cams[1:])
    assert front_bad.mean() > 0.3


def test_hair_shell_lies_outside_the_skin(toy):
    v, f, _, regions = toy
    from omnibench.render import Appearance

    app = Appearance.from_latent(torch.zeros(64))
    cams = orbit_camera(torch.tensor([0.0, 2.5]), torch.tensor([0.3, 0.2]))
    for b in range(2):
        with_hair = render_mesh(v, f, cams[b : b + 1], 64, app, regions=regions)
        bare = render_mesh(v, f, cams[b : b + 1], 64, app, regions=regions, hair=False)
        both = torch.isfinite(with_hair.depth) & torch.isfinite(bare.depth)
        assert (with_hair.depth[both] <= bare.depth[both] + 1e-6).all()
        assert (bare.depth[both] - with_hair.depth[both] > 2e-3).sum() > 50  # hair has volume
        assert (with_hair.mask >= bare.mask - 1e-6).all()
