import numpy as np

from omnibench.metric_api import bootstrap_ci


def test_bootstrap_ci_brackets_mean_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 1.0, size=400)
    lo, hi = bootstrap_ci(x)
    assert lo < x.mean() < hi
    assert 0.1 < hi - lo < 0.3  # ~ 2 * 1.96 / sqrt(400) = 0.196
    assert bootstrap_ci(x) == (lo, hi)
    assert bootstrap_ci(np.array([1.0])) is None
