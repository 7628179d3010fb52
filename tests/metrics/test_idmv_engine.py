"""mv-reproj / geometry / id-views through the real evaluation engine with an exact ray-cast generator."""

from __future__ import annotations

import pytest

import metrics.identity as identity
from omnibench.evaluation import EvalContext, evaluate
from omnibench.protocol import Protocol, SetSize
from tests.metrics.idmv_fakes import FakeHeadModel

GEN = "tests.metrics.idmv_fakes:RaycastGenerator"


@pytest.fixture
def tiny_protocol():
    return Protocol(
        name="idmv-tiny",
        version=1,
        description="test",
        seed=3,
        resolution=32,
        resize_policy="none",
        truncation_psi=1.0,
        main=SetSize(2),
        views=SetSize(3, 3),
        expr=SetSize(2, 2),
        view_list=((-0.3, 0.0), (0.0, 0.0), (0.3, 0.0)),
    )


def test_engine_runs_multiview_metrics_on_exact_generator(tiny_protocol, monkeypatch, tmp_path):
    head = FakeHeadModel()
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(EvalContext, "head_model", lambda self: head)
    monkeypatch.setattr(identity, "default_backbone_spec", lambda ctx: "dlib")
    r = evaluate(
        "raycast-fake",
        generator=GEN,
        protocol=tiny_protocol,
        metrics=["mv-reproj", "mv-reproj@depth", "geometry", "id-views"],
        progress=False,
    )
    m = r["metrics"]
    by = {k.split("@")[0] + ("@" + k.split("@")[1] if "@" in k else ""): v for k, v in m.items()}
    photo = next(v for k, v in by.items() if k.startswith("mv-reproj") and "depth" not in k)
    depth = next(v for k, v in by.items() if "depth" in k)
    geom = next(v for k, v in by.items() if k.startswith("geometry"))
    idv = next(v for k, v in by.items() if k.startswith("id-views"))
    assert photo["value"] < 0.01 and depth["value"] < 1e-3
    assert geom["value"] < 1e-5 and geom["failures"] == 0
    # dlib finds no human face on a ray-cast ball: every image is a failure, none silently dropped
    assert idv["value"] is None and idv["failures"] == 9
