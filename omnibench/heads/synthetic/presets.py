"""Preset table of the synthflame generator (flame.md §5.3)."""

from __future__ import annotations

from dataclasses import dataclass

from omnibench.errors import OmnibenchError, suggest


@dataclass(frozen=True)
class Preset:
    """Mesh resolution of one preset.

    ``n_phi`` azimuth samples per ring, ``n_cap``/``n_body`` ring rows, ``phase`` azimuth offset in
    samples (0 or 0.5), ``mouth_width`` slit half-width in radians, eyeball UV sphere ``eye_az`` x
    ``eye_lat`` (+2 poles). ``expect_v``/``expect_f`` are the counts validation insists on.
    ``anatomy_checks``: whether the anatomy and landmark tolerances of §5.15 apply.
    """

    name: str
    n_phi: int
    n_cap: int
    n_body: int
    phase: float
    mouth_width: float
    eye_az: int
    eye_lat: int
    expect_v: int
    expect_f: int
    anatomy_checks: bool


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", 24, 4, 12, 0.0, 0.38, 8, 6, 486, 936, False),
    "small": Preset("small", 64, 10, 30, 0.0, 0.38, 16, 10, 2890, 5696, True),
    "flame-count": Preset("flame-count", 48, 21, 63, 0.5, 0.46, 35, 14, 5023, 9976, True),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name`` or raise an :class:`OmnibenchError` naming the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise OmnibenchError(
            f"unknown synthetic head preset '{name}'{suggest(name, PRESETS)}; choose one of {', '.join(PRESETS)}"
        ) from None
