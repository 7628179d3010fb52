"""Control accuracy: AED (expression), ASD (shape), APD (pose) — given controls vs re-estimated ones.

For every sample of the ``main`` set, the FLAME controls given to the generator are compared with the
controls a FLAME estimator (:mod:`metrics.estimators`) recovers from the generated image. Lower is
better. Variants (``name@variant``; the default is marked *):

* ``aed@rmse``* / ``asd@rmse``*: RMSE over every entry of the first ``min(given, estimated, 50)``
  expression (``100`` shape) coefficients, ``sqrt(mean((given - est)^2))`` as Next3D's ``evaluation.py``.
* ``aed@l1`` / ``asd@l1``: mean absolute difference over the same entries (Next3D
  ``cal_3dmm_distance.py`` / GAGAvatar style).
  ``details.per_column`` gives each compared column's ``bias`` (mean estimated - given) and ``corr``
  (Pearson correlation of given and estimated): which controls a generator ignores or renders offset.
  ``details.shuffled_null`` (``rmse``/``l1`` of AED and ASD; ``rmse``/``l1``/``jaw`` of APD) scores the same
  estimates against every *other* sample's given controls: the value a generator that ignores the control
  gets on its *own* images, so estimator domain shift cancels. ``gain`` = null - value, with a paired
  bootstrap ``gain_ci95``; an interval above 0 means the images carry the control as the estimator reads
  it. It is a diagnostic beside the metric, not the protocol's null (``oracle-noexpr``, reports/calibration.md).
* ``aed@vertex`` / ``asd@vertex``: mean distance (mm) between head-model vertices of the given and the
  estimated parameters, over the ``face`` region when the head model has one (else every vertex),
  neutral pose; AED holds the *given shape* fixed and swaps only expression, ASD holds the *given
  expression* fixed and swaps only shape.
* ``apd@rmse``*: RMSE over the 6 entries neck (pose 3:6) + jaw (pose 6:9) axis-angle, radians.
* ``apd@l1``: mean absolute difference over the same 6 entries, radians.
* ``apd@jaw``: RMSE over jaw (pose 6:9) only, radians.
* ``apd@camera``: mean geodesic angle (degrees) between the given and estimated head-in-camera
  rotation (camera rotation composed with the global pose), i.e. view/head-pose accuracy.

Failures (``detected == False``) are counted in ``failures`` and scored as the null estimate (zero
coefficients, frontal camera), never dropped; ``details.value_detected_only`` gives the value over the
detected samples alone. ``ci95``: bootstrap over samples (:func:`metrics.intervals.ci95`: the protocol's
``bootstrap`` resamples, seed ``ctx.seed``). The estimator comes from the context
(:func:`metrics.estimators.choice.estimator_spec`: ``--option estimator=NAME|module:Class``,
``--option estimator.KEY=VALUE`` for its options; default ``regressor`` when weights for the head model
exist, else ``landmark-fit``) and runs once per context for all three metrics (``ctx.memo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metrics.control_math import (
    aggregate,
    common_columns,
    per_sample_param_error,
    per_sample_rotation_error_deg,
    per_sample_shuffled_error,
    per_sample_vertex_distance,
)
from metrics.estimators import FlameEstimate, load_estimator
from metrics.estimators.choice import estimator_spec
from metrics.intervals import ci95
from omnibench.errors import OmnibenchError
from omnibench.metric_api import Metric, MetricContext, MetricResult

EXPRESSION_CAP = 50  # DECA/EMOCA-compatible (Next3D compares 50 expression coefficients)
SHAPE_CAP = 100  # DECA/EMOCA shape width
NECK_JAW = slice(3, 9)
JAW = slice(6, 9)


@dataclass
class ControlPairs:
    """Given controls and (failure-nulled) estimates of the ``main`` set, aligned row by row."""

    given: Any  # omnibench.generators.base.Controls
    estimate: FlameEstimate  # failures replaced by the null estimate
    raw: FlameEstimate  # as returned by the estimator
    estimator: dict[str, Any]


def _estimate_all(estimator: Any, images: torch.Tensor, batch_size: int) -> FlameEstimate:
    parts = []
    for i in range(0, images.shape[0], max(1, batch_size)):
        parts.append(estimator.estimate(images[i : i + batch_size]).validate())
    if not parts:
        raise OmnibenchError("the 'main' sample set is empty: nothing to estimate")
    def to_cpu(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu()
        return t if t.dtype == torch.bool else t.float()

    return FlameEstimate.cat([FlameEstimate(**{k: to_cpu(v) for k, v in vars(p).items()}) for p in parts])


def control_pairs(ctx: MetricContext) -> ControlPairs:
    """Run the context's estimator once on the ``main`` set (memoised per context: AED, ASD and APD share it)."""
    return ctx.memo(("control-pairs", "main"), lambda: _control_pairs(ctx))


def _control_pairs(ctx: MetricContext) -> ControlPairs:
    samples = ctx.samples("main")
    spec, opts = estimator_spec(ctx)
    estimator = load_estimator(spec, ctx.head_model(), device=ctx.device, **opts)
    raw = _estimate_all(estimator, samples.images, ctx.batch_size)
    if len(raw) != len(samples.controls):
        raise OmnibenchError(f"estimator returned {len(raw)} estimates for {len(samples.controls)} images")
    return ControlPairs(samples.controls.to("cpu"), raw.with_failures_nulled(), raw, estimator.describe())


def _fit(t: torch.Tensor, n: int) -> torch.Tensor:
    t = t.float()
    return t[:, :n] if t.shape[1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[1]))


def head_vertices(head: Any, shape: torch.Tensor, expression: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Neutral-pose vertices ``(N, V, 3)`` of ``head`` for the given coefficients (widths fitted to the model)."""
    n_s, n_e = int(head.n_shape), int(head.n_expression)
    shape, expression = _fit(shape, n_s), _fit(expression, n_e)
    dev = next((p.device for p in head.parameters()), None) if hasattr(head, "parameters") else None
    dev = dev or (head.template.device if hasattr(head, "template") else torch.device("cpu"))
    out = []
    with torch.no_grad():
        for i in range(0, shape.shape[0], batch_size):
            s, e = shape[i : i + batch_size].to(dev), expression[i : i + batch_size].to(dev)
            pose = torch.zeros(s.shape[0], 15, device=dev)
            out.append(head(shape=s, expression=e, pose=pose).vertices.float().cpu())
    return torch.cat(out)


def face_region(head: Any) -> tuple[torch.Tensor | None, str]:
    """Vertex indices of the head model's ``face`` mask (None = all vertices) and the region's name."""
    masks = getattr(head, "masks", None) or {}
    if "face" in masks:
        return torch.as_tensor(masks["face"]).long().cpu(), "face"
    return None, "all"


class _ControlMetric(Metric):
    higher_is_better = False
    requires = ("main",)
    version = 1
    default_variant = "rmse"

    def per_sample(self, ctx: MetricContext, pairs: ControlPairs, variant: str, estimate: FlameEstimate) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError

    def shuffled_per_sample(self, pairs: ControlPairs, variant: str) -> torch.Tensor | None:
        """Per-sample values of the shuffled-pairing null (:func:`per_sample_shuffled_error`), None where the
        variant has none (vertex and camera variants)."""
        return None

    @staticmethod
    def _kind(variant: str) -> str:
        return "rmse" if variant in ("rmse", "jaw") else "mean"

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        return self.compute_with_values(ctx, variant)[0]

    def compute_with_values(self, ctx: MetricContext, variant: str) -> tuple[MetricResult, torch.Tensor]:
        """The result and the per-sample values it aggregates (for paired comparisons between generators)."""
        if variant not in self.variants:
            raise OmnibenchError(f"unknown variant '{variant}' of '{self.name}'; available: {', '.join(self.variants)}")
        pairs = control_pairs(ctx)
        values, details = self.per_sample(ctx, pairs, variant, pairs.estimate)
        kind = self._kind(variant)
        detected = pairs.raw.detected
        failures = int((~detected).sum())
        value = aggregate(values, kind)
        stat = (lambda v: float(aggregate(v, kind)))  # noqa: E731 - bootstrap statistic
        ci = ci95(ctx, values.numpy(), statistic=stat)
        shuffled = self.shuffled_per_sample(pairs, variant) if len(values) >= 2 else None
        if shuffled is not None:
            both = torch.stack([values.double(), shuffled], 1).numpy()
            gain = (lambda a: float(aggregate(a[:, 1], kind) - aggregate(a[:, 0], kind)))  # noqa: E731
            null = aggregate(shuffled, kind)
            details["shuffled_null"] = {
                "value": null,
                "gain": null - value,
                "gain_ci95": ci95(ctx, both, statistic=gain),
                "pairing": "each estimate against every other sample's given controls, averaged; what a generator "
                           "that ignores the control scores on its own images (gain > 0: the images carry it)",
            }
        details.update(
            {
                "estimator": pairs.estimator.get("name"),
                "failure_rate": failures / max(1, len(detected)),
                "value_detected_only": aggregate(values[detected], kind) if bool(detected.any()) else None,
                "aggregate": "sqrt(mean of per-sample MSE)" if kind == "rmse" else "mean",
            }
        )
        result = MetricResult(
            value=value,
            n=int(values.shape[0]),
            ci95=ci,
            failures=failures,
            details=details,
            backbones={"estimator": {"name": pairs.estimator.get("name"), "sha256": pairs.estimator.get("sha256")}},
            unit=self.units[variant],
        )
        return result, values


def per_column_agreement(given: torch.Tensor, est: torch.Tensor) -> dict[str, list[float | None]]:
    """Diagnostics per coefficient column over all samples (failures as the null estimate): ``bias`` =
    mean(estimated - given) and ``corr`` = Pearson correlation of given and estimated (None where either is
    constant). A generator that ignores a column has corr ~ 0; one that renders it with an offset has a bias."""
    g, e = given.double(), est.double()
    gc, ec = g - g.mean(0), e - e.mean(0)
    denom = (gc.pow(2).sum(0) * ec.pow(2).sum(0)).sqrt()
    corr = (gc * ec).sum(0) / denom
    return {"bias": [round(float(b), 6) for b in (e - g).mean(0)],
            "corr": [round(float(c), 6) if float(d) > 1e-12 else None for c, d in zip(corr, denom)]}


class _CoefficientMetric(_ControlMetric):
    field: str = "expression"
    cap: int = EXPRESSION_CAP

    def _compared(self, given: Any, estimate: FlameEstimate) -> tuple[torch.Tensor, torch.Tensor]:
        """The compared coefficient columns ``(N, n)`` of the given controls and the estimate."""
        g, e = getattr(given, self.field), getattr(estimate, self.field)
        n = common_columns(g, e, self.cap)
        return g[:, :n], e[:, :n]

    def per_sample(self, ctx: MetricContext, pairs: ControlPairs, variant: str, estimate: FlameEstimate) -> tuple[torch.Tensor, dict[str, Any]]:
        if variant in ("rmse", "l1"):
            g, e = self._compared(pairs.given, estimate)
            details = {"columns": g.shape[1], "field": self.field, "per_column": per_column_agreement(g, e)}
            return per_sample_param_error(g, e, variant), details
        head = ctx.head_model()
        region, region_name = face_region(head)
        g_shape, g_expr, est = pairs.given.shape, pairs.given.expression, getattr(estimate, self.field)
        if self.field == "expression":  # shape held at the given value; only expression differs
            a, b = head_vertices(head, g_shape, g_expr), head_vertices(head, g_shape, est)
        else:  # expression held at the given value; only shape differs
            a, b = head_vertices(head, g_shape, g_expr), head_vertices(head, est, g_expr)
        mm = per_sample_vertex_distance(a, b, region) * 1000.0
        return mm, {"region": region_name, "field": self.field, "pose": "neutral"}

    def shuffled_per_sample(self, pairs: ControlPairs, variant: str) -> torch.Tensor | None:
        if variant not in ("rmse", "l1"):
            return None
        return per_sample_shuffled_error(*self._compared(pairs.given, pairs.estimate), variant)


class AED(_CoefficientMetric):
    """Average Expression Distance between given and re-estimated expression."""

    name = "aed"
    field = "expression"
    controls = ("expression",)
    cap = EXPRESSION_CAP
    variants = {
        "rmse": "RMSE over all entries of the first min(given, estimated, 50) expression coefficients (Next3D)",
        "l1": "mean |given - estimated| over the same expression coefficients",
        "vertex": "mean vertex distance (mm, face region) with the given shape held fixed, neutral pose",
    }
    units = {"rmse": "coeff", "l1": "coeff", "vertex": "mm"}


class ASD(_CoefficientMetric):
    """Average Shape Distance between given and re-estimated identity shape."""

    name = "asd"
    field = "shape"
    controls = ("shape",)
    cap = SHAPE_CAP
    variants = {
        "rmse": "RMSE over all entries of the first min(given, estimated, 100) shape coefficients",
        "l1": "mean |given - estimated| over the same shape coefficients",
        "vertex": "mean vertex distance (mm, face region) with the given expression held fixed, neutral pose",
    }
    units = {"rmse": "coeff", "l1": "coeff", "vertex": "mm"}


class APD(_ControlMetric):
    """Average Pose Distance: jaw/neck articulation and head-in-camera rotation."""

    name = "apd"
    variants = {
        "rmse": "RMSE over neck+jaw axis-angle (pose[3:9], 6 entries), radians",
        "l1": "mean |given - estimated| over neck+jaw axis-angle (pose[3:9]), radians",
        "jaw": "RMSE over jaw axis-angle (pose[6:9]), radians",
        "camera": "mean geodesic angle (degrees) between given and estimated head-in-camera rotation",
    }
    units = {"rmse": "rad", "l1": "rad", "jaw": "rad", "camera": "deg"}

    @classmethod
    def required_controls(cls, variant: str) -> frozenset[str]:
        """neck + jaw (``rmse``, ``l1``), the jaw (``jaw``) or the camera (``camera``: protocols draw the
        global pose as zero, so the head-in-camera rotation is the camera's)."""
        return frozenset({"jaw": ("jaw",), "camera": ("camera",)}.get(variant, ("neck", "jaw")))

    def per_sample(self, ctx: MetricContext, pairs: ControlPairs, variant: str, estimate: FlameEstimate) -> tuple[torch.Tensor, dict[str, Any]]:
        g = pairs.given
        if variant == "camera":
            deg = per_sample_rotation_error_deg(g.camera, g.pose, estimate.camera, estimate.pose)
            return deg, {"dims": "camera rotation o global pose"}
        sl, dims, kind = self._articulation(variant)
        return per_sample_param_error(g.pose[:, sl], estimate.pose[:, sl], kind), {"dims": dims}

    @staticmethod
    def _articulation(variant: str) -> tuple[slice, str, str]:
        """Pose slice, its description and the parameter distance of a non-camera variant."""
        sl, dims = (JAW, "pose[6:9] jaw") if variant == "jaw" else (NECK_JAW, "pose[3:9] neck+jaw")
        return sl, dims, "l1" if variant == "l1" else "rmse"

    def shuffled_per_sample(self, pairs: ControlPairs, variant: str) -> torch.Tensor | None:
        if variant == "camera":
            return None
        sl, _, kind = self._articulation(variant)
        return per_sample_shuffled_error(pairs.given.pose[:, sl], pairs.estimate.pose[:, sl], kind)
