"""reports/shuffled-null.md is rendered from the committed result files, and those pass the known answers."""

from __future__ import annotations

import json

import pytest

from tests.metrics.report_scripts import ROOT, load_report_script


def _script():
    return load_report_script("make_shuffled_null")


def _null(stem: str, metric: str) -> dict:
    return json.loads((ROOT / "reports/runs/shuffled-null" / f"{stem}.json").read_text())["metrics"][metric]["details"]["shuffled_null"]


def test_committed_table_is_rendered_from_the_committed_results():
    mod = _script()
    rows = mod.read_models()
    assert {r[0] for r in rows} <= {p.stem for p in (ROOT / "reports/runs/shuffled-null").glob("*.json")}
    assert mod.table(rows) in (ROOT / "reports/shuffled-null.md").read_text()


@pytest.mark.parametrize("metric", ["aed", "asd", "apd", "apd@jaw"])
def test_the_oracle_carries_every_control(metric):
    assert _null("oracle", metric)["gain_ci95"][0] > 0


def test_the_expression_blind_oracle_carries_no_expression_but_the_rest():
    assert _null("oracle-noexpr", "aed")["gain_ci95"][0] < 0 < _null("oracle-noexpr", "aed")["gain_ci95"][1]
    for metric in ("asd", "apd", "apd@jaw"):
        assert _null("oracle-noexpr", metric)["gain_ci95"][0] > 0
