"""Procedural per-identity appearance decoded from a latent vector.

``Appearance.from_latent(z)`` maps ``z (APPEARANCE_Z_DIM,)`` (standard normal) through the normal CDF to
uniforms, one named parameter per coordinate (see :data:`PARAMETERS`), so ``z = 0`` is the "average"
look and truncation (``psi * z``) pulls every attribute toward it. Coordinates 36..63 are the
coefficients of a low-frequency field that modulates the hair shell's thickness (its shape).
Every coordinate changes the image; the mapping is deterministic and versioned (:data:`APPEARANCE_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from omnibench.errors import OmnibenchError

APPEARANCE_VERSION = "1"
N_HAIR_FIELD = 28
PARAMETERS = (
    "skin_lightness", "skin_warmth", "blush", "lip_tint", "lip_fullness", "brow_darkness",
    "brow_thickness", "brow_height", "iris_hue", "iris_lightness", "hair_hue", "hair_lightness",
    "hair_thickness", "hairline_front", "hairline_side", "hairline_back", "fringe", "hair_wave",
    "wave_phase_a", "wave_phase_b", "hair_top_volume", "bg_r", "bg_g", "bg_b", "light_azimuth",
    "light_elevation", "ambient", "light_warmth", "eye_lining", "hair_part", "bg_gradient", "strand_frequency",
    "shirt_r", "shirt_g", "shirt_b", "collar_height",
)
APPEARANCE_Z_DIM = len(PARAMETERS) + N_HAIR_FIELD  # 64

# Hair base colours (linear-ish RGB in [0, 1]): black, dark brown, brown, auburn, blonde, grey.
_HAIR_PALETTE = np.array([
    [0.07, 0.06, 0.055], [0.16, 0.10, 0.06], [0.30, 0.19, 0.11], [0.45, 0.20, 0.09],
    [0.70, 0.56, 0.34], [0.62, 0.61, 0.60],
])
_HAIR_CDF = np.cumsum([0.30, 0.25, 0.20, 0.07, 0.12, 0.06])
# Iris colours: dark brown, brown, hazel, green, blue, grey.
_IRIS_PALETTE = np.array([
    [0.18, 0.10, 0.05], [0.35, 0.20, 0.09], [0.42, 0.35, 0.16], [0.25, 0.38, 0.22],
    [0.25, 0.40, 0.60], [0.45, 0.50, 0.55],
])
_IRIS_CDF = np.cumsum([0.35, 0.20, 0.12, 0.08, 0.17, 0.08])
# Skin tones from light to dark (sRGB-ish albedo).
_SKIN_LIGHT = np.array([0.92, 0.76, 0.66])
_SKIN_DARK = np.array([0.32, 0.20, 0.14])


def _pick(u: float, cdf: np.ndarray) -> int:
    return int(min(np.searchsorted(cdf / cdf[-1], u, side="right"), cdf.size - 1))


@dataclass(frozen=True)
class Appearance:
    """One identity's look. Colours are RGB albedo in [0, 1]; lengths in metres for a FLAME-sized head."""

    skin: np.ndarray
    blush: float
    lip: np.ndarray
    lip_fullness: float
    brow: np.ndarray
    brow_darkness: float
    brow_thickness: float
    brow_height: float
    iris: np.ndarray
    hair: np.ndarray
    hair_thickness: float
    hairline_front: float
    hairline_side: float
    hairline_back: float
    fringe: float
    hair_wave: float
    wave_phase: np.ndarray
    hair_top_volume: float
    hair_part: float
    strand_frequency: float
    hair_field: np.ndarray
    background: np.ndarray
    bg_gradient: float
    light_dir: np.ndarray
    light_colour: np.ndarray
    ambient: float
    eye_lining: float
    shirt: np.ndarray
    collar_height: float

    @classmethod
    def from_latent(cls, z: object) -> Appearance:
        """Decode one latent ``(APPEARANCE_Z_DIM,)``; extra coordinates are an error, missing ones are 0."""
        arr = np.asarray(z.detach().cpu().numpy() if hasattr(z, "detach") else z, dtype=np.float64)
        if arr.ndim != 1:
            raise OmnibenchError(f"Appearance.from_latent takes one latent (D,), got shape {arr.shape}; use from_latents")
        if arr.shape[0] > APPEARANCE_Z_DIM:
            raise OmnibenchError(f"appearance latent has {arr.shape[0]} values, at most {APPEARANCE_Z_DIM} are used")
        if not np.all(np.isfinite(arr)):
            raise OmnibenchError("appearance latent contains NaN or inf")
        full = np.zeros(APPEARANCE_Z_DIM)
        full[: arr.shape[0]] = arr
        u = dict(zip(PARAMETERS, ndtr(full[: len(PARAMETERS)])))
        hair_field = full[len(PARAMETERS):]

        tone = u["skin_lightness"] ** 2.2  # skewed toward lighter tones, as in FFHQ
        skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
        skin = skin * np.array([1.0 + 0.06 * (u["skin_warmth"] - 0.5), 1.0, 1.0 - 0.10 * (u["skin_warmth"] - 0.5)])
        lip = skin * np.array([0.86, 0.58, 0.58]) * (0.85 + 0.25 * u["lip_tint"]) + np.array([0.05, 0.0, 0.01])
        hair_i = _pick(u["hair_hue"], _HAIR_CDF)
        hair = _HAIR_PALETTE[hair_i] * (0.75 + 0.5 * u["hair_lightness"])
        brow = np.minimum(hair, skin * 0.35) * (0.6 + 0.4 * u["hair_lightness"])
        iris = _IRIS_PALETTE[_pick(u["iris_hue"], _IRIS_CDF)] * (0.75 + 0.5 * u["iris_lightness"])
        rgb = np.array([u["bg_r"], u["bg_g"], u["bg_b"]])
        bg = 0.15 + 0.7 * (0.45 * rgb + 0.55 * rgb.mean())  # muted, like photo backgrounds
        az = (u["light_azimuth"] - 0.5) * 1.6
        el = 0.1 + 0.6 * u["light_elevation"]
        light = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
        warm = u["light_warmth"] - 0.5
        shirt = np.array([u["shirt_r"], u["shirt_g"], u["shirt_b"]])
        return cls(
            skin=np.clip(skin, 0, 1), blush=0.05 + 0.25 * u["blush"], lip=np.clip(lip, 0, 1),
            lip_fullness=0.8 + 0.5 * u["lip_fullness"], brow=np.clip(brow, 0, 1),
            brow_darkness=0.45 + 0.5 * u["brow_darkness"], brow_thickness=0.0025 + 0.0030 * u["brow_thickness"],
            brow_height=0.013 + 0.008 * u["brow_height"], iris=np.clip(iris, 0, 1), hair=np.clip(hair, 0, 1),
            hair_thickness=0.004 + 0.022 * u["hair_thickness"],
            hairline_front=0.032 + 0.040 * u["hairline_front"],
            hairline_side=-0.035 + 0.065 * u["hairline_side"],
            hairline_back=-0.125 + 0.12 * u["hairline_back"],
            fringe=float(max(0.0, u["fringe"] - 0.6) / 0.4), hair_wave=0.15 * u["hair_wave"],
            wave_phase=np.array([u["wave_phase_a"], u["wave_phase_b"]]) * 2 * np.pi,
            hair_top_volume=0.8 * u["hair_top_volume"], hair_part=u["hair_part"] - 0.5,
            strand_frequency=30 + 50 * u["strand_frequency"], hair_field=hair_field.copy(),
            background=bg, bg_gradient=0.35 * (u["bg_gradient"] - 0.5),
            light_dir=light, light_colour=np.array([1 + 0.12 * warm, 1.0, 1 - 0.12 * warm]),
            ambient=0.45 + 0.2 * u["ambient"], eye_lining=0.25 + 0.5 * u["eye_lining"],
            shirt=0.08 + 0.75 * (0.6 * shirt + 0.4 * shirt.mean()), collar_height=-0.182 + 0.022 * u["collar_height"],
        )

    @classmethod
    def from_latents(cls, z: object) -> list[Appearance]:
        """Decode a batch of latents ``(B, D)``."""
        arr = np.asarray(z.detach().cpu().numpy() if hasattr(z, "detach") else z, dtype=np.float64)
        if arr.ndim != 2:
            raise OmnibenchError(f"Appearance.from_latents takes latents (B, D), got shape {arr.shape}")
        return [cls.from_latent(row) for row in arr]

    @classmethod
    def mean(cls) -> Appearance:
        """The look at ``z = 0``."""
        return cls.from_latent(np.zeros(APPEARANCE_Z_DIM))
