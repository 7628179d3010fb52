"""Per-hit albedo (skin, lips, brows, eyes, hair, mouth interior) and Lambert + ambient lighting.

Everything is evaluated at the hit's canonical (template) position, so features are sharp at any
resolution and follow the mesh under shape, expression and pose. Region masks of the head model
(``lips``, ``eye_region``, ...) gate the geometric rules; without masks the rules alone apply.
"""

from __future__ import annotations

import numpy as np

from omnibench.render.appearance import Appearance
from omnibench.render.hair import _smoothstep, hair_weight, head_polar
from omnibench.render.regions import HeadRegions

SKIN, LEFT_EYE, RIGHT_EYE, HAIR = 0, 1, 2, 3
MOUTH_INTERIOR = np.array([0.45, 0.22, 0.22])  # times the skin albedo: mouth cavity / inside of the neck
SCLERA = np.array([0.90, 0.88, 0.85])
PUPIL = np.array([0.02, 0.02, 0.02])
IRIS_ANGLE, PUPIL_ANGLE = 0.50, 0.20  # radians from the eyeball's forward axis


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[:, None]


def skin_albedo(regions: HeadRegions, app: Appearance, canon: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Skin colour with blush, lips, brows and eye lining at canonical points ``(N, 3)``."""
    n = canon.shape[0]
    s = regions.scale
    x, y, z = canon[:, 0], canon[:, 1], canon[:, 2]
    rgb = np.broadcast_to(app.skin, (n, 3)).copy()
    eye_c = regions.eye_centres
    eye_y = eye_c[:, 1].mean()
    front = _smoothstep(eye_c[:, 2].mean() - 0.045 * s, eye_c[:, 2].mean() - 0.02 * s, z)
    # blush on the cheeks
    blush = np.zeros(n)
    for c in eye_c:
        d2 = ((x - c[0] * 1.3) ** 2 + (y - (eye_y - 0.035 * s)) ** 2) / (0.018 * s) ** 2
        blush += np.exp(-0.5 * d2)
    rgb = _mix(rgb, app.skin * np.array([1.05, 0.72, 0.72]), np.clip(blush * front * app.blush, 0, 1))
    # lips: an ellipse around the mouth centre, gated by the lips mask when the model has one
    m = regions.mouth_centre
    hw = regions.mouth_half_width
    dx = (x - m[0]) / hw
    dy = (y - m[1]) / (np.where(y > m[1], 0.0065, 0.0085) * s * app.lip_fullness)
    r = np.sqrt(dx**2 + dy**2)
    lips = (1 - _smoothstep(0.75, 1.0, r)) * _smoothstep(m[2] - 0.03 * s, m[2] - 0.012 * s, z)
    if "lips" in weights:
        lips = lips * np.clip(weights["lips"] * 1.5, 0, 1)
    rgb = _mix(rgb, app.lip, lips)
    # brows: a curved band above each eye
    brow = np.zeros(n)
    for c in eye_c:
        side = np.sign(c[0]) if c[0] != 0 else 1.0
        u = (x - c[0]) * side / (0.024 * s) - 0.15  # -1 inner end .. +1 outer end
        yb = c[1] + app.brow_height * s + 0.004 * s * (1 - u**2) - 0.002 * s * np.maximum(u, 0) ** 2
        thick = app.brow_thickness * s * (1.15 - 0.45 * np.clip(u, -1, 1) ** 2 * (u > 0))
        band = np.exp(-0.5 * ((y - yb) / thick) ** 4)
        along = 1 - _smoothstep(0.85, 1.15, np.abs(u))
        brow = np.maximum(brow, band * along)
    rgb = _mix(rgb, app.brow, np.clip(brow * front * app.brow_darkness, 0, 1))
    # eye lining (lashes / lid crease) around each eyeball opening
    if regions.has_eyeballs:
        lining = np.zeros(n)
        for c in eye_c:
            d = np.linalg.norm(canon - c, axis=1) / regions.eye_radius
            lining = np.maximum(lining, np.exp(-0.5 * ((d - 1.08) / 0.12) ** 2) * (y > c[1] - 0.2 * regions.eye_radius))
        if "eye_region" in weights:
            lining = lining * np.clip(weights["eye_region"] * 2, 0, 1)
        rgb = _mix(rgb, app.brow * 0.5, np.clip(lining * front * app.eye_lining, 0, 1))
    else:  # painted eyes on a mesh without eyeballs
        for c in eye_c:
            d = np.hypot(x - c[0], (y - c[1]) * 1.8) / regions.eye_radius
            white = (1 - _smoothstep(0.9, 1.1, d)) * front
            rgb = _mix(rgb, SCLERA, white)
            iris = (1 - _smoothstep(0.45, 0.55, np.hypot(x - c[0], y - c[1]) / regions.eye_radius)) * front
            rgb = _mix(rgb, app.iris, iris)
    # clothing: a shirt collar on the lowest band of the neck (higher at the back), gated by the neck mask
    phi, h = head_polar(regions, canon)
    line = app.collar_height + 0.012 * (1 - np.cos(phi)) / 2
    shirt = 1 - _smoothstep(line - 0.0015, line + 0.0015, h)
    if "neck" in weights:
        shirt = shirt * np.clip(weights["neck"] * 2, 0, 1)
    return _mix(rgb, np.broadcast_to(app.shirt, rgb.shape), shirt)


def eye_albedo(regions: HeadRegions, app: Appearance, canon: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Eyeball colour (sclera, iris with a dark limbus, pupil); ``side`` is 1 (left) or 2 (right)."""
    c = regions.eye_centres[side - 1]
    d = canon - c
    d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    ang = np.arccos(np.clip(d[:, 2], -1, 1))
    rgb = np.broadcast_to(SCLERA, d.shape).copy()
    iris_t = 1 - _smoothstep(IRIS_ANGLE - 0.04, IRIS_ANGLE + 0.02, ang)
    limbus = np.exp(-0.5 * ((ang - IRIS_ANGLE + 0.05) / 0.05) ** 2)
    iris = app.iris[None] * (1 - 0.45 * limbus[:, None])
    rgb = _mix(rgb, iris, iris_t) if iris_t.size else rgb
    pupil_t = 1 - _smoothstep(PUPIL_ANGLE - 0.03, PUPIL_ANGLE + 0.02, ang)
    return _mix(rgb, np.broadcast_to(PUPIL, d.shape), pupil_t)


def hair_albedo(regions: HeadRegions, app: Appearance, canon: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Hair colour with strand texture; fades to ``skin`` where the hair weight vanishes (the hairline)."""
    phi, h = head_polar(regions, canon)
    radial = np.hypot(canon[:, 0] - regions.head_centre[0], canon[:, 2] - regions.head_centre[2]) / regions.scale
    crown = _smoothstep(0.01, 0.04, radial)  # strands converge at the crown: fade them there
    arg = app.strand_frequency * (phi - 0.6 * app.hair_part) + 6 * np.sin(8 * h + app.wave_phase[0])
    strands = crown * (0.6 * np.sin(arg) + 0.4 * np.sin(1.73 * arg + 40 * h + app.wave_phase[1]))  # irregular strands
    shade = 0.9 + 0.08 * strands + 0.12 * _smoothstep(0.02, 0.09, h)
    hair = np.clip(app.hair[None] * shade[:, None], 0, 1)
    w = hair_weight(regions, app, canon)
    return _mix(skin, hair, _smoothstep(0.05, 0.45, w))


def lambert(app: Appearance, normals: np.ndarray) -> np.ndarray:
    """Lighting factor ``(N, 3)``: 1.2 * (ambient + (1 - ambient) * wrapped Lambert), tinted by the light colour."""
    ndl = normals @ app.light_dir
    diffuse = np.clip((ndl + 0.25) / 1.25, 0, 1)
    return (1.2 * (app.ambient + (1 - app.ambient) * diffuse))[:, None] * app.light_colour[None]


def specular(app: Appearance, normals: np.ndarray, view: np.ndarray, strength: np.ndarray, power: np.ndarray) -> np.ndarray:
    """Blinn-Phong highlight ``(N, 3)`` (added to the lit albedo); ``view`` points from the surface to the camera."""
    half = view + app.light_dir[None]
    half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
    ndh = np.clip(np.einsum("nd,nd->n", normals, half), 0, 1)
    return (strength * ndh**power)[:, None] * app.light_colour[None]
