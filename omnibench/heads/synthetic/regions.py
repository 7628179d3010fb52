"""Vertex regions of the synthflame head (flame.md §5.6): FLAME mask keys plus internal sub-regions.

Rules are evaluated on the template from (y, phi, z). ``Regions.masks`` holds the 14 FLAME keys as
boolean (V,) vectors; ``smooth`` holds versions that fade to 0 over a 5 mm band just inside the boolean
region (used by the bases so fields do not stop sharply).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnibench.heads.synthetic.mesh import EYE_CENTRE_L, HeadMesh

MASK_KEYS = (
    "face", "lips", "nose", "left_eye_region", "right_eye_region", "eye_region", "forehead", "scalp",
    "left_ear", "right_ear", "neck", "boundary", "left_eyeball", "right_eyeball",
)
EYE_PHI = 0.42
BAND = 0.005  # smooth band, m
BAND_PHI = 0.06  # the same band in azimuth at a ~8 cm radius, rad


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """0 at x <= a, 1 at x >= b, C1 cubic in between (a < b)."""
    t = np.clip((np.asarray(x, dtype=np.float64) - a) / (b - a), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def window(lo: float, hi: float, x: np.ndarray, band: float) -> np.ndarray:
    """Smooth indicator of lo < x < hi, fading to 0 over ``band`` inside each end."""
    return smoothstep(lo, lo + band, x) * (1.0 - smoothstep(hi - band, hi, x))


@dataclass
class Regions:
    masks: dict[str, np.ndarray]
    smooth: dict[str, np.ndarray]
    sub: dict[str, np.ndarray]


def build_regions(mesh: HeadMesh) -> Regions:
    """Compute the FLAME-key masks, their smooth versions and the expression sub-regions."""
    v = mesh.vertices
    n = mesh.n_vertices
    head = mesh.head_mask
    y, z, phi = v[:, 1], v[:, 2], mesh.phi
    aphi = np.abs(phi)
    cphi = np.cos(phi)

    def hm(cond: np.ndarray) -> np.ndarray:
        return np.asarray(cond & head)

    m: dict[str, np.ndarray] = {}
    s: dict[str, np.ndarray] = {}
    m["face"] = hm((aphi < 1.25) & (y > -0.090) & (y < 0.080))
    s["face"] = head * window(-1.25, 1.25, phi, BAND_PHI) * window(-0.090, 0.080, y, BAND)
    m["lips"] = hm((aphi < 0.45) & (y > -0.052) & (y < -0.020))
    s["lips"] = head * window(-0.45, 0.45, phi, BAND_PHI) * window(-0.052, -0.020, y, BAND)
    m["nose"] = hm((aphi < 0.28) & (y > -0.016) & (y < 0.036))
    s["nose"] = head * window(-0.28, 0.28, phi, BAND_PHI) * window(-0.016, 0.036, y, BAND)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        m[f"{side}_eye_region"] = hm((np.abs(phi - sign * EYE_PHI) < 0.30) & (y > 0.012) & (y < 0.048))
        s[f"{side}_eye_region"] = head * window(-0.30, 0.30, phi - sign * EYE_PHI, BAND_PHI) * window(0.012, 0.048, y, BAND)
    between = hm((aphi < 0.15) & (y > 0.012) & (y < 0.048))
    m["eye_region"] = m["left_eye_region"] | m["right_eye_region"] | between
    s["eye_region"] = np.maximum(np.maximum(s["left_eye_region"], s["right_eye_region"]),
                                 head * window(-0.15, 0.15, phi, BAND_PHI) * window(0.012, 0.048, y, BAND))
    m["forehead"] = hm((aphi < 0.85) & (y > 0.040) & (y < 0.095))
    s["forehead"] = head * window(-0.85, 0.85, phi, BAND_PHI) * window(0.040, 0.095, y, BAND)
    m["scalp"] = hm(((y > 0.06) & ~m["forehead"]) | ((cphi < -0.2) & (y > 0)))
    s["scalp"] = m["scalp"].astype(np.float64)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        m[f"{side}_ear"] = hm((np.abs(phi - sign * 1.92) < 0.32) & (y > -0.032) & (y < 0.036))
        s[f"{side}_ear"] = head * window(-0.32, 0.32, phi - sign * 1.92, BAND_PHI) * window(-0.032, 0.036, y, BAND)
    m["neck"] = hm(y < -0.095)
    s["neck"] = head * (1.0 - smoothstep(-0.100, -0.095, y))
    n_rows = mesh.rows.shape[0]
    m["boundary"] = hm(mesh.vertex_row >= n_rows - 2)
    s["boundary"] = m["boundary"].astype(np.float64)
    for side, sl in (("left", mesh.left_eye), ("right", mesh.right_eye)):
        e = np.zeros(n, bool)
        e[sl] = True
        m[f"{side}_eyeball"] = e
        s[f"{side}_eyeball"] = e.astype(np.float64)
    masks = {k: m[k] for k in MASK_KEYS}
    smooth = {k: s[k] for k in MASK_KEYS}

    # internal sub-regions for the expression basis
    sub: dict[str, np.ndarray] = {}
    yc = EYE_CENTRE_L[1]
    for side in ("left", "right"):
        er = m[f"{side}_eye_region"]
        sign = 1.0 if side == "left" else -1.0
        brow = hm((y > 0.038) & (y < 0.056) & (np.abs(phi - sign * EYE_PHI) < 0.35))
        sub[f"{side}_brow"] = brow
        sub[f"{side}_upper_lid"] = er & (y >= yc) & ~brow
        sub[f"{side}_lower_lid"] = er & (y < yc) & ~brow
    sub["cheeks"] = hm((aphi >= 0.45) & (aphi <= 1.0) & (y > -0.05) & (y < 0.01))
    sub["chin"] = hm((aphi < 0.45) & (y > -0.095) & (y < -0.06))
    corners = v[mesh.slit_corners]
    d = np.min(np.linalg.norm(v[:, None, :] - corners[None], axis=-1), axis=1)
    sub["mouth_corners"] = hm(d < 0.008)
    below = np.zeros(n, bool)
    below[: mesh.n_head] = (mesh.vertex_row[: mesh.n_head] > mesh.slit_row)
    below |= mesh.is_dup
    sub["below_slit"] = below & head
    sub["upper_lip"] = m["lips"] & ~below & (mesh.vertex_row >= 0)
    sub["lower_lip"] = m["lips"] & below
    sub["front"] = hm(z > -0.05)
    return Regions(masks=masks, smooth=smooth, sub=sub)
