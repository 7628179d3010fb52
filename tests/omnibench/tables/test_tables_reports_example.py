"""The committed example in reports/ is current: its tables are what this code renders from its runs.

After changing the rendering, refresh it with ``reports/make_reports.sh --keep-runs``.
"""

import os
from pathlib import Path

import pytest

from omnibench.tables import build_table, load_baselines, load_runs, render

ROOT = Path(__file__).parents[3]
REPORTS = ROOT / "reports"
ORDER = ["oracle", "oracle-noexpr", "oracle-noshape", "noise", "tiny", "tiny-no-prior"]  # as in reports/make_reports.sh


@pytest.mark.parametrize("fmt, suffix", [("md", "md"), ("latex", "tex"), ("csv", "csv")])
def test_committed_tables_match_runs(fmt, suffix, monkeypatch):
    monkeypatch.chdir(ROOT)
    runs = load_runs([os.path.join("reports", "runs", f"{g}.json") for g in ORDER])
    text = render(build_table(runs, [load_baselines("published")]), fmt)
    assert text == (REPORTS / f"table.{suffix}").read_text(encoding="utf-8"), (
        "reports/ is stale: run reports/make_reports.sh --keep-runs"
    )


def test_committed_report_is_self_contained():
    html = (REPORTS / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and 'src="http' not in html
    assert html.count('src="data:image/png;base64,') >= 4
    assert (REPORTS / "report.png").stat().st_size > 10_000
