"""Golden-file tests: the Markdown and LaTeX rendering of fixed result files is pinned.

Regenerate after an intended change with ``OMNIBENCH_UPDATE_GOLDEN=1 pytest tests/omnibench/tables`` and
review the diff.
"""

import os
from pathlib import Path

import pytest

from omnibench.cli import main
from omnibench.tables import build_table, load_baselines, load_runs, render

HERE = Path(__file__).parent
FIX = HERE / "fixtures"
GOLDEN = HERE / "golden"
RUNS = ["oracle_quick", "noise_quick", "noexpr_quick", "oracle_full", "oracle_quick_fidv2"]


def _paths() -> list[str]:
    # relative paths: the rendered text must not depend on where the checkout lives
    return [os.path.relpath(FIX / f"{r}.json") for r in RUNS]


@pytest.mark.parametrize("fmt, suffix", [("md", "md"), ("latex", "tex")])
def test_golden(fmt, suffix, monkeypatch):
    monkeypatch.chdir(HERE)
    table = build_table(load_runs(_paths()), [load_baselines("published")])
    text = render(table, fmt)
    golden = GOLDEN / f"table.{suffix}"
    if os.environ.get("OMNIBENCH_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_cli_matches_golden(tmp_path, monkeypatch):
    monkeypatch.chdir(HERE)
    out = tmp_path / "t.tex"
    assert main(["table", *_paths(), "--baselines", "published", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (GOLDEN / "table.tex").read_text(encoding="utf-8")
