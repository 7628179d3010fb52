"""Calibration on generators of known answer, with the shipped regressor weights (needs the synthetic head).

oracle near the floor; oracle-noexpr clearly worse on AED but not on ASD; oracle-noshape the reverse;
noise worst, every sample a failure. Also: the shipped weights reach the error stated in
docs/metrics-control.md on held-out renders.
"""

from __future__ import annotations

import json

import pytest

from metrics.estimators.regressor import WEIGHTS_DIR, find_weights, load_checkpoint

N = 48


@pytest.fixture(scope="module")
def head():
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


@pytest.fixture(scope="module")
def weights(head):
    path = find_weights(head.sha256, [WEIGHTS_DIR])
    assert path is not None, "no shipped regressor weights for the synthetic head (sha256 changed?)"
    return path


@pytest.fixture(scope="module")
def calibration(weights):
    from metrics.calibration_control import run_calibration

    return run_calibration(n=N, seed=7, res=64, estimator="regressor",
                           specs=("aed@rmse", "aed@vertex", "asd@rmse", "asd@vertex", "apd@rmse", "apd@camera"))


def test_shipped_weights_are_pinned_and_documented(weights):
    meta = load_checkpoint(weights)[4]  # verifies the sha256 pin
    assert meta["command"].startswith("omnibench estimators train")
    assert weights.stat().st_size < 4_000_000
    held = meta["heldout"]
    # the errors stated in docs/metrics-control.md (held-out renders, data seed 2000)
    assert held["camera_deg"] < 4.0
    assert held["jaw_rmse_rad"] < 0.02
    assert held["neck_rmse_rad"] < 0.8 * held["neck_rmse_zero_baseline"]
    assert held["expression16_rmse"] < held["expression16_rmse_zero_baseline"]
    assert held["detected"] > 0.99
    json.dumps(meta)


def test_noise_is_worst_and_fails_everywhere(calibration):
    r = {g: {s: v["value"] for s, v in row.items()} for g, row in calibration.items()}
    for spec in r["oracle"]:
        assert r["noise"][spec] >= 0.9 * max(r[g][spec] for g in ("oracle", "oracle-noexpr", "oracle-noshape")), spec
    for spec in ("apd@rmse", "apd@camera"):
        assert r["noise"][spec] > 1.5 * r["oracle"][spec], spec
    assert calibration["noise"]["aed@rmse"]["failures"] == N
    assert calibration["oracle"]["aed@rmse"]["failures"] <= 1


@pytest.mark.xfail(strict=True, reason="known weakness: at 64 px the shipped regressor cannot see expression or "
                   "fine shape (held-out RMSE near the zero baseline), so AED/ASD do not yet separate the ablations")
def test_oracle_is_at_the_floor_and_ablations_move_the_right_metric(calibration):
    r = {g: {s: v["value"] for s, v in row.items()} for g, row in calibration.items()}
    o, ne, ns, nz = r["oracle"], r["oracle-noexpr"], r["oracle-noshape"], r["noise"]
    for spec in ("aed@rmse", "aed@vertex"):
        assert ne[spec] > 1.5 * o[spec], spec
        assert ns[spec] < 1.25 * o[spec], spec
    for spec in ("asd@rmse", "asd@vertex"):
        assert ns[spec] > 1.3 * o[spec], spec
        assert ne[spec] < 1.25 * o[spec], spec
    for spec in o:
        assert nz[spec] >= 0.9 * max(o[spec], ne[spec], ns[spec]), spec
        assert nz[spec] > o[spec], spec
    assert calibration["noise"]["aed@rmse"]["failures"] == N
    assert calibration["oracle"]["aed@rmse"]["failures"] <= 1
