"""The LaTeX table compiles in a standard article (skipped without pdflatex); its structure is always checked."""

import re
import shutil
import subprocess

import pytest
from helpers_tables import FIX

from omnibench.tables import build_table, load_baselines, load_runs, render
from omnibench.tables.render import LATEX_END, LATEX_PREAMBLE, tex_escape


def _latex() -> str:
    runs = load_runs([FIX / f"{n}.json" for n in ("oracle_quick", "noise_quick", "noexpr_quick", "oracle_full")])
    return render(build_table(runs, [load_baselines("published")]), "latex")


def test_structure():
    tex = _latex()
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 4
    for spec, body in re.findall(r"\\begin\{tabular\}\{(\w+)\}(.*?)\\end\{tabular\}", tex, re.S):
        rows = [r for r in body.split("\n") if r.endswith(r"\\")]
        for r in rows:  # every row has exactly as many cells as the column spec
            assert r.count(" & ") == len(spec) - 1, r
    assert tex.count("{") == tex.count("}")
    assert all(ord(ch) < 128 for ch in tex), "pdflatex-safe output is pure ASCII"
    assert r"\textbf{5.63}$^{*}$" in tex and r"11.56$^{\dagger}$" in tex


def test_escape():
    assert tex_escape("a_b & 50% #1 {x} → 128²") == r"a\_b \& 50\% \#1 \{x\} $\rightarrow$ 128$^{2}$"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (apt-get install texlive-latex-base)")
def test_compiles_in_standard_article(tmp_path):
    doc = tmp_path / "doc.tex"
    doc.write_text(LATEX_PREAMBLE + _latex() + LATEX_END)
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", doc.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert "Undefined control sequence" not in log and "Missing character" not in log
