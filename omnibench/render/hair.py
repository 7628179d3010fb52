"""Hair as extra geometry: an offset shell of the scalp, outside the skin surface.

FLAME has no hair, so the renderer adds it. The hair *region* is a smooth function of the canonical
(template) position: azimuth ``phi`` around the head's vertical axis (0 = face midline, +-pi = back)
and height ``y`` relative to the eyes. Its lower boundary (the hairline) interpolates per-identity
front, side and back heights; a fringe lowers the front. The shell copies every skin face touching
the region and moves its vertices outward along the *posed* vertex normals by a thickness that
grows from 1 mm at the hairline edge to the identity's full thickness, modulated by a low-frequency
field (``Appearance.hair_field``) and waves, so shapes vary per identity and follow pose/expression.
"""

from __future__ import annotations

import numpy as np

from omnibench.render.appearance import N_HAIR_FIELD, Appearance
from omnibench.render.regions import HeadRegions

MIN_OFFSET = 0.001  # metres: the shell never touches the skin
VOLUME_RAMP = 0.025  # metres above the hairline over which the shell reaches full thickness


def _smoothstep(e0: float | np.ndarray, e1: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def head_polar(regions: HeadRegions, canon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth ``phi`` (rad, 0 = front, + toward +x) and height above the eyes (metres, unscaled)."""
    c = regions.head_centre
    phi = np.arctan2(canon[..., 0] - c[0], canon[..., 2] - c[2])
    h = (canon[..., 1] - regions.eye_centres[:, 1].mean()) / regions.scale
    return phi, h


def hair_weight(regions: HeadRegions, app: Appearance, canon: np.ndarray, ramp: float = 0.006) -> np.ndarray:
    """Hair coverage in [0, 1] at canonical points ``(..., 3)``: 0 below the hairline, 1 from ``ramp`` metres
    above it (the colour uses the sharp default; the shell's volume a wider ramp, so it rises smoothly)."""
    phi, h = head_polar(regions, canon)
    a = np.abs(phi)
    front = app.hairline_front - app.fringe * 0.030 * np.exp(-0.5 * ((phi - 0.4 * app.hair_part) / 0.45) ** 2)
    side_blend = _smoothstep(0.55, 1.45, a)
    back_blend = _smoothstep(1.75, 2.7, a)
    line = front + (app.hairline_side - front) * side_blend
    line = line + (app.hairline_back - line) * back_blend
    # the hairline wanders a little (per identity)
    line = line + 0.004 * np.sin(3 * phi + app.wave_phase[0])
    return _smoothstep(line - 0.004, line + ramp, h)


def _field(app: Appearance, phi: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Low-frequency thickness modulation in [-1, 1]-ish from the 32 hair-field coefficients."""
    k = np.arange(1, N_HAIR_FIELD // 4 + 1)
    c = app.hair_field.reshape(4, -1) / np.sqrt(k)[None]
    s = (np.cos(phi[..., None] * k) * c[0] + np.sin(phi[..., None] * k) * c[1]
         + np.cos(h[..., None] * 25 * k) * c[2] * 0.5 + np.sin(h[..., None] * 25 * k) * c[3] * 0.5)
    return np.tanh(s.sum(-1) / 3.0)


def hair_thickness(regions: HeadRegions, app: Appearance, canon: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Outward offset (metres) of the shell at canonical points with hair weight ``weight``."""
    phi, h = head_polar(regions, canon)
    top = _smoothstep(0.03, 0.09, h)
    # azimuthal detail fades out near the crown, where phi is ill-defined
    radial = np.hypot(canon[..., 0] - regions.head_centre[0], canon[..., 2] - regions.head_centre[2]) / regions.scale
    crown = _smoothstep(0.015, 0.045, radial)
    wave = app.hair_wave * np.sin(18 * phi + 60 * h + app.wave_phase[1]) * crown
    t = app.hair_thickness * (1 + app.hair_top_volume * top) * (1 + 0.35 * _field(app, phi, h) * crown + wave)
    return regions.scale * (MIN_OFFSET + np.maximum(t, 0.002) * weight)


def hair_shell(regions: HeadRegions, app: Appearance, vertices: np.ndarray, normals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the shell for one posed head.

    Returns ``(shell_vertices (S, 3), shell_faces (G, 3) indexing shell_vertices, source (S,))`` where
    ``source`` maps each shell vertex to the head vertex it was offset from.
    """
    w = hair_weight(regions, app, regions.template, ramp=VOLUME_RAMP)
    w[regions.eyeball > 0] = 0.0
    faces = regions.faces[regions.skin_faces]
    keep = w[faces].max(axis=1) > 1e-3
    faces = faces[keep]
    if faces.shape[0] == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.int64)
    source, inverse = np.unique(faces.ravel(), return_inverse=True)
    offset = hair_thickness(regions, app, regions.template[source], w[source])
    shell_v = vertices[source] + normals[source] * offset[:, None]
    return shell_v, inverse.reshape(-1, 3), source
