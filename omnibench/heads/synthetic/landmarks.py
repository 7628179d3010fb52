"""iBUG-68 landmark targets and their (face, barycentric) embeddings (flame.md §5.13).

Static 68 ("full"), static 51 (= full[17:]) and the 79 x 17 dynamic contour table. Dynamic row i has
yaw a = i (i <= 39) or a = -(i - 39) (i >= 40) degrees; row a is the silhouette of the head yawed by +a
(nose toward +x) seen from +z, i.e. the unposed head seen along v(a) = (-sin a, 0, cos a). Rows 40..78 are
mirror images of rows 1..39 (targets mirrored exactly; the
quad split of the mesh is not mirror-symmetric, so embeddings agree to the chord error). Row 0 equals the static contour (a synthflame simplification).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.spatial import cKDTree

from omnibench.heads.synthetic.mesh import HeadMesh, profiles, surface_normal, surface_point

N_YAW_ROWS = 79


@dataclass
class Embedding:
    """Face indices (N,) int64 and barycentric coordinates (N,3) float64."""

    faces: np.ndarray
    bary: np.ndarray


@dataclass
class LandmarkSet:
    targets: np.ndarray  # (68, 3) target points, m
    full: Embedding  # static 68
    dyn_faces: np.ndarray  # (79, 17) int64
    dyn_bary: np.ndarray  # (79, 17, 3)
    dyn_targets: np.ndarray  # (79, 17, 3)

    @property
    def static51(self) -> Embedding:
        return Embedding(self.full.faces[17:].copy(), self.full.bary[17:].copy())


def evaluate(vertices: np.ndarray, faces: np.ndarray, lmk_faces: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Landmark points sum_k b_k v[f[face, k]] for any leading shape of ``lmk_faces``."""
    tri = vertices[faces[lmk_faces]]  # (..., 3, 3)
    return np.einsum("...k,...kd->...d", bary, tri)


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of p to triangles abc (broadcast, (..., 3)): (barycentrics (...,3), squared distance)."""
    ab, ac, ap = b - a, c - a, p - a
    d00 = np.sum(ab * ab, -1)
    d01 = np.sum(ab * ac, -1)
    d11 = np.sum(ac * ac, -1)
    d20 = np.sum(ap * ab, -1)
    d21 = np.sum(ap * ac, -1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    u = 1.0 - v - w
    cands = [np.stack([u, v, w], -1)]
    for x, y, ix, iy in ((a, b, 0, 1), (b, c, 1, 2), (c, a, 2, 0)):
        xy = y - x
        t = np.clip(np.sum((p - x) * xy, -1) / np.sum(xy * xy, -1), 0.0, 1.0)
        bc = np.zeros(t.shape + (3,))
        bc[..., ix] = 1.0 - t
        bc[..., iy] = t
        cands.append(bc)
    inside = (u >= 0) & (v >= 0) & (w >= 0)
    best_b, best_d = None, None
    tri = np.stack([a, b, c], -2)
    for k, bc in enumerate(cands):
        q = np.einsum("...k,...kd->...d", bc, tri)
        d = np.sum((p - q) ** 2, -1)
        if k == 0:
            d = np.where(inside, d, np.inf)
            best_b, best_d = bc, d
        else:
            better = d < best_d
            best_b = np.where(better[..., None], bc, best_b)
            best_d = np.where(better, d, best_d)
    return best_b, best_d


def embed(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, allowed: np.ndarray,
          k: int = 48) -> Embedding:
    """Embed points (N,3) on the nearest of the ``allowed`` faces (index array); ties -> lowest face id."""
    allowed = np.sort(np.asarray(allowed))
    cent = vertices[faces[allowed]].mean(axis=1)
    k = min(k, allowed.size)
    _, cand = cKDTree(cent).query(points, k=k)
    cand = np.sort(np.asarray(cand).reshape(points.shape[0], k), axis=1)
    fids = allowed[cand]  # (N, k) increasing face id
    tri = vertices[faces[fids]]  # (N, k, 3, 3)
    bary, d2 = _closest_on_triangles(points[:, None, :], tri[..., 0, :], tri[..., 1, :], tri[..., 2, :])
    best = np.argmin(d2, axis=1)
    rows = np.arange(points.shape[0])
    b = np.clip(bary[rows, best], 0.0, None)
    b /= b.sum(axis=1, keepdims=True)
    return Embedding(fids[rows, best].astype(np.int64), b)


def _phi_from_x(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = profiles(y)[0]
    return np.arcsin(np.clip(x / a, -1.0, 1.0))


def contour_yphi() -> tuple[np.ndarray, np.ndarray]:
    """(y, phi) of the 17 static jaw-contour points, point 0 at -x, 8 the chin front."""
    tau = (np.arange(17) - 8) / 8.0
    y = PchipInterpolator([-1, -0.5, 0, 0.5, 1], [0.021, -0.045, -0.080, -0.045, 0.021])(tau)
    phi = np.sign(tau) * (np.pi / 2) * np.abs(tau) ** 0.35
    return y, phi


def landmark_targets(mesh: HeadMesh) -> np.ndarray:
    """The 68 iBUG target points (68, 3) on the analytic surface."""
    y_m = float(mesh.row_y[mesh.slit_row])
    ys, phis = np.zeros(68), np.zeros(68)
    ys[:17], phis[:17] = contour_yphi()
    t = np.linspace(0.0, 1.0, 5)
    ys[17:22] = 0.046 + 0.006 * np.sin(np.pi * t)
    phis[17:22] = -0.72 + 0.6 * t
    ys[22:27] = ys[17:22][::-1]
    phis[22:27] = -phis[17:22][::-1]
    ys[27:31] = [0.030, 0.020, 0.010, 0.000]
    ys[31:36] = -0.012
    phis[31:36] = [-0.16, -0.08, 0.0, 0.08, 0.16]
    xy = {
        36: (-0.045, 0.027), 37: (-0.039, 0.033), 38: (-0.026, 0.033), 39: (-0.019, 0.027),
        40: (-0.026, 0.022), 41: (-0.039, 0.022),
        42: (0.019, 0.027), 43: (0.026, 0.033), 44: (0.039, 0.033), 45: (0.045, 0.027),
        46: (0.039, 0.022), 47: (0.026, 0.022),
        48: (-0.025, y_m), 49: (-0.016, y_m + 0.006), 50: (-0.007, y_m + 0.009), 51: (0.0, y_m + 0.010),
        52: (0.007, y_m + 0.009), 53: (0.016, y_m + 0.006), 54: (0.025, y_m), 55: (0.016, y_m - 0.008),
        56: (0.007, y_m - 0.011), 57: (0.0, y_m - 0.012), 58: (-0.007, y_m - 0.011), 59: (-0.016, y_m - 0.008),
        60: (-0.022, y_m), 61: (-0.009, y_m), 62: (0.0, y_m), 63: (0.009, y_m), 64: (0.022, y_m),
        65: (0.009, y_m), 66: (0.0, y_m), 67: (-0.009, y_m),
    }
    for i, (x, y) in xy.items():
        ys[i] = y
        phis[i] = _phi_from_x(np.array(x), np.array(y))
    return surface_point(ys, phis)


def silhouette_phi(y: np.ndarray, phi0: np.ndarray, yaws_deg: np.ndarray, step: float = 0.002) -> np.ndarray:
    """Silhouette azimuths (K, A) of contour points (y, phi0) (K,) for yaws (A,) in degrees.

    Walks from phi0 toward 0 in ``step`` increments until the analytic surface normal n satisfies
    n . v(a) >= 0, then bisects between the last two samples; clamps at phi = 0.
    """
    y, phi0 = np.asarray(y, dtype=np.float64), np.asarray(phi0, dtype=np.float64)
    sgn = np.sign(phi0)[:, None]
    n_steps = int(np.ceil(np.max(np.abs(phi0)) / step)) + 1
    grid = phi0[:, None] - sgn * step * np.arange(n_steps)[None, :]
    grid = np.where(sgn * grid < 0, 0.0, grid)  # (K, G)
    n = surface_normal(np.broadcast_to(y[:, None], grid.shape), grid)  # (K, G, 3)
    a = np.deg2rad(yaws_deg)
    view = np.stack([-np.sin(a), np.zeros_like(a), np.cos(a)], -1)  # (A, 3)
    facing = np.einsum("ad,kgd->kag", view, n) >= 0.0  # (K, A, G)
    first = np.where(facing.any(axis=2), np.argmax(facing, axis=2), n_steps - 1)  # (K, A)
    kk = np.broadcast_to(np.arange(y.size)[:, None], first.shape)
    hi = grid[kk, first]
    lo = grid[kk, np.maximum(first - 1, 0)]  # lo: not facing (or == hi when already facing)
    yy = np.broadcast_to(y[:, None], first.shape)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        ok = np.sum(surface_normal(yy, mid) * view[None], axis=-1) >= 0.0
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(first > 0, hi, grid[kk, first])


def build_landmarks(mesh: HeadMesh) -> LandmarkSet:
    """Targets, static 68 embedding and the dynamic contour table."""
    v, f = mesh.vertices, mesh.faces
    targets = landmark_targets(mesh)
    head_faces = np.arange(mesh.n_head_faces)
    above = np.flatnonzero(mesh.face_row == mesh.slit_row - 1)
    below = np.flatnonzero(mesh.face_row == mesh.slit_row)
    faces = np.zeros(68, np.int64)
    bary = np.zeros((68, 3))
    default = [i for i in range(68) if i not in (61, 62, 63, 65, 66, 67)]
    for ids, allowed in ((default, head_faces), ([61, 62, 63], above), ([65, 66, 67], below)):
        e = embed(targets[ids], v, f, allowed)
        faces[ids], bary[ids] = e.faces, e.bary
    full = Embedding(faces, bary)

    y, phi = contour_yphi()
    yaws = np.arange(1, 40, dtype=np.float64)
    dyn_t = np.repeat(targets[None, :17], N_YAW_ROWS, axis=0).copy()
    ph = silhouette_phi(y[9:], phi[9:], yaws)  # +x side (points 9..16) turns away for a > 0
    dyn_t[1:40, 9:] = surface_point(np.broadcast_to(y[9:], (39, 8)), ph.T)
    dyn_faces = np.repeat(full.faces[None, :17], N_YAW_ROWS, axis=0).copy()
    dyn_bary = np.repeat(full.bary[None, :17], N_YAW_ROWS, axis=0).copy()
    flip = np.array([-1.0, 1.0, 1.0])
    dyn_t[40:] = dyn_t[1:40, ::-1] * flip  # row 39+i mirrors row i, point k <-> 16-k
    pts = np.concatenate([dyn_t[1:40, 9:], dyn_t[40:, :8]]).reshape(-1, 3)
    e = embed(pts, v, f, head_faces)
    ef, eb = e.faces.reshape(78, 8), e.bary.reshape(78, 8, 3)
    dyn_faces[1:40, 9:], dyn_bary[1:40, 9:] = ef[:39], eb[:39]
    dyn_faces[40:, :8], dyn_bary[40:, :8] = ef[39:], eb[39:]
    return LandmarkSet(targets=targets, full=full, dyn_faces=dyn_faces, dyn_bary=dyn_bary, dyn_targets=dyn_t)
