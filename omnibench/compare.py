"""Regression gate: compare a current result file against a baseline one, metric by metric.

For each metric of the baseline, ``worse`` is the change in the bad direction (``current - baseline`` when
lower is better, ``baseline - current`` when higher is better). The metric *regressed* when
``worse > tolerance``. The default tolerance is half the width of the baseline's 95% interval; a tolerance
file can set, per metric or as a default, ``abs`` (absolute), ``rel`` (fraction of ``|baseline|``) and
``ci`` (multiple of the baseline's half-interval); the largest of those given applies.

A metric the baseline has and the current run lacks, or whose current value is missing (the metric failed),
counts as a regression. Runs under different protocols, profiles, backbones or metric versions/variants are
not comparable and raise :class:`omnibench.errors.OmnibenchError` (CLI exit code 2).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from omnibench.errors import OmnibenchError, suggest
from omnibench.results import load_result
from omnibench.tables.model import auto_decimals, half_width, incompatibilities, protocol_text, run_label
from omnibench.tables.render import arrow, format_number

EXIT_OK, EXIT_REGRESSED = 0, 1
REGRESSIONS = ("regressed", "missing", "failed")

_RULE = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "abs": {"type": "number", "minimum": 0},
        "rel": {"type": "number", "minimum": 0},
        "ci": {"type": "number", "minimum": 0},
    },
}
TOLERANCE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default": _RULE,
        "metrics": {"type": "object", "additionalProperties": {"oneOf": [_RULE, {"type": "number", "minimum": 0}]}},
    },
}
DEFAULT_RULE = {"ci": 1.0}


@dataclass(frozen=True)
class Tolerances:
    """``default`` rule and per-metric rules; a bare number in a file means ``{"abs": number}``."""

    default: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RULE))
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = "default"

    def rule(self, metric: str) -> dict[str, float]:
        return self.metrics.get(metric, self.default)


def load_tolerances(path: str | Path) -> Tolerances:
    """Read a YAML or JSON tolerance file (see module docstring); malformed files raise OmnibenchError."""
    p = Path(path)
    if not p.is_file():
        raise OmnibenchError(f"tolerance file '{p}' does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise OmnibenchError(f"tolerance file {p}: not valid YAML/JSON ({exc})") from None
    try:
        jsonschema.validate(data, TOLERANCE_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(x) for x in exc.absolute_path) or "<top>"
        raise OmnibenchError(
            f"tolerance file {p}: invalid at '{where}': {exc.message} "
            "(expected {default: {abs|rel|ci: number}, metrics: {NAME: number | {abs|rel|ci: number}}})"
        ) from None
    metrics = {k: ({"abs": float(v)} if isinstance(v, (int, float)) else dict(v)) for k, v in (data.get("metrics") or {}).items()}
    return Tolerances(dict(data.get("default") or DEFAULT_RULE), metrics, str(p))


@dataclass
class MetricComparison:
    metric: str
    higher_is_better: bool
    baseline: float | None
    baseline_half: float | None
    current: float | None
    current_half: float | None
    tolerance: float | None
    tolerance_text: str
    status: str  # improved | unchanged | within tolerance | regressed | missing | failed | new | no value | not applicable

    @property
    def worse(self) -> float | None:
        """Change in the bad direction (positive = worse), or None."""
        if self.baseline is None or self.current is None:
            return None
        d = self.current - self.baseline
        return -d if self.higher_is_better else d

    @property
    def regressed(self) -> bool:
        return self.status in REGRESSIONS


@dataclass
class Comparison:
    baseline_path: str
    current_path: str
    baseline: dict[str, Any]
    current: dict[str, Any]
    rows: list[MetricComparison]
    tolerances: Tolerances

    @property
    def regressions(self) -> list[MetricComparison]:
        return [r for r in self.rows if r.regressed]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSED if self.regressions else EXIT_OK

    def markdown(self) -> str:
        return render_markdown(self)


def _finite(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _tolerance(rule: dict[str, float], base: float, half: float | None) -> tuple[float, str]:
    parts: list[tuple[float, str]] = []
    if "abs" in rule:
        parts.append((rule["abs"], "abs"))
    if "rel" in rule:
        parts.append((rule["rel"] * abs(base), f"{rule['rel']:g}×|baseline|"))
    if "ci" in rule:
        if half is None:
            parts.append((0.0, "no baseline interval: exact"))
        else:
            parts.append((rule["ci"] * half, "ci95" if rule["ci"] == 1 else f"{rule['ci']:g}×ci95"))
    return max(parts, key=lambda p: p[0])


def compare_results(
    baseline: dict[str, Any], current: dict[str, Any], tolerances: Tolerances | None = None,
    baseline_path: str = "baseline", current_path: str = "current",
) -> Comparison:
    """Compare two validated result dicts; raises OmnibenchError when they are not comparable."""
    tol = tolerances or Tolerances()
    why = incompatibilities(baseline, current)
    if why:
        raise OmnibenchError(
            f"cannot compare '{current_path}' with baseline '{baseline_path}': {'; '.join(why)}. "
            "Re-run the baseline under the same protocol and metric versions (or update the committed baseline)"
        )
    known = set(baseline["metrics"]) | set(current["metrics"])
    for name in tol.metrics:
        if name not in known:
            raise OmnibenchError(
                f"tolerance file {tol.source}: metric '{name}' is in neither result file{suggest(name, known)}"
            )
    rows: list[MetricComparison] = []
    for name, bm in baseline["metrics"].items():
        hib = bool(bm["higher_is_better"])
        b, bh = _finite(bm["value"]), half_width(bm.get("ci95"))
        cm = current["metrics"].get(name)
        c, ch = (None, None) if cm is None else (_finite(cm["value"]), half_width(cm.get("ci95")))
        tval, ttext = (None, "")
        if b is not None:
            tval, ttext = _tolerance(tol.rule(name), b, bh)
        if cm is None:
            status = "missing"
        elif cm.get("not_applicable") and bm.get("not_applicable"):
            status = "not applicable"
        elif cm.get("not_applicable"):
            status = "failed" if b is not None else "not applicable"
        elif b is None:
            status = "new" if c is not None else "no value"
        elif c is None:
            status = "failed"
        else:
            worse = (b - c) if hib else (c - b)
            if worse > tval:
                status = "regressed"
            elif worse > 0:
                status = "within tolerance"
            elif worse < 0:
                status = "improved"
            else:
                status = "unchanged"
        rows.append(MetricComparison(name, hib, b, bh, c, ch, tval, ttext, status))
    for name, cm in current["metrics"].items():
        if name not in baseline["metrics"]:
            rows.append(MetricComparison(name, bool(cm["higher_is_better"]), None, None, _finite(cm["value"]),
                                         half_width(cm.get("ci95")), None, "", "new"))
    return Comparison(baseline_path, current_path, baseline, current, rows, tol)


def compare_files(baseline: str | Path, current: str | Path, tolerances: str | Path | None = None) -> Comparison:
    """Load, validate and compare two result files (malformed ones raise ResultFileError)."""
    tol = load_tolerances(tolerances) if tolerances else None
    return compare_results(load_result(baseline), load_result(current), tol, str(baseline), str(current))


_ICON = {
    "regressed": "❌ regressed", "missing": "❌ missing", "failed": "❌ failed (no value)",
    "within tolerance": "⚠️ worse, within tolerance", "improved": "✅ improved", "unchanged": "✅ unchanged",
    "new": "ℹ️ new", "no value": "ℹ️ no value in either",
    "not applicable": "ℹ️ not applicable (the generator ignores a control it measures)",
}


def _fmt(v: float | None, half: float | None, dec: int) -> str:
    if v is None:
        return "–"
    return format_number(v, dec) + (f" ± {format_number(half, dec)}" if half is not None else "")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _describe(path: str, data: dict[str, Any]) -> str:
    sha = (data.get("git_sha") or "unknown")[:10]
    return f"`{_md(path)}` ({_md(run_label(data, path))}, git {sha}, {data['created']})"


def render_markdown(cmp: Comparison) -> str:
    """A Markdown summary for a CI log or a pull-request comment."""
    n = len(cmp.regressions)
    head = f"❌ {n} regression{'s' if n != 1 else ''}" if n else "✅ no regression"
    lines = [
        f"### omnibench compare: {head}",
        "",
        f"- baseline: {_describe(cmp.baseline_path, cmp.baseline)}",
        f"- current: {_describe(cmp.current_path, cmp.current)}",
        f"- {protocol_text(cmp.current)}; tolerance: {cmp.tolerances.source}"
        + (" (half the baseline's 95% interval)" if cmp.tolerances.source == "default" else ""),
        "",
        "| Metric | Better | Baseline | Current | Change | Tolerance | Status |",
        "| :--- | :---: | ---: | ---: | ---: | ---: | :--- |",
    ]
    for r in cmp.rows:
        ref = r.baseline if r.baseline is not None else r.current
        dec = auto_decimals(ref, r.baseline_half if r.baseline is not None else r.current_half)
        change = "–"
        if r.baseline is not None and r.current is not None:
            d = r.current - r.baseline
            change = ("+" if d > 0 else "") + format_number(d, dec) if d != 0 else format_number(0.0, dec)
        tol = "–" if r.tolerance is None else f"{format_number(r.tolerance, dec)} ({r.tolerance_text})"
        lines.append(
            f"| {_md(r.metric)} | {'higher ' + arrow(True) if r.higher_is_better else 'lower ' + arrow(False)} | "
            f"{_fmt(r.baseline, r.baseline_half, dec)} | {_fmt(r.current, r.current_half, dec)} | {change} | "
            f"{tol} | {_ICON[r.status]} |"
        )
    skipped = cmp.current.get("skipped") or {}
    for r in cmp.rows:
        if r.status == "missing" and r.metric in skipped:
            lines.append(f"- `{_md(r.metric)}` was skipped in the current run: {_md(str(skipped[r.metric]))}")
    lines.append("")
    return "\n".join(lines)


def comparison_json(cmp: Comparison) -> str:
    """Machine-readable form of the comparison (one object per metric)."""
    rows = [
        {"metric": r.metric, "higher_is_better": r.higher_is_better, "baseline": r.baseline, "current": r.current,
         "worse": r.worse, "tolerance": r.tolerance, "status": r.status, "regressed": r.regressed}
        for r in cmp.rows
    ]
    return json.dumps({"regressed": bool(cmp.regressions), "metrics": rows}, indent=2) + "\n"
