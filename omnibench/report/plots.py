"""Metric plots for the HTML report (matplotlib, Agg backend): one figure per metric column.

Each figure shows every measured row of every block that has the metric: the value as a dot and half the
95% interval as an error bar, blocks in different colours, the better direction in the title. PNG bytes
are deterministic (no timestamps or version strings in the metadata).
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from omnibench.tables.model import Table  # noqa: E402
from omnibench.tables.render import arrow  # noqa: E402

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def metric_series(table: Table) -> dict[str, list[tuple[int, str, float, float | None]]]:
    """metric key -> [(block number, row, value, half)] over measured blocks, in table order."""
    out: dict[str, list[tuple[int, str, float, float | None]]] = {}
    for i, b in enumerate(table.blocks, start=1):
        if b.status != "measured":
            continue
        for c in b.columns:
            for row in b.rows:
                cell = b.cell(row, c.key)
                if cell is None or cell["value"] is None or math.isnan(cell["value"]):
                    continue
                half = cell["half"]
                half = None if half is None or math.isnan(half) else float(half)
                out.setdefault(c.key, []).append((i, row, float(cell["value"]), half))
    return out


def metric_figure(table: Table, key: str) -> bytes:
    """PNG bytes of one metric's plot."""
    series = metric_series(table)[key]
    col = next(c for b in table.blocks for c in b.columns if c.key == key)
    fig, ax = plt.subplots(figsize=(5.0, 0.45 * len(series) + 1.2), dpi=100)
    try:
        labels = []
        for y, (blk, row, value, half) in enumerate(series):
            colour = COLOURS[(blk - 1) % len(COLOURS)]
            ax.errorbar([value], [y], xerr=None if half is None else [[half], [half]], fmt="o", color=colour,
                        capsize=3, label=f"block {blk}")
            labels.append(f"{row} [{blk}]")
        values = [v for _, _, v, _ in series]
        if min(values) > 0 and max(values) / min(values) > 100:
            ax.set_xscale("log")  # e.g. a noise generator's FID next to a real model's
        ax.set_yticks(range(len(series)), labels)
        ax.invert_yaxis()
        ax.set_title(f"{col.label} {arrow(col.higher_is_better)} "
                     f"({'higher' if col.higher_is_better else 'lower'} is better)", fontsize=10)
        if ax.get_xscale() == "linear":
            ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def all_metric_figures(table: Table) -> dict[str, bytes]:
    return {key: metric_figure(table, key) for key in metric_series(table)}
