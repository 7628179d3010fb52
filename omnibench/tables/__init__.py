"""Paper-style tables rendered from result files (never from a live run).

>>> from omnibench.tables import load_runs, build_table, render
>>> table = build_table(load_runs(["a.json", "b.json"]), [load_baselines("published")])  # doctest: +SKIP
>>> print(render(table, "md"))  # doctest: +SKIP
"""

from omnibench.tables.baselines import Baseline, BaselineSet, load_baselines
from omnibench.tables.model import Block, Column, Run, Table, build_table, incompatibilities, load_runs
from omnibench.tables.render import FORMATS, render, render_html, render_latex, render_markdown

__all__ = [
    "FORMATS", "Baseline", "BaselineSet", "Block", "Column", "Run", "Table", "build_table", "incompatibilities",
    "load_baselines", "load_runs", "render", "render_html", "render_latex", "render_markdown",
]
