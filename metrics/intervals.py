"""The one per-sample confidence interval of the metric families.

Every per-sample (or per-group) interval is a percentile bootstrap with ``ctx.protocol.bootstrap``
resamples (1000 in the shipped protocols) seeded by ``ctx.seed``. FID's ``FID_BOOTSTRAP`` is not one of
these: it is part of the FID variant's own interval (:mod:`metrics.fid`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from omnibench.metric_api import MetricContext, bootstrap_ci


def ci95(ctx: MetricContext, values: np.ndarray,
         statistic: Callable[[np.ndarray], float] = np.mean) -> tuple[float, float] | None:
    """Bootstrap 95% interval of ``statistic`` over ``values`` (first axis); None for fewer than 2 finite
    values."""
    return bootstrap_ci(np.asarray(values), statistic=statistic, n_boot=int(ctx.protocol.bootstrap), seed=int(ctx.seed))
