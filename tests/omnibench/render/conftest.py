"""A small head-like test mesh (independent of omnibench.heads): ring surface + two eyeball spheres + masks.

Proportions follow the synthetic head spec (flame.md section 5.4) loosely; only the renderer tests use it.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.interpolate import PchipInterpolator

_Y = [-0.16, -0.12, -0.095, -0.075, -0.05, -0.02, 0.02, 0.06]
_A = [0.054, 0.052, 0.050, 0.052, 0.064, 0.072, 0.076, 0.074]
_BF = [0.050, 0.045, 0.040, 0.066, 0.078, 0.084, 0.086, 0.082]
_BB = [0.050, 0.050, 0.050, 0.060, 0.075, 0.090, 0.100, 0.100]
_ZC = [-0.022, -0.022, -0.020, -0.016, -0.014, -0.012, -0.012, -0.012]
EYE_CENTRES = np.array([[0.031, 0.028, 0.039], [-0.031, 0.028, 0.039]])
EYE_RADIUS = 0.0125


def toy_head(n_phi: int = 48, n_rows: int = 36) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return ``(vertices (V, 3), faces (F, 3), masks)`` of a closed-top head with eyeballs."""
    a, bf, bb, zc = (PchipInterpolator(_Y, p) for p in (_A, _BF, _BB, _ZC))
    phi = -np.pi + np.arange(n_phi) * 2 * np.pi / n_phi
    ys, scales = [], []
    for i in range(1, 8):  # crown cap
        al = i / 8 * np.pi / 2
        ys.append(0.06 + 0.075 * np.cos(al))
        scales.append(np.sin(al))
    for t in np.linspace(0, 1, n_rows):
        ys.append(0.06 - 0.22 * t)
        scales.append(1.0)
    rings = []
    for y, s in zip(ys, scales):
        yy = min(y, 0.06)
        b = np.where(np.cos(phi) > 0, bf(yy), bb(yy)) * s
        x = a(yy) * s * np.sin(phi)
        z = zc(yy) + b * np.cos(phi)
        # nose and eye sockets as bumps along +z
        z = z + 0.016 * np.exp(-0.5 * ((y + 0.002) / 0.014) ** 2 - 0.5 * (phi / 0.09) ** 2) * (s == 1.0)
        z = z - 0.020 * np.exp(-0.5 * ((y - 0.028) / 0.010) ** 2 - 0.5 * ((np.abs(phi) - 0.42) / 0.16) ** 2)
        rings.append(np.stack([x, np.full(n_phi, y), z], axis=-1))
    pole = np.array([[0.0, 0.135, -0.012]])
    verts = np.concatenate([pole, *rings])
    faces = []
    for j in range(n_phi):
        faces.append([0, 1 + (j + 1) % n_phi, 1 + j])
    for r in range(len(rings) - 1):
        base0, base1 = 1 + r * n_phi, 1 + (r + 1) * n_phi
        for j in range(n_phi):
            a_, b_ = base0 + j, base0 + (j + 1) % n_phi
            c_, d_ = base1 + (j + 1) % n_phi, base1 + j
            faces += [[a_, c_, b_], [a_, d_, c_]]
    faces = np.array(faces)
    head = trimesh.Trimesh(verts, faces, process=False)
    if head.volume < 0:
        faces = faces[:, ::-1]
    parts_v, parts_f = [verts], [faces]
    masks: dict[str, np.ndarray] = {}
    offset = verts.shape[0]
    for name, c in zip(("left_eyeball", "right_eyeball"), EYE_CENTRES):
        sph = trimesh.creation.uv_sphere(EYE_RADIUS, count=[12, 16])
        sph.apply_translation(c)
        parts_v.append(sph.vertices)
        parts_f.append(sph.faces + offset)
        masks[name] = np.arange(offset, offset + sph.vertices.shape[0])
        offset += sph.vertices.shape[0]
    v = np.concatenate(parts_v)
    f = np.concatenate(parts_f)
    n_head = verts.shape[0]
    hv = v[:n_head]
    ph = np.arctan2(hv[:, 0], hv[:, 2] + 0.012)
    y = hv[:, 1]
    masks["lips"] = np.flatnonzero((np.abs(ph) < 0.45) & (y > -0.052) & (y < -0.020))
    eye = (np.abs(np.abs(ph) - 0.42) < 0.30) & (y > 0.012) & (y < 0.048)
    masks["eye_region"] = np.flatnonzero(eye)
    masks["face"] = np.flatnonzero((np.abs(ph) < 1.25) & (y > -0.09) & (y < 0.08))
    masks["scalp"] = np.flatnonzero((y > 0.06) | ((np.cos(ph) < -0.2) & (y > 0)))
    masks["neck"] = np.flatnonzero(y < -0.095)
    return v, f, masks


@pytest.fixture(scope="session")
def toy():
    """``(vertices, faces, masks, regions)`` of the toy head."""
    from omnibench.render import HeadRegions

    v, f, masks = toy_head()
    return v, f, masks, HeadRegions.from_mesh(v, f, masks)
