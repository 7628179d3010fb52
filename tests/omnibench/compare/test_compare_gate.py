"""Exit codes and decisions of ``omnibench compare`` (the CI regression gate)."""

import json
import sys
from pathlib import Path

import pytest

from omnibench.cli import main
from omnibench.compare import compare_files

sys.path.insert(0, str(Path(__file__).parents[1] / "tables"))
from helpers_tables import FIX, metric, write_run  # noqa: E402

BASE = {"fid": metric(10.0, ci95=[9.0, 11.0]), "id": metric(0.80, True, ci95=[0.78, 0.82])}


def _pair(tmp_path, current: dict, base: dict | None = None, **top) -> tuple[str, str]:
    a = write_run(tmp_path / "base.json", base or BASE)
    b = write_run(tmp_path / "cur.json", current, **top)
    return a, b


def _gate(a, b, *extra) -> int:
    return main(["compare", "--baseline", a, "--current", b, *extra])


@pytest.mark.parametrize("current, code, statuses", [
    # improvement in both directions (lower FID, higher ID)
    ({"fid": metric(8.0), "id": metric(0.90, True)}, 0, ["improved", "improved"]),
    # worse but inside the baseline's half-interval (1.0 for fid, 0.02 for id)
    ({"fid": metric(10.9), "id": metric(0.79, True)}, 0, ["within tolerance", "within tolerance"]),
    # worse outside tolerance: fid up by 1.5 > 1.0
    ({"fid": metric(11.5), "id": metric(0.80, True)}, 1, ["regressed", "unchanged"]),
    # direction-aware: id down by 0.05 > 0.02 regresses; a higher fid-like change in id would be an improvement
    ({"fid": metric(10.0), "id": metric(0.75, True)}, 1, ["unchanged", "regressed"]),
    # a metric disappeared or failed
    ({"fid": metric(10.0)}, 1, ["unchanged", "missing"]),
    ({"fid": metric(None), "id": metric(0.8, True)}, 1, ["failed", "unchanged"]),
])
def test_decisions_and_exit_codes(tmp_path, capsys, current, code, statuses):
    a, b = _pair(tmp_path, current)
    assert _gate(a, b) == code
    assert [r.status for r in compare_files(a, b).rows] == statuses
    out = capsys.readouterr().out
    assert out.startswith("### omnibench compare: " + ("✅ no regression" if code == 0 else "❌"))
    assert "| Metric | Better | Baseline | Current | Change | Tolerance | Status |" in out


def test_new_metric_is_informational(tmp_path):
    a, b = _pair(tmp_path, {**BASE, "kid": metric(0.1)})
    cmp = compare_files(a, b)
    assert cmp.exit_code == 0 and cmp.rows[-1].status == "new"


@pytest.mark.parametrize("top, base_metrics, message", [
    ({"protocol": "full"}, None, "protocol name 'quick' vs 'full'"),
    ({"profile": "fast"}, None, "profile 'default' vs 'fast'"),
    ({}, {"fid": metric(10.0, version=2), "id": metric(0.8, True)}, "metric 'fid' version 2 vs 1"),
    ({}, {"fid": metric(10.0, variant="clean"), "id": metric(0.8, True)}, "metric 'fid' variant 'clean' vs 'default'"),
])
def test_mismatch_exits_2(tmp_path, capsys, top, base_metrics, message):
    a, b = _pair(tmp_path, {"fid": metric(10.0), "id": metric(0.8, True)}, base=base_metrics, **top)
    assert _gate(a, b) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnibench: error: cannot compare") and message in err


def test_protocol_hash_mismatch_exits_2(tmp_path, capsys):
    a = write_run(tmp_path / "a.json", BASE)
    d = json.loads(Path(a).read_text())
    d["protocol"]["hash"] = "different"
    (tmp_path / "b.json").write_text(json.dumps(d))
    assert _gate(a, str(tmp_path / "b.json")) == 2
    assert "protocol hash" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["malformed.json", "not_json.json", "missing.json"])
def test_malformed_exits_2(capsys, bad):
    assert _gate(str(FIX / "oracle_quick.json"), str(FIX / bad)) == 2
    assert bad in capsys.readouterr().err
    assert _gate(str(FIX / bad), str(FIX / "oracle_quick.json")) == 2


def test_tolerance_file(tmp_path, capsys):
    a, b = _pair(tmp_path, {"fid": metric(11.5), "id": metric(0.75, True)})
    assert _gate(a, b) == 1
    tol = tmp_path / "tol.yaml"
    tol.write_text("metrics:\n  fid: 2.0\n  id: {rel: 0.1}\n")  # 1.5 < 2.0 and 0.05 < 0.08
    assert _gate(a, b, "--tolerances", str(tol)) == 0
    tol.write_text("default: {ci: 1.4}\n")  # fid 1.5 > 1.4; id 0.05 > 0.028
    assert _gate(a, b, "--tolerances", str(tol)) == 1
    tol.write_text("default: {ci: 3.0}\n")  # fid 1.5 < 3.0; id 0.05 < 0.06
    assert _gate(a, b, "--tolerances", str(tol)) == 0
    tol.write_text("default: {ci: 0.5, abs: 5}\n")  # the largest rule wins
    assert _gate(a, b, "--tolerances", str(tol)) == 0
    capsys.readouterr()


@pytest.mark.parametrize("text, message", [
    ("metrics: {fid: {pct: 1}}", "Additional properties"),
    ("metrics: {fid: -1}", "metrics/fid"),
    ("metrics: {fdi: 1}", "did you mean 'fid'"),
    ("[", "not valid YAML"),
])
def test_bad_tolerance_file_exits_2(tmp_path, capsys, text, message):
    a, b = _pair(tmp_path, BASE)
    tol = tmp_path / "tol.yaml"
    tol.write_text(text)
    assert _gate(a, b, "--tolerances", str(tol)) == 2
    assert message in capsys.readouterr().err


def test_no_interval_means_exact(tmp_path):
    a, b = _pair(tmp_path, {"fid": metric(10.0001)}, base={"fid": metric(10.0)})
    cmp = compare_files(a, b)
    assert cmp.rows[0].status == "regressed" and cmp.rows[0].tolerance == 0.0


def test_outputs_written(tmp_path, capsys):
    a, b = _pair(tmp_path, {"fid": metric(11.5), "id": metric(0.8, True)})
    assert _gate(a, b, "--out", str(tmp_path / "s.md"), "--json", str(tmp_path / "s.json")) == 1
    assert (tmp_path / "s.md").read_text() == capsys.readouterr().out
    js = json.loads((tmp_path / "s.json").read_text())
    assert js["regressed"] is True and js["metrics"][0] == {
        "metric": "fid", "higher_is_better": False, "baseline": 10.0, "current": 11.5, "worse": 1.5,
        "tolerance": 1.0, "status": "regressed", "regressed": True}


def test_skip_reason_is_shown(tmp_path, capsys):
    a, b = _pair(tmp_path, {"fid": metric(10.0)}, skipped={"id": "backbone weights not found"})
    assert _gate(a, b) == 1
    assert "`id` was skipped in the current run: backbone weights not found" in capsys.readouterr().out


def _na(higher_is_better=False):
    return {**metric(None, higher_is_better, n=0), "not_applicable": "generator 'eg3d' ignores the expression control"}


def test_not_applicable_metrics(tmp_path):
    """Not applicable in both runs is informational; a metric that had a value and became not applicable fails."""
    a, b = _pair(tmp_path, {"fid": metric(10.0), "id": _na(True)}, base={"fid": metric(10.0), "id": _na(True)})
    assert _gate(a, b) == 0
    assert [r.status for r in compare_files(a, b).rows] == ["unchanged", "not applicable"]
    a, b = _pair(tmp_path, {"fid": metric(10.0), "id": _na(True)})
    assert _gate(a, b) == 1
    assert [r.status for r in compare_files(a, b).rows] == ["unchanged", "failed"]
