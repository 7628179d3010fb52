"""Shape, expression and pose-corrective bases and eyelid blendshapes (flame.md §5.9-5.12).

All fields are (V, 3, K) float64 in metres per unit coefficient, vertex-major like FLAME's arrays.
"""

from __future__ import annotations

import numpy as np
from scipy.special import lpmv

from omnibench.errors import OmnibenchError
from omnibench.heads.synthetic.mesh import (
    EYE_CENTRE_L,
    HEAD_CENTRE,
    HeadMesh,
    surface_point,
    symmetrise,
)
from omnibench.heads.synthetic.regions import Regions, smoothstep, window

N_SHAPE = 300
N_EXPR = 100
N_POSE = 36
SEMANTIC_EXPRESSIONS = (
    "jaw_drop", "smile", "pucker", "lip_stretch", "brow_raise", "brow_furrow", "eyes_close", "eyes_wide",
    "cheek_puff", "nose_wrinkle", "upper_lip_raise", "lower_lip_depress", "lip_press", "smile_asym",
    "brow_asym", "blink_asym",
)
MM = 1e-3
EYELID_MAX = 0.010  # peak eyelid displacement, m
LID_BROW_Y = 0.050  # upper-lid weights fade from the lid margin to 0 at this height (the brow line)


# ---------------------------------------------------------------- helpers
def _propagate(field: np.ndarray, mesh: HeadMesh, eye_anchor: dict[str, np.ndarray]) -> np.ndarray:
    """Duplicates copy their original; each eyeball translates by the mean of its 8 anchor vertices.

    ``field`` is (V, 3) or (K, V, 3).
    """
    f = field.copy()
    dups = np.flatnonzero(mesh.dup_of >= 0)
    f[..., dups, :] = f[..., mesh.dup_of[dups], :]
    for name, sl in (("left", mesh.left_eye), ("right", mesh.right_eye)):
        f[..., sl, :] = f[..., eye_anchor[name], :].mean(axis=-2, keepdims=True)
    return f


def _symmetrise_many(fields: np.ndarray, mirror_idx: np.ndarray, parity: np.ndarray) -> np.ndarray:
    """Parity projection of (K, V, 3) fields, column k onto parity[k] (+1 symmetric / -1 antisymmetric)."""
    m = fields[:, mirror_idx, :].copy()
    m[:, :, 0] = -m[:, :, 0]
    par = parity.astype(np.float64)[:, None, None]
    return 0.5 * (fields + par * m)


def eye_anchors(mesh: HeadMesh) -> dict[str, np.ndarray]:
    """The 8 ring vertices nearest each eyeball centre (mirror pairs of each other)."""
    ring_ids = np.flatnonzero(mesh.vertex_row[: mesh.n_head] >= 0)
    ring_ids = ring_ids[mesh.dup_of[ring_ids] < 0]
    d = np.linalg.norm(mesh.vertices[ring_ids] - EYE_CENTRE_L, axis=1)
    left = ring_ids[np.argsort(d, kind="stable")[:8]]
    return {"left": np.sort(left), "right": np.sort(mesh.mirror_idx[left])}


def _gauss(v: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    return np.exp(-0.5 * np.sum((v - centre) ** 2, axis=-1) / radius**2)


def _orthonormalise(raw: np.ndarray, parity: np.ndarray, mesh: HeadMesh, fallback) -> np.ndarray:
    """Gram-Schmidt of K fields (K, V, 3) in order; returns orthonormal (K, V, 3), signs follow the raw field.

    Householder QR gives the Gram-Schmidt result up to column signs (fixed here). If a raw column is
    (numerically) in the span of the earlier ones, the remaining columns are done by classical
    Gram-Schmidt with re-orthogonalisation and the degenerate column is replaced by ``fallback(k, parity)``.
    Each column is re-projected onto its parity subspace so symmetry stays exact.
    """
    n_cols = raw.shape[0]
    flat = raw.reshape(n_cols, -1)
    q, r = np.linalg.qr(flat.T)
    diag = np.diag(r)
    rel = np.abs(diag) / np.linalg.norm(flat, axis=1)
    bad = np.flatnonzero(rel < 1e-6)
    start = int(bad[0]) if bad.size else n_cols
    qt = np.zeros_like(flat)
    qt[:start] = (q[:, :start] * np.sign(diag[:start])).T
    for k in range(start, n_cols):
        f = flat[k]
        for _attempt in range(100):
            g = f.copy()
            for _ in range(2):
                g -= qt[:k].T @ (qt[:k] @ g)
            nrm = float(np.linalg.norm(g))
            if nrm > 1e-6 * float(np.linalg.norm(f)):
                break
            f = fallback(k, int(parity[k])).reshape(-1)
        else:  # pragma: no cover - only on a broken mesh
            raise OmnibenchError("synthflame: could not build an independent basis")
        g = g / nrm
        qt[k] = g if float(g @ f) >= 0 else -g
    out = _symmetrise_many(qt.reshape(raw.shape), mesh.mirror_idx, parity)
    return out / np.linalg.norm(out.reshape(n_cols, -1), axis=1)[:, None, None]


# ---------------------------------------------------------------- shape (§5.9)
def shape_basis(mesh: HeadMesh, normals: np.ndarray, rng: np.random.Generator,
                n_shape: int = N_SHAPE) -> np.ndarray:
    """(V, 3, n_shape) identity basis: 3 scalings + real-SH normal fields, orthonormal, scaled to sigma_k."""
    n_v, n_head = mesh.n_vertices, mesh.n_head
    v = mesh.vertices
    head = np.zeros(n_v, bool)
    head[:n_head] = True
    anchors = eye_anchors(mesh)
    rel = v - HEAD_CENTRE
    u = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    cos_t = np.clip(u[:, 1], -1.0, 1.0)
    az = np.arctan2(u[:, 0], u[:, 2])
    raw = np.zeros((n_shape, n_v, 3))
    parity = np.ones(n_shape, dtype=np.int64)
    for axis in range(3):
        raw[axis, head, axis] = rel[head, axis]
    k = 3
    ell = 1
    nh = normals[head]
    while k < n_shape:
        for m in [0] + [s * mm for mm in range(1, ell + 1) for s in (1, -1)]:
            if k >= n_shape:
                break
            leg = lpmv(abs(m), ell, cos_t[head])
            y = leg * (np.cos(m * az[head]) if m >= 0 else np.sin(-m * az[head]))
            raw[k, head] = y[:, None] * nh
            parity[k] = 1 if m >= 0 else -1
            k += 1
        ell += 1
    raw = _symmetrise_many(_propagate(raw, mesh, anchors), mesh.mirror_idx, parity)

    def fallback(k: int, par: int) -> np.ndarray:
        f = np.zeros((n_v, 3))
        f[head] = rng.standard_normal((n_head, 3))
        return symmetrise(_propagate(f, mesh, anchors), mesh.mirror_idx, par)

    q = _orthonormalise(raw, parity, mesh, fallback)
    sigma = 5 * MM * (np.arange(n_shape) + 1.0) ** -0.8
    q = q * (sigma * np.sqrt(n_v))[:, None, None]
    # make eyeball rigidity bit-exact (rounding of the projections leaves ~1e-17 differences)
    first = q[:, mesh.left_eye.start, :].copy()
    q[:, mesh.left_eye, :] = first[:, None, :]
    first[:, 0] = -first[:, 0]
    q[:, mesh.right_eye, :] = (parity[:, None].astype(np.float64) * first)[:, None, :]
    return np.ascontiguousarray(np.moveaxis(q, 0, -1))


# ---------------------------------------------------------------- eyelid geometry
def lid_weights(mesh: HeadMesh, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-lid weight (1 up to the lid margin, 0 at the brow), lower-lid weight, and lower-lid height.

    The eye opening is an ellipse in (x, y): corners at x = +-(0.019 .. 0.045), margin heights
    y_up = 0.027 + 0.006 e and y_lo = 0.027 - 0.005 e with e = sqrt(1 - u^2).
    """
    v = mesh.vertices
    sign = 1.0 if side == "left" else -1.0
    u = (v[:, 0] - sign * 0.032) / 0.013
    e = np.sqrt(np.clip(1.0 - u**2, 0.0, None))
    y_up = 0.027 + 0.006 * e
    y_lo = 0.027 - 0.005 * e
    y = v[:, 1]
    head = np.zeros(mesh.n_vertices, bool)
    head[: mesh.n_head] = True
    front = head & (v[:, 2] > 0.0) & (sign * v[:, 0] > 0)
    lateral = 1.0 - smoothstep(1.0, 1.4, np.abs(u))
    above_lo = y >= y_lo
    upper = front * above_lo * lateral * (1.0 - smoothstep(0.0, 1.0, (y - y_up) / np.maximum(LID_BROW_Y - y_up, 1e-9)))
    upper = np.where(y > LID_BROW_Y, 0.0, upper)
    lower = front * (~above_lo) * lateral * smoothstep(0.012, 0.020, y)
    return upper, lower, y_lo


# ---------------------------------------------------------------- expression (§5.10)
def _semantic_fields(mesh: HeadMesh, regions: Regions, normals: np.ndarray) -> list[np.ndarray]:
    v = mesh.vertices
    n_v = mesh.n_vertices
    sx = np.sign(v[:, 0])
    sub, sm = regions.sub, regions.smooth
    head = np.zeros(n_v)
    head[: mesh.n_head] = 1.0
    y_m = float(mesh.row_y[mesh.slit_row])
    aphi = np.abs(mesh.phi)

    def vec(w: np.ndarray, d: tuple[float, float, float], mirror_x: bool = False) -> np.ndarray:
        dd = np.broadcast_to(np.asarray(d, dtype=np.float64), (n_v, 3)).copy()
        if mirror_x:
            dd[:, 0] *= sx
        return w[:, None] * dd

    corners = v[mesh.slit_corners]
    corner_w = np.maximum(_gauss(v, corners[0], 0.008), _gauss(v, corners[1], 0.008)) * head
    cheek_s = head * window(0.45, 1.0, aphi, 0.06) * window(-0.05, 0.01, v[:, 1], 0.005)
    cheek_c = surface_point(np.array([-0.02, -0.02]), np.array([0.72, -0.72]))
    cheek_w = cheek_s * np.maximum(_gauss(v, cheek_c[0], 0.012), _gauss(v, cheek_c[1], 0.012))
    below = sub["below_slit"].astype(np.float64)
    lips_s = sm["lips"]
    mouth_c = surface_point(np.array(y_m), np.array(0.0))
    brow_s = head * window(0.038, 0.056, v[:, 1], 0.005) * window(-0.35, 0.35, aphi - 0.42, 0.06)
    lid_l_up, lid_l_lo, _ = lid_weights(mesh, "left")
    lid_r_up, lid_r_lo, _ = lid_weights(mesh, "right")
    left = (v[:, 0] > 1e-9).astype(np.float64)
    right = (v[:, 0] < -1e-9).astype(np.float64)

    jaw_drop = vec(below * (1.0 - smoothstep(0.35, 0.7, aphi)) * smoothstep(-0.105, -0.095, v[:, 1]) * head,
                   (0.0, -6 * MM, -1.8 * MM))
    smile = vec(corner_w, (0.4 * 4 * MM, 0.8 * 4 * MM, -0.4 * 4 * MM), mirror_x=True) + vec(
        cheek_w, (0.0, 0.6 * 1.5 * MM, 0.3 * 1.5 * MM))
    pucker = vec(lips_s * _gauss(v, mouth_c, 0.012), (0.0, 0.0, 4 * MM)) + vec(
        corner_w, (-3 * MM, 0.0, 0.0), mirror_x=True)
    lip_stretch = vec(corner_w, (4 * MM, 0.0, -0.8 * MM), mirror_x=True)
    brow_raise = vec(brow_s, (0.0, 4 * MM, 0.0)) + vec(sm["forehead"], (0.0, 1.5 * MM, 0.0))
    inner_brow = surface_point(np.array([0.046, 0.046]), np.array([0.15, -0.15]))
    inner_w = brow_s * np.maximum(_gauss(v, inner_brow[0], 0.008), _gauss(v, inner_brow[1], 0.008))
    brow_furrow = vec(inner_w, (-3 * MM, -1.5 * MM, 0.0), mirror_x=True)
    upper_lids, lower_lids = lid_l_up + lid_r_up, lid_l_lo + lid_r_lo
    eyes_close = vec(upper_lids, (0.0, -8 * MM, 1.6 * MM)) + vec(lower_lids, (0.0, 1.5 * MM, 0.0))
    eyes_wide = vec(upper_lids, (0.0, 2 * MM, 0.0))
    cheek_puff = cheek_w[:, None] * normals * 4 * MM
    nose_c = surface_point(np.array([0.012, 0.012]), np.array([0.12, -0.12]))
    nose_w = sm["nose"] * np.maximum(_gauss(v, nose_c[0], 0.008), _gauss(v, nose_c[1], 0.008))
    nose_wrinkle = vec(nose_w, (0.0, 2 * MM, 0.6 * MM))
    upper_lip = lips_s * (1.0 - below) * _gauss(v, mouth_c + [0, 0.006, 0], 0.010)
    lower_lip = lips_s * below * _gauss(v, mouth_c - [0, 0.008, 0], 0.010)
    upper_lip_raise = vec(upper_lip, (0.0, 3 * MM, 0.9 * MM))
    lower_lip_depress = vec(lower_lip, (0.0, -3 * MM, 0.6 * MM))
    lip_press = (vec(upper_lip, (0.0, -0.25 * MM, 0.0)) + vec(lower_lip, (0.0, 0.25 * MM, 0.0))
                 - (lips_s * _gauss(v, mouth_c, 0.012))[:, None] * normals * 1.5 * MM)
    brow_one = vec(brow_s, (0.0, 4 * MM, 0.0))
    close_one = vec(lid_l_up + lid_r_up, (0.0, -8 * MM, 1.6 * MM))

    def asym(f: np.ndarray) -> np.ndarray:
        return f * left[:, None] - f * right[:, None]

    return [jaw_drop, smile, pucker, lip_stretch, brow_raise, brow_furrow, eyes_close, eyes_wide, cheek_puff,
            nose_wrinkle, upper_lip_raise, lower_lip_depress, lip_press, asym(smile), asym(brow_one),
            asym(close_one)]


def expression_basis(mesh: HeadMesh, regions: Regions, normals: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 100) expression basis: 16 semantic columns then 84 random localised orthogonalised fields."""
    n_v = mesh.n_vertices
    v = mesh.vertices
    n_rows = mesh.rows.shape[0]
    gate = regions.smooth["face"].copy()
    gate[mesh.n_head:] = 0.0
    gate[mesh.vertex_row >= n_rows - 3] = 0.0
    out = np.zeros((n_v, 3, N_EXPR))
    for k, f in enumerate(_semantic_fields(mesh, regions, normals)):
        parity = -1 if k >= 13 else 1
        out[:, :, k] = symmetrise(f * gate[:, None], mesh.mirror_idx, parity)
    face_ids = np.flatnonzero(regions.masks["face"])
    support = (gate > 0).astype(np.float64)
    basis = np.zeros((3 * n_v, N_EXPR))
    basis[:, :16] = np.linalg.qr(out[:, :, :16].reshape(3 * n_v, 16))[0]
    for k in range(16, N_EXPR):
        f = np.zeros((n_v, 3))
        for _ in range(int(rng.integers(2, 4))):
            c = v[face_ids[int(rng.integers(face_ids.size))]]
            r = rng.uniform(0.008, 0.020)
            uvec = rng.standard_normal(3)
            uvec /= np.linalg.norm(uvec)
            amp = rng.standard_normal() * MM
            d = 0.7 * normals + 0.3 * uvec
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            f += (amp * _gauss(v, c, r))[:, None] * d
        col = k + 300
        f = symmetrise(f * gate[:, None], mesh.mirror_idx, 1 if col % 2 == 0 else -1)
        flat = f.reshape(-1)
        for _ in range(2):
            flat = flat - basis[:, :k] @ (basis[:, :k].T @ flat)
        flat = flat.reshape(n_v, 3) * support[:, None]  # exact zeros outside the face gate
        f = symmetrise(flat, mesh.mirror_idx, 1 if col % 2 == 0 else -1)
        nrm = np.linalg.norm(f)
        if nrm < 1e-12:  # pragma: no cover - degenerate draw
            raise OmnibenchError("synthflame: degenerate random expression field")
        basis[:, k] = f.reshape(-1) / nrm
        rms = np.sqrt(np.mean(np.sum(f[face_ids] ** 2, axis=1)))
        out[:, :, k] = f * (1.5 * MM * (col - 315) ** -0.5 / rms)
    return out


# ---------------------------------------------------------------- pose correctives (§5.11)
def posedirs(mesh: HeadMesh, regions: Regions, normals: np.ndarray, weights: np.ndarray,
             rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 36) pose correctives; column 9(j-1)+3r+c for element (r, c) of R_j - I, joints 1..4."""
    n_v = mesh.n_vertices
    v = mesh.vertices
    y = v[:, 1]
    aphi = np.abs(mesh.phi)
    head = np.zeros(n_v)
    head[: mesh.n_head] = 1.0
    out = np.zeros((n_v, 3, N_POSE))
    front_neck = head * window(-0.11, -0.08, y, 0.005) * window(-0.8, 0.8, mesh.phi, 0.06)
    neck_band = head * window(-0.13, -0.07, y, 0.01)
    out[:, :, 7] += front_neck[:, None] * normals * 3 * MM
    for p in (0, 4, 8):
        out[:, :, p] -= neck_band[:, None] * normals * 0.5 * MM
    cheeks = head * window(0.45, 1.0, aphi, 0.06) * window(-0.05, 0.01, y, 0.005)
    under_chin = head * window(-0.11, -0.075, y, 0.005) * window(-0.6, 0.6, mesh.phi, 0.06)
    out[:, :, 16] += (-2 * MM * cheeks + 1.5 * MM * under_chin)[:, None] * normals
    lid_l, _, _ = lid_weights(mesh, "left")
    lid_r, _, _ = lid_weights(mesh, "right")
    er_l = regions.masks["left_eye_region"].astype(np.float64)
    er_r = regions.masks["right_eye_region"].astype(np.float64)
    out[:, 1, 25] += -4 * MM * lid_l * er_l
    out[:, 1, 34] += -4 * MM * lid_r * er_r

    influence = {1: smoothstep(0.0, 0.05, weights[:, 1]), 2: smoothstep(0.0, 0.05, weights[:, 2])}
    region_of = {1: weights[:, 1] > 0.05, 2: weights[:, 2] > 0.05, 3: er_l > 0, 4: er_r > 0}
    for p in range(N_POSE):
        j = p // 9 + 1
        ids = np.flatnonzero(region_of[j])
        bg = np.zeros((n_v, 3))
        for _ in range(3):
            c = v[ids[int(rng.integers(ids.size))]]
            r = rng.uniform(0.010, 0.025)
            d = rng.standard_normal(3)
            bg += _gauss(v, c, r)[:, None] * (d / np.linalg.norm(d))[None, :]
        bg *= head[:, None]
        if j >= 3:
            bg *= region_of[j][:, None]
        peak = np.max(np.linalg.norm(bg, axis=1))
        bg *= 0.3 * MM * rng.uniform(0.5, 1.0) / peak
        out[:, :, p] += bg
        if j <= 2:
            out[:, :, p] *= influence[j][:, None]
    out[mesh.n_head:] = 0.0
    return out


# ---------------------------------------------------------------- eyelids (§5.12)
def eyelids(mesh: HeadMesh) -> tuple[np.ndarray, np.ndarray]:
    """``(l_eyelid, r_eyelid)`` (V, 3): close the upper lid onto the lower lid, added after LBS."""
    out = []
    for side in ("left", "right"):
        w, _, y_lo = lid_weights(mesh, side)
        d = np.zeros((mesh.n_vertices, 3))
        d[:, 1] = -np.minimum((mesh.vertices[:, 1] - y_lo) * w, EYELID_MAX)
        d[:, 2] = 0.002 * w
        d[mesh.n_head:] = 0.0
        out.append(d)
    mirrored = symmetrise(out[0], mesh.mirror_idx, 1) * 2.0
    assert np.allclose(mirrored, out[0] + out[1])
    return out[0], out[1]
