"""FFHQ-like random controls and latents, one independent stream per ``(seed, index)``.

Distribution of :func:`sample_controls` (version :data:`SAMPLER_VERSION`; all angles in radians):

* camera: on a :class:`omnibench.cameras.Framing`'s sphere (default ``v1``: 1.6 m from the origin, EG3D's
  focal; ``framing="ffhq"`` for protocols v2), yaw ~ N(0, 0.3)
  clipped to +-0.9, pitch ~ N(0, 0.12) clipped to +-0.36 (FFHQ's spread: mostly frontal, some profiles);
* shape: ``n_shape = min(100, head.n_shape)`` coefficients ~ N(0, 1);
* expression: ``n_expression = min(50, head.n_expression)`` coefficients. With probability 0.65 a sample
  is *near-neutral*: columns 0..15 ~ N(0, 0.15), the rest ~ N(0, 0.2). Otherwise it is *expressive*:
  the same base plus 1-3 distinct columns among 0..15 (the synthetic head's semantic columns: jaw_drop,
  smile, pucker, ..., blink_asym) set to +-min(2.5, 0.4 + Exp(0.6)) (a heavy tail), the rest
  ~ N(0, 0.35). Columns 0 (jaw_drop), 6 (eyes_close) and 7 (eyes_wide) are one-sided (>= 0);
* pose (15 values, ``[global | neck | jaw | leye | reye]``): global 0 (the camera carries head pose);
  neck ~ N(0, 0.05) per axis (small tilt/turn); jaw opening (x axis) ~ 0.35 * Beta(1.2, 4), i.e. in
  [0, 0.35] and skewed toward closed (mean 0.08), other jaw axes 0; both eyes share a gaze
  (x, y) ~ N(0, 0.1) clipped to +-0.3.

Sample ``i`` of seed ``s`` is drawn from ``PCG64(SeedSequence([TAG, s, i]))`` in the fixed order above,
so it does not depend on ``n``, ``start_index``, batching or worker count. Latents use their own tag.

:func:`sample_wide_controls` (prior ``wide``, version :data:`WIDE_SAMPLER_VERSION`, its own tag) is the
distribution the control *estimators* are trained on, not a protocol's: camera, shape and pose as above,
but every sample is expressive: columns 0..15 ~ N(0, 0.7) (0, 6, 7 folded to >= 0), the rest ~ N(0, 0.35),
and the jaw opening ~ U(0, 0.35). Under the FFHQ-like prior each semantic column is far from zero in
about 4 % of the samples, too rare for a CNN to separate from view, identity and appearance changes
(docs/metrics-control.md); the protocols keep the FFHQ-like prior.

:func:`sample_wide_pair_controls` (prior ``wide-pairs``) draws the ``wide`` prior in pairs: samples
``2k`` and ``2k + 1`` share camera, shape, neck and gaze (and, in :mod:`omnibench.data.synth`, the latent,
hence the appearance) and differ only in expression and jaw opening, each drawn as in ``wide`` from its
own stream. Pair-consistency training of the regressor reads what changes with expression alone.
"""

from __future__ import annotations

import numpy as np
import torch

from omnibench.cameras import FRAMING_V1, Framing, get_framing
from omnibench.errors import OmnibenchError
from omnibench.generators.base import POSE_DIM, Controls

SAMPLER_VERSION = "1"
WIDE_SAMPLER_VERSION = "1"
PRIORS = ("ffhq", "wide", "wide-pairs")
N_SHAPE, N_EXPRESSION = 100, 50
N_SEMANTIC = 16
ONE_SIDED = (0, 6, 7)
_CONTROLS_TAG = 0x0C0A7201
_LATENT_TAG = 0x1A7E7701
_WIDE_TAG = 0x0C0A7202
_PAIR_TAG = 0x0C0A7203


def _check(n: int, seed: int, start_index: int) -> None:
    for name, value, lo in (("n", n, 0), ("seed", seed, 0), ("start_index", start_index, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
            raise OmnibenchError(f"{name} must be an integer >= {lo}, got {value!r}")


def layout_of(head: object) -> tuple[int, int]:
    """``(n_shape, n_expression)`` drawn for ``head`` (a head model, or anything with those attributes)."""
    if isinstance(head, str):
        from omnibench.heads import load_head_model

        head = load_head_model(head)
    try:
        return min(N_SHAPE, int(head.n_shape)), min(N_EXPRESSION, int(head.n_expression))
    except AttributeError as exc:
        raise OmnibenchError(f"head must be a head model or name with n_shape/n_expression, got {type(head).__name__}") from exc


def _view_and_shape(rng: np.random.Generator, n_shape: int) -> tuple[float, float, np.ndarray]:
    yaw = float(np.clip(rng.normal(0.0, 0.3), -0.9, 0.9))
    pitch = float(np.clip(rng.normal(0.0, 0.12), -0.36, 0.36))
    return yaw, pitch, rng.normal(0.0, 1.0, N_SHAPE)[:n_shape]


def _pose(rng: np.random.Generator, wide: bool) -> np.ndarray:
    pose = np.zeros(POSE_DIM)
    pose[3:6] = rng.normal(0.0, 0.05, 3)
    pose[6] = rng.uniform(0.0, 0.35) if wide else 0.35 * rng.beta(1.2, 4.0)
    gaze = np.clip(rng.normal(0.0, 0.1, 2), -0.3, 0.3)
    pose[9:11] = gaze
    pose[12:14] = gaze
    return pose


def _one_wide(rng: np.random.Generator, n_shape: int, n_expr: int) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    yaw, pitch, shape = _view_and_shape(rng, n_shape)
    expr = np.empty(N_EXPRESSION)
    expr[:N_SEMANTIC] = rng.normal(0.0, 0.7, N_SEMANTIC)
    expr[N_SEMANTIC:] = rng.normal(0.0, 0.35, N_EXPRESSION - N_SEMANTIC)
    for c in ONE_SIDED:
        expr[c] = abs(expr[c])
    return yaw, pitch, shape, expr[:n_expr], _pose(rng, wide=True)


def _one(rng: np.random.Generator, n_shape: int, n_expr: int) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    yaw, pitch, shape = _view_and_shape(rng, n_shape)
    expressive = rng.random() >= 0.65
    expr = np.empty(N_EXPRESSION)
    expr[:N_SEMANTIC] = rng.normal(0.0, 0.15, N_SEMANTIC)
    expr[N_SEMANTIC:] = rng.normal(0.0, 0.35 if expressive else 0.2, N_EXPRESSION - N_SEMANTIC)
    k = int(rng.integers(1, 4))
    cols = rng.choice(N_SEMANTIC, size=3, replace=False)[:k]
    amp = np.minimum(2.5, 0.4 + rng.exponential(0.6, 3))[:k]
    sign = np.where(rng.random(3) < 0.5, -1.0, 1.0)[:k]
    if expressive:
        expr[cols] = amp * np.where(np.isin(cols, ONE_SIDED), 1.0, sign)
    for c in ONE_SIDED:
        expr[c] = abs(expr[c])
    return yaw, pitch, shape, expr[:n_expr], _pose(rng, wide=False)


def sample_controls(n: int, seed: int, head: object = "synthetic", start_index: int = 0,
                    framing: Framing | str = FRAMING_V1) -> Controls:
    """``n`` FFHQ-like controls for indices ``start_index .. start_index + n - 1`` (float32, CPU).

    ``head``: a head model (or name) whose ``n_shape``/``n_expression`` cap the drawn coefficients.
    """
    return _draw(_one, _CONTROLS_TAG, n, seed, head, start_index, framing)


def sample_wide_controls(n: int, seed: int, head: object = "synthetic", start_index: int = 0,
                         framing: Framing | str = FRAMING_V1) -> Controls:
    """Like :func:`sample_controls` under the ``wide`` prior (every sample expressive): estimator training."""
    return _draw(_one_wide, _WIDE_TAG, n, seed, head, start_index, framing)


def sample_wide_pair_controls(n: int, seed: int, head: object = "synthetic", start_index: int = 0,
                              framing: Framing | str = FRAMING_V1) -> Controls:
    """The ``wide-pairs`` prior: index ``i`` belongs to pair ``i // 2``; both members share the ``wide`` draw
    of pair ``k`` (stream ``[wide tag, seed, k]``) except expression and jaw opening, which the second member
    redraws from stream ``[pair tag, seed, k]``."""
    _check(n, seed, start_index)
    n_shape, n_expr = layout_of(head)

    def rng(tag: int, k: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([tag, seed, k])))

    rows = []
    for i in range(start_index, start_index + n):
        yaw, pitch, shape, expr, pose = _one_wide(rng(_WIDE_TAG, i // 2), n_shape, n_expr)
        if i % 2:
            _, _, _, expr, pose2 = _one_wide(rng(_PAIR_TAG, i // 2), n_shape, n_expr)
            pose = pose.copy()
            pose[6] = pose2[6]
        rows.append((yaw, pitch, shape, expr, pose))
    return _stack(rows, n_shape, n_expr, framing)


def latents_for_prior(prior: str, n: int, seed: int, z_dim: int, start_index: int = 0) -> torch.Tensor:
    """Latents of samples ``start_index .. start_index + n - 1`` under ``prior``: :func:`sample_latents`, except
    that under ``wide-pairs`` sample ``i`` takes latent ``i // 2`` (both members share one appearance)."""
    if prior != "wide-pairs":
        return sample_latents(n, seed, z_dim, start_index)
    _check(n, seed, start_index)
    return _latents_at([i // 2 for i in range(start_index, start_index + n)], seed, z_dim)


def controls_for_prior(prior: str, n: int, seed: int, head: object = "synthetic", start_index: int = 0,
                       framing: Framing | str = FRAMING_V1) -> Controls:
    """Controls of the named prior: ``ffhq`` (:func:`sample_controls`), ``wide`` (:func:`sample_wide_controls`)
    or ``wide-pairs``, cameras on ``framing``'s sphere."""
    if prior not in PRIORS:
        raise OmnibenchError(f"unknown control prior '{prior}'; available: {', '.join(PRIORS)}")
    fn = {"ffhq": sample_controls, "wide": sample_wide_controls, "wide-pairs": sample_wide_pair_controls}[prior]
    return fn(n, seed, head, start_index, framing)


def _draw(one, tag: int, n: int, seed: int, head: object, start_index: int, framing: Framing | str) -> Controls:
    _check(n, seed, start_index)
    n_shape, n_expr = layout_of(head)
    rows = [one(np.random.Generator(np.random.PCG64(np.random.SeedSequence([tag, seed, start_index + i]))),
                n_shape, n_expr) for i in range(n)]
    return _stack(rows, n_shape, n_expr, framing)


def _stack(rows: list, n_shape: int, n_expr: int, framing: Framing | str) -> Controls:
    if not rows:
        return Controls(torch.zeros(0, 25), torch.zeros(0, n_shape), torch.zeros(0, n_expr), torch.zeros(0, POSE_DIM))
    yaw, pitch, shape, expr, pose = (np.stack(x) for x in zip(*rows))
    camera = get_framing(framing).orbit(torch.from_numpy(yaw).float(), torch.from_numpy(pitch).float())
    f32 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    return Controls(camera=camera, shape=f32(shape), expression=f32(expr), pose=f32(pose))


def sample_latents(n: int, seed: int, z_dim: int, start_index: int = 0) -> torch.Tensor:
    """Standard-normal latents ``(n, z_dim)`` float32; row ``i`` depends only on ``(seed, start_index + i)``."""
    _check(n, seed, start_index)
    return _latents_at(range(start_index, start_index + n), seed, z_dim)


def _latents_at(indices, seed: int, z_dim: int) -> torch.Tensor:
    if z_dim < 1:
        raise OmnibenchError(f"z_dim must be >= 1, got {z_dim}")
    rows = [np.random.Generator(np.random.PCG64(np.random.SeedSequence([_LATENT_TAG, seed, i]))).standard_normal(z_dim)
            for i in indices]
    return torch.from_numpy(np.asarray(rows, dtype=np.float32).reshape(len(rows), z_dim))
