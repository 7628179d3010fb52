"""FLAME estimators (images -> FLAME shape, expression, pose, camera, confidence).

Built-ins, registered lazily in :data:`omnibench.metric_api.ESTIMATORS`:

* ``regressor``    — small CNN trained on renders of the head model (the synthetic profile's default);
* ``landmark-fit`` — 68 2D landmarks (face-alignment FAN, else dlib) + FLAME fitted by optimisation;
* ``photo-fit``    — the same fit started from a camera placed by the landmarks (real photographs);
* ``deca``, ``emoca``, ``smirk`` — the field's estimators rebuilt, on the user's weights files.

Other estimators plug in without touching omnibench: subclass
:class:`Estimator` and either pass ``--option estimator=package.module:Class`` or register the class under
a name with an ``omnibench.metrics`` entry point (see ``docs/metrics-control.md``).
"""

from __future__ import annotations

from typing import Any

from metrics.estimators.base import Estimator, FlameEstimate, null_estimate
from metrics.registry import BUILTIN_ESTIMATORS, register_estimators
from omnibench.errors import OmnibenchError
from omnibench.metric_api import ESTIMATORS, load_metric_plugins
from omnibench.registry import load_object


def resolve_estimator_class(spec: str) -> type[Estimator]:
    """A registry name (``regressor``) or ``package.module:Class`` -> the estimator class."""
    if ":" in spec:
        cls = load_object(spec)
    else:
        load_metric_plugins()
        if spec not in ESTIMATORS and spec in BUILTIN_ESTIMATORS:
            register_estimators(ESTIMATORS)
        cls = ESTIMATORS.get(spec)
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        raise OmnibenchError(f"'{spec}' is not a metrics.estimators.Estimator subclass")
    return cls


def load_estimator(spec: str, head_model: Any, device: str = "cpu", **options: Any) -> Estimator:
    """Build the estimator named ``spec`` (registry name or ``module:Class``) for ``head_model``."""
    return resolve_estimator_class(spec)(head_model, device=device, **options)


__all__ = [
    "BUILTIN_ESTIMATORS",
    "Estimator",
    "FlameEstimate",
    "load_estimator",
    "null_estimate",
    "register_estimators",
    "resolve_estimator_class",
]
