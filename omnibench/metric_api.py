"""Metric contract and registries shared by the evaluation engine and the metric families.

A metric family (in the sibling package ``metrics``) registers :class:`Metric` subclasses into
:data:`METRICS` from its ``register_all(registries)`` entry point; the engine never imports it by name.

Metric names on the command line are ``name`` or ``name@variant`` (``aed@rmse``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from omnibench.errors import OmnibenchError, suggest
from omnibench.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    pass


@dataclass
class MetricResult:
    """One metric's outcome; ``ci95`` is a bootstrap 95% interval ``(low, high)`` or None."""

    value: float | None
    n: int
    ci95: tuple[float, float] | None = None
    failures: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    backbones: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> {"name", "sha256"}
    unit: str | None = None


class Metric(ABC):
    """Base class of metrics.

    Class attributes: ``name``, ``version`` (bump on any change that moves numbers), ``higher_is_better``,
    ``variants`` (variant -> one-line definition), ``default_variant``, ``requires`` (sample-set names
    the engine must generate: ``main``, ``views``, ``expr``; ``real`` for the real image set).
    """

    name: str = ""
    version: int = 1
    higher_is_better: bool = False
    variants: dict[str, str] = {"default": ""}
    default_variant: str = "default"
    requires: tuple[str, ...] = ("main",)
    unit: str | None = None

    @abstractmethod
    def compute(self, ctx: Any, variant: str) -> MetricResult:
        """Compute from the evaluation context (see ``omnibench.evaluation.EvalContext``)."""


METRICS: Registry[type[Metric]] = Registry("metric")
ESTIMATORS: Registry[Any] = Registry("estimator")
BACKBONES: Registry[Any] = Registry("backbone")

_plugins_loaded = False


def load_metric_plugins() -> None:
    """Call every ``omnibench.metrics`` entry point with the registries (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    registries = {"metrics": METRICS, "estimators": ESTIMATORS, "backbones": BACKBONES}
    for ep in metadata.entry_points(group="omnibench.metrics"):
        fn: Callable[[dict[str, Registry]], None] = ep.load()
        fn(registries)


def parse_metric_spec(spec: str) -> tuple[type[Metric], str]:
    """``"aed@rmse"`` -> (metric class, variant); unknown names or variants raise with a suggestion."""
    load_metric_plugins()
    name, _, variant = spec.partition("@")
    cls = METRICS.get(name)
    variant = variant or cls.default_variant
    if variant not in cls.variants:
        raise OmnibenchError(
            f"unknown variant '{variant}' of metric '{name}'{suggest(variant, cls.variants)}; "
            f"available: {', '.join(cls.variants)}"
        )
    return cls, variant


def bootstrap_ci(
    values: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of ``statistic`` over per-sample ``values`` (first axis).

    Deterministic for a seed; returns None for fewer than 2 finite samples.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[np.isfinite(v)]
    if v.shape[0] < 2:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, v.shape[0], size=(n_boot, v.shape[0]))
    stats = np.array([statistic(v[i]) for i in idx], dtype=np.float64)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)
