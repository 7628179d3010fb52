"""Calibration on the built-in generators (oracle, oracle-noshape, noise) through the evaluation engine.

Known answers: the oracle renders exactly the requested controls with exact depth, so its multi-view
depth disagreement and its geometry error sit at the floor and its identity is high across views and
expressions but low between different latents; ``oracle-noshape`` ignores the shape, so its geometry
error is clearly larger; ``noise`` has no face (identity: every image a failure) and no depth.
"""

from __future__ import annotations

import pytest

from omnibench.protocol import Protocol, SetSize

METRICS = ["id-views", "id-expr", "mv-reproj", "mv-reproj@depth", "geometry"]


@pytest.fixture(scope="module")
def protocol():
    return Protocol(
        name="idmv-calibration",
        version=1,
        description="identity/multi-view calibration (tests)",
        seed=11,
        resolution=64,
        resize_policy="none",
        truncation_psi=1.0,
        main=SetSize(2),
        views=SetSize(8, 3),
        expr=SetSize(8, 3),
        view_list=((-0.35, 0.0), (0.0, 0.0), (0.35, 0.0)),
        bootstrap=200,
    )


@pytest.fixture(scope="module")
def results(protocol):
    from metrics.calibration.idmv import run  # the report's runner, in a private sample cache

    return run(protocol, generators=("oracle", "oracle-noshape", "noise"), metrics=tuple(METRICS))


def test_oracle_identity_high_across_views_low_between_latents(results):
    for key in ("id-views", "id-expr"):
        r = results["oracle"][key]
        assert r["failures"] == 0, r
        assert r["value"] > 0.8, r
        assert r["details"]["baseline"] < r["value"] - 0.4, r


def test_oracle_multiview_and_geometry_at_floor(results):
    o, ns = results["oracle"], results["oracle-noshape"]
    assert o["mv-reproj@depth"]["value"] < 2e-3
    assert o["mv-reproj"]["value"] < 0.05
    assert o["geometry"]["value"] < 5e-4
    assert ns["geometry"]["value"] > 5 * max(o["geometry"]["value"], 1e-4)


def test_noise_is_worst(results):
    n = results["noise"]
    for key in ("id-views", "id-expr"):
        assert n[key]["value"] is None and n[key]["failures"] == 24, n[key]
    assert n["mv-reproj"]["value"] is None and n["geometry"]["value"] is None


def test_report_section_prints_floors_and_baselines_and_keeps_other_sections(results, protocol, tmp_path):
    from metrics.calibration.control import BEGIN as CONTROL_BEGIN
    from metrics.calibration.control import END as CONTROL_END
    from metrics.calibration.control import write_section
    from metrics.calibration.idmv import BEGIN, END, render_markdown

    md = render_markdown({g: {k: results[g][k] for k in ("id-views", "geometry")} for g in results}, protocol)
    o = results["oracle"]["id-views"]
    assert f"{o['value']:.4g}" in md and f"between latents {o['details']['baseline']:.3f}" in md
    assert "n/a (24 failures)" in md  # noise's identity
    out = tmp_path / "calibration.md"
    write_section(out, f"{CONTROL_BEGIN}\ncontrol table\n{CONTROL_END}\n")
    write_section(out, md, BEGIN, END)
    write_section(out, md.replace("idmv-calibration", "again"), BEGIN, END)  # replaced, not appended
    text = out.read_text()
    assert "control table" in text and text.count(BEGIN) == 1 and "`again`" in text


def test_each_protocol_version_has_its_own_report_section():
    from metrics.calibration import control, idmv

    assert idmv.markers("quick@1") == (idmv.BEGIN, idmv.END) and control.markers("quick@1") == (control.BEGIN, control.END)
    for mod in (idmv, control):
        begin, end = mod.markers("quick@2")
        assert begin.endswith("-v2:begin -->") and end.endswith("-v2:end -->") and begin != mod.BEGIN
