"""AED / ASD / APD against a mock estimator with known noise (answers computed independently)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from metrics.control import AED, APD, ASD
from metrics.control_math import geodesic_degrees, per_sample_rotation_error_deg
from omnibench.errors import OmnibenchError
from omnibench.metric_api import parse_metric_spec
from tests.metrics.control_fakes import FakeContext, FakeHead, MockEstimator, random_controls

MOCK = "tests.metrics.control_fakes:MockEstimator"
N = 400


@pytest.fixture()
def controls():
    c = random_controls(N)
    MockEstimator.truth = c
    return c


def test_rmse_and_l1_match_known_sigma(controls):
    sigma = 0.3
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=sigma, sigma_shape=2 * sigma, sigma_pose=0.05)
    aed = AED().compute(ctx, "rmse")
    # 400 x 10 entries: the RMSE of N(0, sigma) noise is sigma within a few percent
    assert aed.value == pytest.approx(sigma, rel=0.05)
    assert aed.unit == "coeff" and aed.failures == 0 and aed.n == N
    assert aed.ci95[0] < aed.value < aed.ci95[1]
    assert AED().compute(ctx, "l1").value == pytest.approx(sigma * math.sqrt(2 / math.pi), rel=0.05)
    assert ASD().compute(ctx, "rmse").value == pytest.approx(2 * sigma, rel=0.05)
    apd = APD().compute(ctx, "rmse")
    assert apd.value == pytest.approx(0.05, rel=0.08) and apd.details["dims"].startswith("pose[3:9]")
    assert APD().compute(ctx, "jaw").value == pytest.approx(0.05, rel=0.1)


def test_zero_noise_gives_zero_everywhere(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK)
    for metric, variants in ((AED(), ("rmse", "l1", "vertex")), (ASD(), ("rmse", "l1", "vertex")), (APD(), ("rmse", "l1", "jaw", "camera"))):
        for v in variants:
            assert metric.compute(ctx, v).value == pytest.approx(0.0, abs=1e-4), (metric.name, v)


def test_rmse_matches_an_independent_numpy_computation(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=0.2)
    est = MockEstimator(None, sigma_expr=0.2).estimate(ctx.samples("main").images)
    expected = np.sqrt(np.mean((controls.expression.numpy() - est.expression.numpy()) ** 2))
    assert AED().compute(ctx, "rmse").value == pytest.approx(float(expected), rel=1e-6)


def test_per_column_diagnostics_match_numpy_and_flag_an_ignored_column(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=0.2)
    est = MockEstimator(None, sigma_expr=0.2).estimate(ctx.samples("main").images)
    cols = AED().compute(ctx, "rmse").details["per_column"]
    g, e = controls.expression.numpy().astype(np.float64), est.expression.numpy().astype(np.float64)
    assert cols["bias"] == pytest.approx(list((e - g).mean(0)), abs=1e-6)
    assert cols["corr"] == pytest.approx([np.corrcoef(g[:, k], e[:, k])[0, 1] for k in range(g.shape[1])], abs=1e-6)
    assert min(cols["corr"]) > 0.8  # noise 0.2 on unit-scale controls
    # an estimate that ignores column 0 (constant 0.5) has no correlation there and a bias of 0.5 - mean(given)
    from metrics.control import per_column_agreement

    e2 = est.expression.clone()
    e2[:, 0] = 0.5
    d = per_column_agreement(controls.expression, e2)
    assert d["corr"][0] is None and d["bias"][0] == pytest.approx(0.5 - float(g[:, 0].mean()), abs=1e-6)


def test_shuffled_null_matches_all_pairings_computed_by_hand(controls):
    sigma = 0.3
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=sigma, sigma_pose=0.05)
    est = MockEstimator(None, sigma_expr=sigma, sigma_pose=0.05).estimate(ctx.samples("main").images)
    g, e = controls.expression.numpy().astype(np.float64), est.expression.numpy().astype(np.float64)
    pair_mse = ((e[:, None, :] - g[None, :, :]) ** 2).mean(-1)  # (i: estimate, j: given)
    np.fill_diagonal(pair_mse, np.nan)
    expected = float(np.sqrt(np.nanmean(pair_mse)))
    aed = AED().compute(ctx, "rmse")
    null = aed.details["shuffled_null"]
    assert null["value"] == pytest.approx(expected, rel=1e-9)
    # unit-variance columns: another sample's controls are sqrt(2 + sigma^2) away, the true ones sigma
    assert null["value"] == pytest.approx(math.sqrt(2 + sigma**2), rel=0.05)
    assert null["gain"] == pytest.approx(null["value"] - aed.value)
    assert 0 < null["gain_ci95"][0] < null["gain"] < null["gain_ci95"][1]
    pair_l1 = np.abs(e[:, None, :] - g[None, :, :]).mean(-1)
    np.fill_diagonal(pair_l1, np.nan)
    assert AED().compute(ctx, "l1").details["shuffled_null"]["value"] == pytest.approx(float(np.nanmean(pair_l1)), rel=1e-9)
    assert APD().compute(ctx, "jaw").details["shuffled_null"]["gain_ci95"][0] > 0  # jaw drawn in [0, 0.3], noise 0.05
    for metric, variant in ((AED(), "vertex"), (APD(), "camera")):
        assert "shuffled_null" not in metric.compute(ctx, variant).details


def test_shuffled_null_shows_no_gain_for_a_generator_that_ignores_expression(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=0.5, ignore_expression=True)
    aed = AED().compute(ctx, "rmse")
    null = aed.details["shuffled_null"]
    # the estimates carry nothing of the given expression: both pairings score sqrt(1 + 0.25) alike
    assert aed.value == pytest.approx(math.sqrt(1.25), rel=0.05)
    assert abs(null["gain"]) < 0.01 * aed.value
    assert null["gain_ci95"][0] < 0 < null["gain_ci95"][1]
    assert ASD().compute(ctx, "rmse").details["shuffled_null"]["gain_ci95"][0] > 0  # shape still carried


def test_vertex_variant_matches_linear_blendshapes(controls):
    head = FakeHead()
    ctx = FakeContext(controls, head, MOCK, sigma_expr=0.5, sigma_shape=0.5)
    est = MockEstimator(None, sigma_expr=0.5, sigma_shape=0.5).estimate(ctx.samples("main").images)
    face = head.masks["face"]
    # the fake head is linear in expression at neutral pose: vertex offset = exprdirs @ delta
    d = np.einsum("vkn,bn->bvk", head.exprdirs.numpy(), (est.expression - controls.expression).numpy())
    expected_mm = np.linalg.norm(d[:, face.numpy()], axis=-1).mean() * 1000
    res = AED().compute(ctx, "vertex")
    assert res.unit == "mm" and res.details["region"] == "face"
    assert res.value == pytest.approx(float(expected_mm), rel=1e-4)
    d = np.einsum("vkn,bn->bvk", head.shapedirs.numpy(), (est.shape - controls.shape).numpy())
    assert ASD().compute(ctx, "vertex").value == pytest.approx(float(np.linalg.norm(d[:, face.numpy()], axis=-1).mean() * 1000), rel=1e-4)


def test_camera_variant_recovers_known_rotation_angle(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK, camera_deg=7.5)
    res = APD().compute(ctx, "camera")
    assert res.unit == "deg" and res.value == pytest.approx(7.5, abs=1e-3)


def test_geodesic_is_symmetric_and_global_pose_is_folded_in():
    from metrics.control_math import axis_angle_to_matrix

    r1 = axis_angle_to_matrix(torch.tensor([[0.1, 0.2, -0.3]], dtype=torch.float64))
    r2 = axis_angle_to_matrix(torch.tensor([[0.1, 0.2, -0.3]], dtype=torch.float64) * 1.5)
    angle = math.degrees(0.5 * math.sqrt(0.01 + 0.04 + 0.09))
    assert float(geodesic_degrees(r1, r2)) == pytest.approx(angle, rel=1e-9)
    assert float(geodesic_degrees(r2, r1)) == pytest.approx(angle, rel=1e-9)
    # a head rotated by global pose seen by a frontal camera == the head seen by a camera turned the other way
    from omnibench.cameras import orbit_camera

    cam_yaw = orbit_camera(torch.tensor([0.3]), torch.tensor([0.0]))
    cam0 = orbit_camera(torch.tensor([0.0]), torch.tensor([0.0]))
    pose = torch.zeros(1, 15)
    pose[0, 1] = -0.3  # head turns by -0.3 about +y instead of the camera moving by +0.3
    assert float(per_sample_rotation_error_deg(cam_yaw, torch.zeros(1, 15), cam0, pose)) == pytest.approx(0.0, abs=1e-5)


def test_failures_are_counted_and_scored_as_null_estimate(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK, sigma_expr=0.1, fail_every=5)
    res = AED().compute(ctx, "rmse")
    assert res.failures == N // 5 and res.n == N
    est = MockEstimator(None, sigma_expr=0.1).estimate(ctx.samples("main").images).expression.numpy()
    failed = (np.arange(N) % 5) == 0
    est[failed] = 0.0  # null estimate
    expected = np.sqrt(np.mean((controls.expression.numpy() - est) ** 2))
    assert res.value == pytest.approx(float(expected), rel=1e-6)
    assert res.details["value_detected_only"] == pytest.approx(0.1, rel=0.1)
    assert res.details["failure_rate"] == pytest.approx(0.2)


def test_column_cap_and_truncation():
    c = random_controls(50, n_expr=80)
    MockEstimator.truth = c
    ctx = FakeContext(c, FakeHead(), MOCK, sigma_expr=0.3)
    assert AED().compute(ctx, "rmse").details["columns"] == 50


def test_registry_names_variants_and_defaults():
    for spec, cls, variant in (("aed", AED, "rmse"), ("asd@vertex", ASD, "vertex"), ("apd@camera", APD, "camera")):
        got, v = parse_metric_spec(spec)
        assert got is cls and v == variant
        assert got.version == 1 and not got.higher_is_better and got.requires == ("main",)
    with pytest.raises(OmnibenchError, match="did you mean"):
        parse_metric_spec("aed@rmsee")


def test_estimates_are_shared_between_metrics(controls, monkeypatch):
    calls, built = [], []
    orig, orig_init = MockEstimator.estimate, MockEstimator.__init__

    def counting(self, images):
        calls.append(len(images))
        return orig(self, images)

    def counting_init(self, *args, **kwargs):
        built.append(1)
        orig_init(self, *args, **kwargs)

    monkeypatch.setattr(MockEstimator, "estimate", counting)
    monkeypatch.setattr(MockEstimator, "__init__", counting_init)
    ctx = FakeContext(controls, FakeHead(), MOCK)
    AED().compute(ctx, "rmse")
    ASD().compute(ctx, "l1")
    APD().compute(ctx, "camera")
    AED().compute(ctx, "vertex")
    assert sum(calls) == N  # one pass over the set, in ctx.batch_size chunks
    assert max(calls) == ctx.batch_size and len(built) == 1
    APD().compute(FakeContext(controls, FakeHead(), MOCK), "rmse")  # the memo belongs to the context
    assert sum(calls) == 2 * N and len(built) == 2


def test_estimator_options_from_command_line_strings(controls):
    ctx = FakeContext(controls, FakeHead(), MOCK)
    ctx.options = {"estimator": MOCK, "estimator.sigma_expr": "0.3"}  # as `--option KEY=VALUE` delivers them
    assert AED().compute(ctx, "rmse").value == pytest.approx(0.3, rel=0.05)


def test_protocol_framing_reaches_the_estimator_and_picks_its_weights(controls):
    """Under a v2 protocol the default estimator is chosen among weights for the ffhq framing (none ship yet,
    so landmark-fit) and estimators that declare ``uses_framing`` get the protocol's framing as an option."""
    from metrics.estimators.choice import estimator_spec
    from omnibench.memory_context import InMemoryContext
    from omnibench.protocol import get_protocol

    head = SimpleNamespace(sha256="3" * 64)
    ctx = InMemoryContext({}, head=head, protocol=get_protocol("quick@2"))
    assert estimator_spec(ctx) == ("landmark-fit", {"framing": "ffhq"})
    ctx1 = InMemoryContext({}, head=head, protocol=get_protocol("quick@1"))
    assert estimator_spec(ctx1) == ("landmark-fit", {"framing": "v1"})
    ctx1.options = {"estimator": MOCK}
    assert estimator_spec(ctx1) == (MOCK, {})  # a plug-in that does not declare uses_framing gets nothing
