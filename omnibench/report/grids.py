"""Qualitative figures: identities across camera views, across expressions, and a turntable.

All randomness comes from a seeded ``torch.Generator``, so the same generator and seed give the same pixels.
Identities (rows) share ``z`` and FLAME shape across a grid; columns vary only the camera (views grid) or
only expression and jaw (expression grid, frontal camera; the first column is neutral). Camera convention:
:mod:`omnibench.cameras` (yaw > 0 shows the subject's left cheek).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from omnibench.cameras import get_framing
from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_path
from omnibench.generators.base import POSE_DIM, Controls, Generator

JAW = slice(6, 9)  # jaw axis-angle in the 15-value pose; x = opening
DEFAULT_YAWS_DEG = (-35.0, -17.5, 0.0, 17.5, 35.0)
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)


@dataclass(frozen=True)
class GridSpec:
    """What to render: ``n_ids`` identities, view yaws (degrees), ``n_expressions`` columns, seed."""

    n_ids: int = 4
    yaws_deg: tuple[float, ...] = DEFAULT_YAWS_DEG
    pitch_deg: float = 0.0
    n_expressions: int = 5
    expression_scale: float = 1.5  # std of the first 10 FLAME expression coefficients
    # True: column k > 0 sets expression coefficient k - 1 alone to ``sweep_amplitude`` (jaw closed), a value the
    # protocols' FFHQ-like prior draws for its expressive samples (docs/protocols.md), so a generator trained on
    # that prior is shown inside its training range; False: random draws of std ``expression_scale`` on the first
    # 10 coefficients at once, plus a random jaw opening
    expression_sweep: bool = False
    sweep_amplitude: float = 1.2
    seed: int = 0
    truncation_psi: float = 0.7
    framing: str = "v1"  # where the cameras sit (omnibench.cameras.FRAMINGS)

    def __post_init__(self) -> None:
        if self.n_ids < 1 or self.n_expressions < 1 or not self.yaws_deg:
            raise OmnibenchError("render: need at least one identity, one view and one expression")


def _rng(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1000003 + stream)


def identities(gen: Generator, spec: GridSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``z (n_ids, z_dim)`` and FLAME ``shape (n_ids, n_shape)`` (unit normal, clipped to ±2)."""
    g = _rng(spec.seed, 1)
    z = torch.randn(spec.n_ids, gen.z_dim, generator=g)
    shape = torch.randn(spec.n_ids, gen.flame_layout.n_shape, generator=g).clamp(-2, 2)
    return z, shape


def expressions(gen: Generator, spec: GridSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """``expression (n_expr, n_expression)`` and ``pose (n_expr, 15)``; row 0 neutral, the others random + jaw, or
    with ``spec.expression_sweep`` one coefficient each (row ``k``: coefficient ``k - 1``) and the jaw closed."""
    g = _rng(spec.seed, 2)
    n, ne = spec.n_expressions, gen.flame_layout.n_expression
    expr = torch.zeros(n, ne)
    if spec.expression_sweep:
        rows = torch.arange(1, min(n, ne + 1))
        expr[rows, rows - 1] = spec.sweep_amplitude
        return expr, torch.zeros(n, POSE_DIM)
    k = min(10, ne)
    expr[1:, :k] = (torch.randn(n - 1, k, generator=g) * spec.expression_scale).clamp(-3, 3)
    pose = torch.zeros(n, POSE_DIM)
    pose[1:, JAW.start] = torch.rand(n - 1, generator=g) * 0.35  # jaw opening, radians
    return expr, pose


def _synthesize(gen: Generator, z: torch.Tensor, controls: Controls, psi: float, batch: int = 16) -> np.ndarray:
    """``(B, H, W, 3)`` uint8, rendered in chunks of ``batch`` (the result does not depend on it)."""
    out = []
    with torch.no_grad():
        for i in range(0, z.shape[0], batch):
            res = gen.synthesize(z[i:i + batch], controls.index(slice(i, i + batch)), truncation_psi=psi)
            out.append(res.image_uint8().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``(rows*cols, H, W, 3)`` row-major -> ``(rows*H, cols*W, 3)``."""
    _, h, w, c = images.shape
    return images.reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def view_grid(gen: Generator, spec: GridSpec) -> tuple[np.ndarray, list[str]]:
    """Rows: identities (neutral expression); columns: camera yaws. Returns the image and column titles."""
    z, shape = identities(gen, spec)
    v = len(spec.yaws_deg)
    yaw = torch.tensor([math.radians(a) for a in spec.yaws_deg]).repeat(spec.n_ids)
    cam = get_framing(spec.framing).orbit(yaw, torch.full_like(yaw, math.radians(spec.pitch_deg)))
    n = spec.n_ids * v
    controls = Controls(cam, shape.repeat_interleave(v, 0), torch.zeros(n, gen.flame_layout.n_expression),
                        torch.zeros(n, POSE_DIM))
    imgs = _synthesize(gen, z.repeat_interleave(v, 0), controls, spec.truncation_psi)
    return _tile(imgs, spec.n_ids, v), [f"yaw {a:+.0f}°" if a else "frontal" for a in spec.yaws_deg]


def expression_grid(gen: Generator, spec: GridSpec) -> tuple[np.ndarray, list[str]]:
    """Rows: identities; columns: expressions shared by all rows (column 0 neutral), frontal camera."""
    z, shape = identities(gen, spec)
    expr, pose = expressions(gen, spec)
    e = spec.n_expressions
    n = spec.n_ids * e
    cam = get_framing(spec.framing).orbit(torch.zeros(n), torch.full((n,), math.radians(spec.pitch_deg)))
    controls = Controls(cam, shape.repeat_interleave(e, 0), expr.repeat(spec.n_ids, 1), pose.repeat(spec.n_ids, 1))
    imgs = _synthesize(gen, z.repeat_interleave(e, 0), controls, spec.truncation_psi)
    if spec.expression_sweep:
        titles = ["neutral"] + [f"expr[{i - 1}] {spec.sweep_amplitude:+.1f}" if i <= gen.flame_layout.n_expression else "neutral"
                                for i in range(1, e)]
    else:
        titles = ["neutral"] + [f"expr {i}" for i in range(1, e)]
    return _tile(imgs, spec.n_ids, e), titles


def turntable(gen: Generator, spec: GridSpec, n_frames: int = 24, max_yaw_deg: float = 40.0) -> list[np.ndarray]:
    """Frames (identities side by side) for a yaw sweep ``-max_yaw·cos(2πt)``, t = frame / n_frames."""
    z, shape = identities(gen, spec)
    t = torch.arange(n_frames, dtype=torch.float32) / n_frames
    yaw = -torch.cos(2 * math.pi * t) * math.radians(max_yaw_deg)
    yaw_all = yaw.repeat_interleave(spec.n_ids)  # frame-major, identity-minor
    n = n_frames * spec.n_ids
    cam = get_framing(spec.framing).orbit(yaw_all, torch.full_like(yaw_all, math.radians(spec.pitch_deg)))
    controls = Controls(cam, shape.repeat(n_frames, 1), torch.zeros(n, gen.flame_layout.n_expression),
                        torch.zeros(n, POSE_DIM))
    imgs = _synthesize(gen, z.repeat(n_frames, 1), controls, spec.truncation_psi)
    return [_tile(imgs[f * spec.n_ids:(f + 1) * spec.n_ids], 1, spec.n_ids) for f in range(n_frames)]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def labelled_panel(grid: np.ndarray, title: str, col_titles: list[str], n_rows: int, min_cell: int = 96,
                   row_titles: list[str] | None = None) -> Image.Image:
    """The grid (nearest-neighbour upscaled so cells are >= ``min_cell`` px) with a title line, column titles
    above and row titles on the left (default: identity numbers ``#1``, ``#2``, ...)."""
    h, w, _ = grid.shape
    cell_w = w // len(col_titles)
    k = max(1, math.ceil(min_cell / cell_w))
    pic = Image.fromarray(grid)
    if k > 1:
        pic = pic.resize((w * k, h * k), Image.Resampling.NEAREST)
    w, h, cell_w, cell_h = w * k, h * k, cell_w * k, (h // n_rows) * k
    font = _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_titles = row_titles or [f"#{r + 1}" for r in range(n_rows)]
    left, top = max(36, max(int(probe.textlength(t, font=font)) for t in row_titles) + 12), 44
    width = max(w + left + 4, int(probe.textlength(title, font=font)) + 8)
    img = Image.new("RGB", (width, h + top + 4), BACKGROUND)
    img.paste(pic, (left, top))
    d = ImageDraw.Draw(img)
    d.text((4, 4), title, fill=INK, font=font)
    for i, t in enumerate(col_titles):
        d.text((left + i * cell_w + cell_w // 2, top - 4), t, fill=INK, font=font, anchor="mb")
    for r in range(n_rows):
        d.text((left - 6, top + r * cell_h + cell_h // 2), row_titles[r], fill=INK, font=font, anchor="rm")
    return img


def stack(panels: list[Image.Image], gap: int = 12) -> Image.Image:
    w = max(p.width for p in panels)
    h = sum(p.height for p in panels) + gap * (len(panels) - 1)
    img = Image.new("RGB", (w, h), BACKGROUND)
    y = 0
    for p in panels:
        img.paste(p, (0, y))
        y += p.height + gap
    return img


@dataclass
class ModelGrids:
    """One model's view and expression grids (:func:`view_grid`, :func:`expression_grid`) under one spec."""

    name: str
    views: np.ndarray
    view_titles: list[str]
    expressions: np.ndarray
    expression_titles: list[str]


def model_grids(gen: Generator, spec: GridSpec, name: str = "") -> ModelGrids:
    views, vt = view_grid(gen, spec)
    exprs, et = expression_grid(gen, spec)
    return ModelGrids(name, views, vt, exprs, et)


def grids_figure(g: ModelGrids, spec: GridSpec) -> Image.Image:
    """Views panel above expressions panel, both labelled."""
    who = f"{g.name}: " if g.name else ""
    return stack([
        labelled_panel(g.views, f"{who}identities (rows) across camera views", g.view_titles, spec.n_ids),
        labelled_panel(g.expressions, f"{who}identities (rows) across expressions and jaw, frontal camera",
                       g.expression_titles, spec.n_ids),
    ])


def figure(gen: Generator, spec: GridSpec, name: str = "") -> Image.Image:
    """Views panel above expressions panel, both labelled."""
    return grids_figure(model_grids(gen, spec, name), spec)


def _identity_row(grid: np.ndarray, n_ids: int, identity: int, cell: int, cols: int) -> np.ndarray:
    """Row ``identity`` of a grid, resized (nearest) so its cells are ``cell`` px."""
    h = grid.shape[0] // n_ids
    row = Image.fromarray(grid[identity * h:(identity + 1) * h])
    return np.asarray(row.resize((cell * cols, cell), Image.Resampling.NEAREST))


def comparison_figure(models: list[ModelGrids], spec: GridSpec, identity: int = 0) -> Image.Image:
    """Every model side by side: identity ``identity`` of each model's grids (the same ``z``, shape, cameras and
    expressions for all, as the grids are drawn from ``spec`` alone), one row per model; models of different
    resolutions are shown at the largest."""
    cell = max(m.views.shape[0] // spec.n_ids for m in models)
    names = [m.name for m in models]
    views = np.concatenate([_identity_row(m.views, spec.n_ids, identity, cell, len(m.view_titles)) for m in models])
    exprs = np.concatenate([_identity_row(m.expressions, spec.n_ids, identity, cell, len(m.expression_titles))
                            for m in models])
    return stack([
        labelled_panel(views, f"identity #{identity + 1}, every model (rows) across camera views",
                       models[0].view_titles, len(models), row_titles=names),
        labelled_panel(exprs, f"identity #{identity + 1}, every model (rows) across expressions and jaw, frontal camera",
                       models[0].expression_titles, len(models), row_titles=names),
    ])


def save_png(img: Image.Image, path: str | Path) -> None:
    """Atomic PNG write (deterministic: no timestamps in PNG metadata)."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_gif(frames: list[np.ndarray], path: str | Path, fps: int = 12) -> None:
    ims = [Image.fromarray(f) for f in frames]
    with atomic_path(path) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0,
                    optimize=False)
