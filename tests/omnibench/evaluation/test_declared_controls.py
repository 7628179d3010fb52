"""Declared controls: a metric measuring a control the generator ignores is reported as not applicable (with the
reason) in the result file and in tables, and its sample set is never generated."""

import pytest

from omnibench.errors import OmnibenchError
from omnibench.evaluation import evaluate
from omnibench.generators.base import CONTROL_NAMES, Generator
from omnibench.metric_api import METRICS, load_metric_plugins
from omnibench.results import load_result
from omnibench.tables import build_table, load_runs
from omnibench.tables.render import render_markdown

pytestmark = pytest.mark.usefixtures("tiny_protocol")

CAMERA_ONLY = "tests.omnibench.fakes:FakeCameraOnly"
SPECS = ["tests.omnibench.fakes:MeanPixel", "tests.omnibench.fakes:ExprSpread"]


def test_ignored_control_gives_not_applicable_entry(fresh_cache, tmp_path):
    fresh_cache()
    out = tmp_path / "r.json"
    r = evaluate("fake-camera-only", generator=CAMERA_ONLY, protocol="tiny", metrics=SPECS, out=out, progress=False)
    assert load_result(out) == r
    na = r["metrics"]["expr-spread"]
    assert na["value"] is None and na["n"] == 0 and na["ci95"] is None
    assert na["not_applicable"] == "generator 'fake-camera-only' ignores the expression control this metric measures"
    assert r["metrics"]["mean-pixel"]["value"] is not None and "not_applicable" not in r["metrics"]["mean-pixel"]
    assert set(r["sampling"]) == {"main"}  # the expr set was never generated
    assert "generate/expr" not in r["timings"]
    assert r["checkpoint"]["controls"] == ["camera"]


def test_honoured_control_is_measured(fresh_cache):
    fresh_cache()
    r = evaluate("fake", generator="tests.omnibench.fakes:FakeGenerator", protocol="tiny",
                 metrics=SPECS[1:], progress=False)
    assert r["metrics"]["expr-spread"]["value"] is not None
    assert r["checkpoint"]["controls"] == list(CONTROL_NAMES)


def test_tables_show_not_applicable_with_reason(fresh_cache, tmp_path):
    fresh_cache()
    out = tmp_path / "camera-only.json"
    evaluate("fake-camera-only", generator=CAMERA_ONLY, protocol="tiny", metrics=SPECS, out=out, progress=False)
    md = render_markdown(build_table(load_runs([str(out)])))
    row = next(line for line in md.splitlines() if line.startswith("| fake-camera-only"))
    assert row.rstrip(" |").endswith("n/a")
    assert "not applicable: generator 'fake-camera-only' ignores the expression control" in md


def test_unknown_control_name_is_refused():
    class Odd(Generator):
        name = "odd"
        controls = frozenset({"camera", "hair"})

        def synthesize(self, z, controls, truncation_psi=1.0):
            raise AssertionError

    with pytest.raises(OmnibenchError, match="generator 'odd' declares unknown control.s. hair"):
        Odd().honoured_controls()


def test_builtin_metrics_declare_what_they_measure():
    load_metric_plugins()
    need = {name: METRICS.get(name) for name in ("fid", "kid", "aed", "asd", "apd", "id-views", "id-expr",
                                                 "mv-reproj", "geometry")}
    assert need["fid"].required_controls("default") == frozenset()
    assert need["kid"].required_controls("default") == frozenset()
    assert need["aed"].required_controls("rmse") == {"expression"}
    assert need["asd"].required_controls("rmse") == {"shape"}
    assert need["apd"].required_controls("rmse") == {"neck", "jaw"}
    assert need["apd"].required_controls("jaw") == {"jaw"}
    assert need["apd"].required_controls("camera") == {"camera"}
    assert need["id-views"].required_controls("arcface") == {"camera"}
    assert need["id-expr"].required_controls("arcface") == {"expression"}
    assert need["mv-reproj"].required_controls("photo") == {"camera"}
    assert need["geometry"].required_controls("mean") == {"camera", "shape", "expression"}
    for cls in need.values():
        for v in cls.variants:
            assert cls.required_controls(v) <= set(CONTROL_NAMES)
