"""Which FLAME estimator a metric context asks for: the one default of every metric that runs an estimator
(``aed``/``asd``/``apd`` and ``mv-reproj@flame``).

``--option estimator=NAME|package.module:Class`` picks it, ``--option estimator.KEY=VALUE`` passes its
options (values arrive as strings; numbers are turned into int/float); programmatic callers may also give a
dict under ``estimator_options``. Without ``estimator``: :data:`DEFAULT_ESTIMATOR` when weights for the
head model and the protocol's camera framing ship or sit in the cache, else :data:`FALLBACK_ESTIMATOR`.
Estimators whose class sets ``uses_framing = True`` receive the protocol's framing as option ``framing``.
"""

from __future__ import annotations

from typing import Any

from omnibench.metric_api import MetricContext

DEFAULT_ESTIMATOR = "regressor"  # the synthetic profile's estimator: needs weights trained for the head model
FALLBACK_ESTIMATOR = "landmark-fit"  # any FLAME-format head: 2D landmarks + fitting, no trained weights


def _coerce(value: Any) -> Any:
    """``--option`` values arrive as strings: turn numbers into int/float."""
    if not isinstance(value, str):
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def default_estimator(head: Any, framing: str = "v1") -> str:
    """:data:`DEFAULT_ESTIMATOR` when weights for ``head`` (matched by its sha256) and the camera ``framing``
    ship or sit in the cache, else :data:`FALLBACK_ESTIMATOR`."""
    from metrics.estimators.regressor import find_weights

    return DEFAULT_ESTIMATOR if find_weights(getattr(head, "sha256", None), framing=framing) else FALLBACK_ESTIMATOR


def estimator_spec(ctx: MetricContext) -> tuple[str, dict[str, Any]]:
    """Estimator name/``module:Class`` and its options for this context (see the module docstring)."""
    options = ctx.options
    spec = options.get("estimator")
    est_opts = dict(options.get("estimator_options") or {})
    est_opts.update({k.split(".", 1)[1]: _coerce(v) for k, v in options.items() if k.startswith("estimator.")})
    framing = ctx.protocol.camera.framing.name
    if not spec:
        spec = default_estimator(ctx.head_model(), framing)
    from metrics.estimators import resolve_estimator_class

    if resolve_estimator_class(str(spec)).uses_framing:
        est_opts.setdefault("framing", framing)  # where the protocol's cameras sit
    return str(spec), est_opts
