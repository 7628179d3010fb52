"""reports/calibration.md's detail sweep is rendered from the committed result files, which pass known answers."""

from __future__ import annotations

import json

from tests.metrics.report_scripts import ROOT, load_report_script


def _script():
    return load_report_script("make_detail_sweep")


def _metrics(mod, gen: str, detail: int | None) -> dict:
    return json.loads(mod.result_path(gen, detail).read_text())["metrics"]


def test_committed_section_is_rendered_from_the_committed_results():
    mod = _script()
    assert mod.section() in (ROOT / "reports/calibration.md").read_text()


def test_the_result_files_are_what_they_claim():
    mod = _script()
    for detail in mod.DETAILS:
        for gen in mod.GENERATORS:
            block = json.loads(mod.result_path(gen, detail).read_text())["checkpoint"]
            assert block["generator"] == gen and block["description"].get("detail_px") == detail


def test_less_detail_means_a_worse_fid_and_a_smaller_expression_gain():
    """Known answers: removing detail cannot make images more FFHQ-like or carry more expression; the
    expression-blind oracle carries none at any detail."""
    mod = _script()
    fids = [_metrics(mod, "oracle", d)["fid"]["value"] for d in mod.DETAILS]
    gains = [_metrics(mod, "oracle", d)["aed"]["details"]["shuffled_null"]["gain"] for d in mod.DETAILS]
    assert fids == sorted(fids) and gains == sorted(gains, reverse=True)
    for d in mod.DETAILS:
        assert _metrics(mod, "oracle", d)["aed"]["details"]["shuffled_null"]["gain_ci95"][0] > 0
        lo, hi = _metrics(mod, "oracle-noexpr", d)["aed"]["details"]["shuffled_null"]["gain_ci95"]
        assert lo < 0 < hi
