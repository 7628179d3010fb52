"""Template mesh of the synthflame head (flame.md §5.4): rings + pole, mouth slit, two eyeballs.

Frame: metres, +y up, +z out of the face, +x the subject's left. Azimuth ``phi`` is measured in the xz
plane from +z toward +x (0 = face midline, +pi/2 = left side, pi = back of the head).

Vertex blocks (FLAME order): ``[pole, rings top->bottom (each increasing j), slit duplicates, left eyeball
(+x), right eyeball (-x)]``; faces: head, left eyeball, right eyeball. The template is made exactly
mirror-symmetric under ``mirror_idx`` (x -> -x) so bases built from it have exact parity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from omnibench.heads.synthetic.presets import Preset

# Profile knots (§5.4 step 1): y -> half-width A, front depth B_f, back depth B_b, ring centre z_c.
KNOT_Y = np.array([-0.16, -0.12, -0.095, -0.075, -0.05, -0.02, 0.02, 0.06])
KNOT_A = np.array([0.054, 0.052, 0.050, 0.052, 0.064, 0.072, 0.076, 0.074])
KNOT_BF = np.array([0.050, 0.045, 0.040, 0.066, 0.078, 0.084, 0.086, 0.082])
KNOT_BB = np.array([0.050, 0.050, 0.050, 0.060, 0.075, 0.090, 0.100, 0.100])
KNOT_ZC = np.array([-0.022, -0.022, -0.020, -0.016, -0.014, -0.012, -0.012, -0.012])

# Gaussian features (§5.4 step 4): name, y0, phi0, amplitude (m), sigma_y (m), sigma_phi (rad).
FEATURES: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("nose_tip", -0.002, 0.0, 0.016, 0.014, 0.09),
    ("nose_bridge", 0.022, 0.0, 0.008, 0.014, 0.08),
    ("brow_ridge", 0.048, 0.42, 0.004, 0.008, 0.22),
    ("eye_socket", 0.028, 0.42, -0.020, 0.010, 0.16),
    ("cheekbone", 0.000, 0.80, 0.005, 0.014, 0.22),
    ("lips", -0.035, 0.0, 0.004, 0.008, 0.30),
    ("chin", -0.076, 0.0, 0.006, 0.010, 0.25),
    ("ear", 0.003, 1.92, 0.011, 0.022, 0.13),
)

Y_TOP_BODY = 0.06
Y_NECK = -0.16
Y_SLIT = -0.035
CAP_HEIGHT = 0.075
POLE_Y = Y_TOP_BODY + CAP_HEIGHT
SLIT_GAP = 0.0005
EYE_RADIUS = 0.0125
EYE_CENTRE_L = np.array([0.031, 0.028, 0.039])
EYE_CENTRE_R = np.array([-0.031, 0.028, 0.039])
HEAD_CENTRE = np.array([0.0, 0.0, -0.012])

_PROFILES = tuple(PchipInterpolator(KNOT_Y, k) for k in (KNOT_A, KNOT_BF, KNOT_BB, KNOT_ZC))


def profiles(y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(A, B_f, B_b, z_c)`` at heights ``y`` (m), PCHIP through the knots."""
    y = np.asarray(y, dtype=np.float64)
    return tuple(p(y) for p in _PROFILES)  # type: ignore[return-value]


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Wrap radians to (-pi, pi]."""
    return np.pi - np.mod(np.pi - a, 2 * np.pi)


def bump_height(y: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Sum of the feature bumps (m) along the in-plane outward normal; off-midline features mirrored."""
    y = np.asarray(y, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    h = np.zeros(np.broadcast(y, phi).shape)
    for _name, y0, phi0, amp, sy, sphi in FEATURES:
        for p0 in ((phi0,) if phi0 == 0.0 else (phi0, -phi0)):
            dphi = wrap_angle(phi - p0)
            h = h + amp * np.exp(-0.5 * ((y - y0) / sy) ** 2 - 0.5 * (dphi / sphi) ** 2)
    return h


def surface_point(y: np.ndarray, phi: np.ndarray, scale: np.ndarray | float = 1.0,
                  y_profile: np.ndarray | None = None) -> np.ndarray:
    """Analytic head surface S(y, phi) -> (..., 3).

    The ring at height ``y`` uses the profile of ``y_profile`` (default ``y``) with A, B_f, B_b scaled by
    ``scale`` (crown cap); the feature bump is added along the ring's in-plane outward normal.
    """
    y = np.asarray(y, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    a, bf, bb, zc = profiles(y if y_profile is None else y_profile)
    a = a * scale
    cphi, sphi = np.cos(phi), np.sin(phi)
    b = np.where(cphi > 0, bf, bb) * scale
    nx, nz = b * sphi, a * cphi
    nn = np.hypot(nx, nz)
    h = bump_height(y, phi)
    x = a * sphi + h * nx / nn
    z = zc + b * cphi + h * nz / nn
    return np.stack(np.broadcast_arrays(x, y, z), axis=-1)


def surface_normal(y: np.ndarray, phi: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Outward unit normal of the body surface S(y, phi) by central differences -> (..., 3)."""
    dphi = surface_point(y, phi + eps) - surface_point(y, phi - eps)
    dy = surface_point(y + eps, phi) - surface_point(y - eps, phi)
    n = np.cross(dphi, dy)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


@dataclass
class HeadMesh:
    """Template mesh plus the bookkeeping the rest of the generator needs.

    ``vertices`` (V,3) float64 m; ``faces`` (F,3) int64 outward-wound; ``rows`` (R, n_phi) vertex ids of the
    rings top->bottom; ``row_y`` (R,) ring heights; ``vertex_row`` (V,) ring row (-1 pole, -2 eyeball);
    ``phi`` (V,) azimuth (eyeballs: azimuth of the point about the head axis); ``dup_of`` (V,) original of
    a lower-lip duplicate or -1; ``slit_row`` row index of the slit; ``slit_interior``/``slit_corners``
    vertex ids on the slit row; ``face_row`` (F,) upper row of a head face's band (-1 top fan, -2 eyeball).
    """

    preset: Preset
    vertices: np.ndarray
    faces: np.ndarray
    rows: np.ndarray
    row_y: np.ndarray
    row_scale: np.ndarray
    n_cap: int
    vertex_row: np.ndarray
    phi: np.ndarray
    dup_of: np.ndarray
    slit_row: int
    slit_interior: np.ndarray
    slit_corners: np.ndarray
    n_head: int
    left_eye: slice
    right_eye: slice
    n_head_faces: int
    face_row: np.ndarray
    mirror_idx: np.ndarray
    azimuths: np.ndarray

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def head_mask(self) -> np.ndarray:
        m = np.zeros(self.n_vertices, bool)
        m[: self.n_head] = True
        return m

    @property
    def is_dup(self) -> np.ndarray:
        return self.dup_of >= 0


def _body_heights(n_body: int) -> np.ndarray:
    s = np.arange(n_body) / (n_body - 1)
    y = np.interp(s, [0.0, 0.75, 1.0], [Y_TOP_BODY, -0.09, Y_NECK])
    y[int(np.argmin(np.abs(y - Y_SLIT)))] = Y_SLIT
    return y


def _eyeball(centre: np.ndarray, n_az: int, n_lat: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """UV sphere about local z (front pole first, then latitude rings front->back, back pole)."""
    theta = (np.arange(n_lat) + 1) * np.pi / (n_lat + 1)
    psi = np.pi / 2 + 2 * np.pi * np.arange(n_az) / n_az
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring = np.stack([st * np.cos(psi), st * np.sin(psi), np.broadcast_to(ct, (n_lat, n_az))], -1).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]])
    verts = centre + EYE_RADIUS * unit
    idx = offset + 1 + np.arange(n_lat * n_az).reshape(n_lat, n_az)
    front, back = offset, offset + 1 + n_lat * n_az
    faces = []
    for k in range(n_az):
        faces.append((front, idx[0, k], idx[0, (k + 1) % n_az]))
    for lat in range(n_lat - 1):
        for k in range(n_az):
            a, b = idx[lat, k], idx[lat, (k + 1) % n_az]
            c, d = idx[lat + 1, (k + 1) % n_az], idx[lat + 1, k]
            faces.append((b, a, d))
            faces.append((b, d, c))
    for k in range(n_az):
        faces.append((back, idx[-1, (k + 1) % n_az], idx[-1, k]))
    return verts, np.asarray(faces, dtype=np.int64)


def _eyeball_mirror(n_az: int, n_lat: int) -> np.ndarray:
    """Local index map of an eyeball under x -> -x (psi_k -> psi_{-k})."""
    k = np.arange(n_az)
    ring = (np.arange(n_lat)[:, None] * n_az + (-k % n_az)[None, :]).reshape(-1) + 1
    return np.concatenate([[0], ring, [1 + n_lat * n_az]])


def build_mesh(preset: Preset) -> HeadMesh:
    """Construct the template mesh of ``preset`` (deterministic, no randomness)."""
    n_phi = preset.n_phi
    azimuths = -np.pi + (np.arange(n_phi) + preset.phase) * 2 * np.pi / n_phi
    # ring heights and cap scales, top -> bottom
    alpha = np.arange(1, preset.n_cap + 1) / (preset.n_cap + 1) * np.pi / 2
    cap_y = Y_TOP_BODY + CAP_HEIGHT * np.cos(alpha)
    body_y = _body_heights(preset.n_body)
    row_y = np.concatenate([cap_y, body_y])
    row_scale = np.concatenate([np.sin(alpha), np.ones(preset.n_body)])
    row_prof_y = np.concatenate([np.full(preset.n_cap, Y_TOP_BODY), body_y])
    n_rows = row_y.size
    slit_row = preset.n_cap + int(np.argmin(np.abs(body_y - Y_SLIT)))

    ring_pts = surface_point(row_y[:, None], azimuths[None, :], row_scale[:, None], row_prof_y[:, None])
    pole = np.array([[0.0, POLE_Y, float(profiles(Y_TOP_BODY)[3])]])
    rows = 1 + np.arange(n_rows * n_phi).reshape(n_rows, n_phi)

    slit_js = np.flatnonzero(np.abs(azimuths) < preset.mouth_width)
    corner_js, interior_js = slit_js[[0, -1]], slit_js[1:-1]
    n_ring_v = 1 + n_rows * n_phi
    dup_ids = n_ring_v + np.arange(interior_js.size)
    dup_pts = ring_pts[slit_row, interior_js] + np.array([0.0, -SLIT_GAP, 0.0])
    n_head = n_ring_v + interior_js.size

    head_v = np.concatenate([pole, ring_pts.reshape(-1, 3), dup_pts])

    # faces: top fan, then bands row i -> i+1 (the band below the slit uses the duplicates)
    jn = (np.arange(n_phi) + 1) % n_phi
    faces = [np.stack([np.zeros(n_phi, np.int64), rows[0], rows[0, jn]], 1)]
    face_row = [np.full(n_phi, -1)]
    for i in range(n_rows - 1):
        top = rows[i].copy()
        if i == slit_row:
            top[interior_js] = dup_ids
        a, b = top, top[jn]
        c, d = rows[i + 1, jn], rows[i + 1]
        band = np.stack([np.stack([a, c, b], 1), np.stack([a, d, c], 1)], 1).reshape(-1, 3)
        faces.append(band)
        face_row.append(np.full(band.shape[0], i))
    head_f = np.concatenate(faces).astype(np.int64)
    n_head_faces = head_f.shape[0]

    n_eye = 2 + preset.eye_az * preset.eye_lat
    left_v, left_f = _eyeball(EYE_CENTRE_L, preset.eye_az, preset.eye_lat, n_head)
    right_v, right_f = _eyeball(EYE_CENTRE_R, preset.eye_az, preset.eye_lat, n_head + n_eye)
    verts = np.concatenate([head_v, left_v, right_v])
    faces_all = np.concatenate([head_f, left_f, right_f])
    n_v = verts.shape[0]

    # mirror map x -> -x
    jm = (n_phi - np.arange(n_phi)) % n_phi if preset.phase == 0.0 else n_phi - 1 - np.arange(n_phi)
    mirror = np.arange(n_v)
    mirror[rows] = rows[:, jm]
    jm_pos = {int(j): t for t, j in enumerate(interior_js)}
    for t, j in enumerate(interior_js):
        mirror[dup_ids[t]] = dup_ids[jm_pos[int(jm[j])]]
    eye_m = _eyeball_mirror(preset.eye_az, preset.eye_lat)
    mirror[n_head: n_head + n_eye] = n_head + n_eye + eye_m
    mirror[n_head + n_eye:] = n_head + eye_m
    assert np.array_equal(mirror[mirror], np.arange(n_v))

    # exact symmetry: v_sym = (v + F v[mirror]) / 2, with F flipping x
    flipped = verts[mirror] * np.array([-1.0, 1.0, 1.0])
    sym = 0.5 * (verts + flipped)
    sym[:, 0] = 0.5 * (verts[:, 0] - verts[mirror, 0])

    vertex_row = np.full(n_v, -2)
    vertex_row[0] = -1
    vertex_row[rows] = np.arange(n_rows)[:, None]
    vertex_row[dup_ids] = slit_row
    phi = np.zeros(n_v)
    phi[rows] = azimuths[None, :]
    phi[dup_ids] = azimuths[interior_js]
    phi[n_head:] = np.arctan2(sym[n_head:, 0], sym[n_head:, 2] - HEAD_CENTRE[2])
    phi = 0.5 * (phi - phi[mirror])  # exact antisymmetry
    dup_of = np.full(n_v, -1)
    dup_of[dup_ids] = rows[slit_row, interior_js]

    face_row_all = np.concatenate(face_row + [np.full(left_f.shape[0] + right_f.shape[0], -2)])
    return HeadMesh(
        preset=preset, vertices=sym, faces=faces_all, rows=rows, row_y=row_y, row_scale=row_scale,
        n_cap=preset.n_cap, vertex_row=vertex_row, phi=phi, dup_of=dup_of, slit_row=slit_row,
        slit_interior=rows[slit_row, interior_js], slit_corners=rows[slit_row, corner_js], n_head=n_head,
        left_eye=slice(n_head, n_head + n_eye), right_eye=slice(n_head + n_eye, n_v),
        n_head_faces=n_head_faces, face_row=face_row_all, mirror_idx=mirror, azimuths=azimuths,
    )


def face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (F,3) = cross(v1-v0, v2-v0) (twice the area)."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return np.cross(v1 - v0, v2 - v0)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, mirror_idx: np.ndarray | None = None) -> np.ndarray:
    """Area-weighted unit vertex normals (V,3); exactly mirror-symmetric when ``mirror_idx`` is given."""
    fn = face_normals(vertices, faces)
    n = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    if mirror_idx is not None:
        n = symmetrise(n, mirror_idx, +1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)


def mirror_field(field: np.ndarray, mirror_idx: np.ndarray) -> np.ndarray:
    """Apply the mirror operator to a per-vertex vector field (V,3,...) (permute + flip x)."""
    out = field[mirror_idx].copy()
    out[:, 0] = -out[:, 0]
    return out


def symmetrise(field: np.ndarray, mirror_idx: np.ndarray, parity: int) -> np.ndarray:
    """Project a vector field (V,3,...) onto the symmetric (+1) or antisymmetric (-1) subspace, exactly."""
    m = mirror_field(field, mirror_idx)
    return 0.5 * (field + m) if parity > 0 else 0.5 * (field - m)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Boundary edge loops of a triangle mesh, each as an ordered vertex array."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = np.sort(e, axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    bset = {tuple(k) for k in uniq[counts == 1]}
    directed = [tuple(x) for x in e if tuple(sorted(x)) in bset]
    nxt = dict(directed)
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen:
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.asarray(loop))
    return loops
