"""Assemble result files and baselines into comparable blocks (pandas underneath).

A *block* holds rows that may be ranked together: omnibench runs with the same protocol (name, version,
hash), profile, backbone weights and, for every metric they share, the same variant and version; or the
baseline entries of one baseline ``block``. Blocks are never ranked against each other.

Cells carry ``value`` and ``half`` = half the width of the 95% interval (None without an interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from omnibench.errors import OmnibenchError
from omnibench.results import load_result
from omnibench.tables.baselines import BaselineSet
from omnibench.tables.seeds import SeedGroup, seed_groups, seed_interval

MAX_DECIMALS = 6


@dataclass(frozen=True)
class Run:
    """A loaded result file and the row label it is shown under."""

    path: str
    data: dict[str, Any]
    label: str


@dataclass
class Column:
    key: str
    label: str
    higher_is_better: bool
    footnote: str


@dataclass
class Block:
    """Rows ranked together; ``frame`` is indexed by (row, metric) with the cell fields as columns."""

    title: str
    status: str  # "measured", "reported" or "mixed"
    rows: list[str]
    columns: list[Column]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    key: dict[str, Any] = field(default_factory=dict)

    def cell(self, row: str, metric: str) -> dict[str, Any] | None:
        """The cell fields (value, half, decimals, mark, na, best, status) or None when absent."""
        try:
            rec = self.frame.loc[(row, metric)]
        except KeyError:
            return None
        return rec.to_dict()


CAPTION = "Comparison of models: metric value ± half its 95% interval; best per column in bold."
SEED_CAPTION = (" Rows 'mean of N seeds': the mean over N training runs ± half the 95% Student-t interval over those"
                " runs (the spread between training seeds); every other row: one run ± half its 95% interval over"
                " evaluation samples. Bold ranks the means and single runs, not the per-seed rows.")


@dataclass
class Table:
    blocks: list[Block]
    caption: str = CAPTION


def run_label(data: dict[str, Any], path: str) -> str:
    """``checkpoint.label`` if set; else the generator name, plus the checkpoint file name when it has one."""
    ck = data["checkpoint"]
    if ck.get("label"):
        return str(ck["label"])
    gen, ckpath = str(ck["generator"]), str(ck["path"])
    if ckpath in ("", gen):
        return gen
    return f"{gen} ({Path(ckpath).name})"


def load_runs(paths: list[str]) -> list[Run]:
    """Load and validate result files (row labels from :func:`run_label`)."""
    return [Run(str(p), d, run_label(d, str(p))) for p, d in ((p, load_result(p)) for p in paths)]


def _unique_labels(group: list[Run]) -> list[Run]:
    """Within one block, labels shared by several runs get the result file's stem appended."""
    labels = [r.label for r in group]
    out = [Run(r.path, r.data, f"{r.label} [{Path(r.path).stem}]") if labels.count(r.label) > 1 else r for r in group]
    if len({r.label for r in out}) != len(out):
        raise OmnibenchError(
            "two result files in one block share a label and a file name: " + ", ".join(r.path for r in group)
        )
    return out


def protocol_text(data: dict[str, Any]) -> str:
    p = data["protocol"]
    text = f"protocol '{p['name']}' v{p['version']} (seed {p['seed']}, hash {str(p['hash'])[:12]})"
    if data.get("profile"):
        text += f", profile '{data['profile']}'"
    return text


def _base_key(data: dict[str, Any]) -> tuple:
    p = data["protocol"]
    return (p["name"], p["version"], p["hash"], data.get("profile"))


def incompatibilities(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Why two result files must not be ranked together (empty list: compatible)."""
    why: list[str] = []
    pa, pb = a["protocol"], b["protocol"]
    for k in ("name", "version", "hash"):
        if pa[k] != pb[k]:
            why.append(f"protocol {k} {pa[k]!r} vs {pb[k]!r}")
    if a.get("profile") != b.get("profile"):
        why.append(f"profile {a.get('profile')!r} vs {b.get('profile')!r}")
    for role in sorted(set(a["backbones"]) & set(b["backbones"])):
        ba, bb = a["backbones"][role], b["backbones"][role]
        if ba["name"] != bb["name"] or (ba["sha256"] and bb["sha256"] and ba["sha256"] != bb["sha256"]):
            why.append(f"backbone '{role}' {ba['name']}@{str(ba['sha256'])[:8]} vs {bb['name']}@{str(bb['sha256'])[:8]}")
    ra, rb = a.get("real") or {}, b.get("real") or {}
    if ra.get("hash") and rb.get("hash") and ra["hash"] != rb["hash"]:
        why.append(f"real set {str(ra['hash'])[:12]} vs {str(rb['hash'])[:12]}")
    sa, sb = a.get("sampling") or {}, b.get("sampling") or {}
    for s in sorted(set(sa) & set(sb)):
        ca, cb = sa[s].get("controls") if isinstance(sa[s], dict) else None, sb[s].get("controls") if isinstance(sb[s], dict) else None
        if ca is not None and cb is not None and ca != cb:
            why.append(f"controls of sample set '{s}' drawn differently ({ca} vs {cb})")
    for m in [k for k in a["metrics"] if k in b["metrics"]]:
        ma, mb = a["metrics"][m], b["metrics"][m]
        if ma["version"] != mb["version"]:
            why.append(f"metric '{m}' version {ma['version']} vs {mb['version']}")
        if ma["variant"] != mb["variant"]:
            why.append(f"metric '{m}' variant {ma['variant']!r} vs {mb['variant']!r}")
        if ma["higher_is_better"] != mb["higher_is_better"]:
            why.append(f"metric '{m}' direction differs")
    return why


def half_width(ci95: Any) -> float | None:
    """Half the width of a ``[low, high]`` interval, or None when missing or not finite."""
    if not ci95 or ci95[0] is None or ci95[1] is None:
        return None
    lo, hi = float(ci95[0]), float(ci95[1])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return abs(hi - lo) / 2.0


def auto_decimals(value: float | None, half: float | None) -> int:
    """Decimals: two significant digits of the half-interval, else three significant digits of the value."""
    if half is not None and half > 0:
        d = 1 - math.floor(math.log10(half))
    elif value is not None and value != 0 and math.isfinite(value):
        d = 2 - math.floor(math.log10(abs(value)))
    else:
        d = 3
    return int(min(max(d, 0), MAX_DECIMALS))


def metric_label(key: str) -> str:
    """Display label: ``fid`` -> ``FID``, ``id-views`` -> ``ID-views``, ``aed@rmse`` -> ``AED@rmse``."""
    base, at, variant = key.partition("@")
    head, dash, tail = base.partition("-")
    if len(head) <= 4 and head.isalpha():
        head = head.upper()
    return f"{head}{dash}{tail}{at}{variant}"


def _group_runs(runs: list[Run]) -> list[list[Run]]:
    groups: list[list[Run]] = []
    for run in runs:
        for g in groups:
            if _base_key(g[0].data) == _base_key(run.data) and not any(incompatibilities(o.data, run.data) for o in g):
                g.append(run)
                break
        else:
            groups.append([run])
    return groups


def _records_for_runs(runs: list[Run]) -> tuple[list[dict], list[Column]]:
    recs: list[dict] = []
    columns: dict[str, Column] = {}
    info: dict[str, list[str]] = {}
    for run in runs:
        for key, m in run.data["metrics"].items():
            value = m["value"]
            value = None if value is None or not math.isfinite(float(value)) else float(value)
            half = half_width(m.get("ci95"))
            inapplicable = m.get("not_applicable")
            recs.append({
                "row": run.label, "metric": key, "value": value, "half": half,
                "decimals": auto_decimals(value, half), "mark": "", "na": bool(inapplicable),
                "higher_is_better": bool(m["higher_is_better"]), "status": "measured", "ranked": True,
                "interval": "samples" if half is not None else "",
            })
            if key not in columns:
                unit = f", unit {m['unit']}" if m.get("unit") else ""
                columns[key] = Column(key, metric_label(key), bool(m["higher_is_better"]),
                                      f"{metric_label(key)}: metric '{key}', variant '{m['variant']}', version {m['version']}{unit}")
                info[key] = []
            extra = [f"{m['failures']} failed"] if m.get("failures") else []
            if inapplicable:
                extra.append(f"not applicable: {inapplicable}")
            elif value is None:
                extra.append("no value")
            info[key].append(f"{run.label} n={m['n']}" + (f" ({', '.join(extra)})" if extra else ""))
    for key, col in columns.items():
        col.footnote += "; " + "; ".join(info[key]) + "."
    return recs, list(columns.values())


def _mark_best(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a ``best`` column: the best value per metric (ties all marked), only where 2+ rows have values."""
    frame = frame.copy()
    frame["value"] = pd.to_numeric(frame["value"]).astype("float64")
    signed = frame["value"].where(frame["higher_is_better"], -frame["value"])
    if "ranked" in frame:  # per-seed rows of a seed group are shown, not ranked
        signed = signed.where(frame["ranked"].fillna(True).astype(bool))
    grp = signed.groupby(frame["metric"])
    top = grp.transform("max")
    count = grp.transform("count")
    frame["best"] = (signed == top) & (count >= 2) & frame["value"].notna()
    return frame


def _block(title: str, status: str, rows: list[str], columns: list[Column], recs: list[dict],
           notes: list[str], key: dict[str, Any]) -> Block:
    frame = _mark_best(pd.DataFrame.from_records(recs))
    frame = frame.set_index(["row", "metric"])
    if not frame.index.is_unique:
        raise OmnibenchError(f"block '{title}': a model appears twice with the same metric")
    return Block(title, status, rows, columns, frame, notes, key)


def _seed_relabelled(group: list[Run], groups: list[SeedGroup]) -> list[Run]:
    """One block's runs with the labels their rows show: seed siblings ``NAME, seed S``, then shared labels made
    unique (:func:`_unique_labels`)."""
    runs = list(group)
    for g in groups:
        for i, seed in zip(g.members, g.seeds):
            runs[i] = Run(runs[i].path, runs[i].data, f"{g.label}, seed {seed}")
    return _unique_labels(runs)


def row_labels(runs: list[Run]) -> dict[str, str]:
    """Result file path -> the label its table row shows, block by block as :func:`build_table` groups the runs
    (for figures that must name runs as the table does)."""
    return {r.path: r.label for g in _group_runs(runs) for r in _seed_relabelled(g, seed_groups(g))}


def _seed_summaries(group: list[Run]) -> tuple[list[Run], list[str], list[dict], set[str], list[str]]:
    """Relabel seed siblings ``NAME, seed S`` and add the summary rows ``NAME (mean of N seeds)`` after them:
    (runs, row order, summary records, per-seed row labels, notes)."""
    groups = seed_groups(group)
    runs = _seed_relabelled(group, groups)
    if not groups:
        return runs, [r.label for r in runs], [], set(), []
    summary_after = {g.members[-1]: (f"{g.label} (mean of {len(g.seeds)} seeds)", g) for g in groups}
    rows: list[str] = []
    recs: list[dict] = []
    notes: list[str] = []
    for i, run in enumerate(runs):
        rows.append(run.label)
        if i not in summary_after:
            continue
        name, g = summary_after[i]
        rows.append(name)
        first = runs[g.members[0]].data["metrics"]
        for key in [k for k in first if all(k in runs[j].data["metrics"] for j in g.members)]:
            ms = [runs[j].data["metrics"][key] for j in g.members]
            vals = [None if m["value"] is None or not math.isfinite(float(m["value"])) else float(m["value"]) for m in ms]
            mean, half = seed_interval(vals)
            recs.append({"row": name, "metric": key, "value": mean, "half": half,
                         "decimals": auto_decimals(mean, half), "mark": "", "na": mean is None,
                         "higher_is_better": bool(ms[0]["higher_is_better"]), "status": "measured", "ranked": True,
                         "interval": "seeds"})
        notes.append(f"{name}: training seeds {', '.join(map(str, g.seeds))}; ± half the 95% Student-t interval "
                     f"over those runs ({len(g.seeds) - 1} degrees of freedom).")
    per_seed = {runs[i].label for g in groups for i in g.members}
    return runs, rows, recs, per_seed, notes


def _run_block(group: list[Run], apart_from: list[tuple[int, list[str]]]) -> Block:
    group, rows, seed_recs, per_seed, seed_notes = _seed_summaries(group)
    data = group[0].data
    recs, columns = _records_for_runs(group)
    for rec in recs:
        rec["ranked"] = rec["row"] not in per_seed
    recs += seed_recs
    title = f"Measured with omnibench: {protocol_text(data)}"
    for number, why in apart_from:
        title += f"; not ranked with block {number} ({'; '.join(why)})"
    notes = [
        f"All rows: {protocol_text(data)}; omnibench {data['omnibench_version']}.",
        "Values: metric value ± half the width of its 95% interval (no ± where the run has no interval); "
        "best per column in bold within this block only.",
    ]
    notes += seed_notes
    key = {"protocol": dict(data["protocol"]), "profile": data.get("profile")}
    return _block(title, "measured", rows, columns, recs, notes, key)


def _baseline_blocks(bs: BaselineSet) -> list[Block]:
    order: list[str] = []
    for e in bs.entries:
        if e.block not in order:
            order.append(e.block)
    blocks = []
    for name in order:
        entries = [e for e in bs.entries if e.block == name]
        statuses = sorted({e.status for e in entries})
        status = statuses[0] if len(statuses) == 1 else "mixed"
        by_method: dict[str, set[str]] = {}
        for e in entries:
            by_method.setdefault(e.method, set()).add(e.status)
        # mixed blocks say per row whether its numbers are reported or measured
        row_of = {
            m: m if status != "mixed" else f"{m} ({'/'.join(sorted(st))})" for m, st in by_method.items()
        }
        rows = list(dict.fromkeys(row_of[e.method] for e in entries))
        columns: dict[str, Column] = {}
        recs = []
        for e in entries:
            half = None if e.ci95 is None else abs(e.ci95[1] - e.ci95[0]) / 2
            recs.append({
                "row": row_of[e.method], "metric": e.metric, "value": e.value, "half": half,
                "decimals": e.decimals if e.decimals is not None else auto_decimals(e.value, half),
                "mark": e.mark or "", "na": e.value is None, "higher_is_better": e.higher_is_better,
                "status": e.status,
            })
            if e.metric not in columns:
                label = e.label or metric_label(e.metric)
                columns[e.metric] = Column(e.metric, label, e.higher_is_better, f"{label}: {e.describe()}.")
        notes = bs.block_notes(name)
        for e in entries:
            notes.extend(n for n in e.notes if n not in notes)
        title = f"{status.capitalize()}: {bs.block_title(name)}"
        blocks.append(_block(title, status, rows, list(columns.values()), recs, notes, {"baseline_block": name}))
    return blocks


def build_table(runs: list[Run], baselines: list[BaselineSet] | None = None, merge: bool = False) -> Table:
    """Group runs (and baseline blocks, after them) into blocks.

    ``merge=True`` asks for a single ranked block and raises :class:`OmnibenchError` naming the first
    incompatibility when the inputs cannot share one.
    """
    groups = _group_runs(runs)
    blocks = []
    for i, g in enumerate(groups):
        apart = [
            (j + 1, incompatibilities(other[0].data, g[0].data))
            for j, other in enumerate(groups[:i])
            if _base_key(other[0].data) == _base_key(g[0].data)
        ]
        blocks.append(_run_block(g, apart))
    for bs in baselines or []:
        blocks.extend(_baseline_blocks(bs))
    if merge and len(blocks) > 1:
        if len(groups) > 1:
            a, b = groups[0][0], groups[1][0]
            why = incompatibilities(a.data, b.data) or ["different protocol"]
            raise OmnibenchError(
                f"cannot merge into one ranked table: '{a.path}' and '{b.path}' differ ({'; '.join(why)}); "
                "drop --merge to show them as separate blocks"
            )
        raise OmnibenchError(
            f"cannot merge '{blocks[0].title}' with '{blocks[1].title}': baseline blocks and omnibench runs were "
            "measured under different protocols and are never ranked together; drop --merge to show separate blocks"
        )
    seeded = any(b.status == "measured" and "interval" in b.frame and (b.frame["interval"] == "seeds").any() for b in blocks)
    return Table(blocks, CAPTION + (SEED_CAPTION if seeded else ""))
