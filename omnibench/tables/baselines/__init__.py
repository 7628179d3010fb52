"""Baseline numbers for tables: the published ones shipped as package data, and user files (YAML or CSV).

A baseline file holds ``entries``: one number each (method, metric, value, direction, definition, dataset,
resolution, sample counts, source, status "reported" or "measured"), grouped into ``block``s. Entries of one
block share one protocol and are ranked together; blocks are never ranked against each other. The format is
documented in ``docs/tables-and-reports.md`` and checked by :data:`BASELINE_SCHEMA`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from omnibench.errors import OmnibenchError

PUBLISHED = "published"
STATUSES = ("reported", "measured")

_ENTRY = {
    "type": "object",
    "required": ["method", "block", "metric", "value", "higher_is_better", "definition", "dataset", "source", "status"],
    "additionalProperties": False,
    "properties": {
        "method": {"type": "string", "minLength": 1},
        "block": {"type": "string", "minLength": 1},
        "metric": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "value": {"type": ["number", "null"]},
        "ci95": {
            "oneOf": [{"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, {"type": "null"}]
        },
        "decimals": {"type": "integer", "minimum": 0, "maximum": 8},
        "mark": {"type": "string"},
        "higher_is_better": {"type": "boolean"},
        "definition": {"type": "string"},
        "dataset": {"type": "string"},
        "resolution": {"type": ["string", "null"]},
        "samples": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "generated": {"type": ["integer", "null"], "minimum": 0},
                "real": {"type": ["integer", "null"], "minimum": 0},
            },
        },
        "source": {
            "type": "object",
            "required": ["paper"],
            "additionalProperties": False,
            "properties": {
                "paper": {"type": "string", "minLength": 1},
                "table": {"type": ["string", "null"]},
                "url": {"type": ["string", "null"]},
            },
        },
        "status": {"enum": list(STATUSES)},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}

BASELINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["entries"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": "omnibench-baselines"},
        "version": {"const": 1},
        "blocks": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"title": {"type": "string"}, "notes": {"type": "array", "items": {"type": "string"}}},
            },
        },
        "entries": {"type": "array", "items": _ENTRY},
    },
}

# CSV columns: the entry keys, nested ones dotted; `notes` are separated by " | ".
CSV_COLUMNS = (
    "method", "block", "metric", "label", "value", "ci95_low", "ci95_high", "decimals", "mark",
    "higher_is_better", "definition", "dataset", "resolution", "samples.generated", "samples.real",
    "source.paper", "source.table", "source.url", "status", "notes",
)
_CSV_REQUIRED = ("method", "block", "metric", "value", "higher_is_better", "definition", "dataset", "source.paper", "status")


@dataclass(frozen=True)
class Baseline:
    """One published or user-supplied number (``value`` None means "N/A" in the source)."""

    method: str
    block: str
    metric: str
    value: float | None
    higher_is_better: bool
    definition: str
    dataset: str
    source: dict[str, Any]
    status: str
    label: str | None = None
    ci95: tuple[float, float] | None = None
    decimals: int | None = None
    mark: str | None = None
    resolution: str | None = None
    samples: dict[str, int | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line naming definition, dataset, resolution, sample counts and source."""
        parts = [self.definition, f"dataset {self.dataset}"]
        if self.resolution:
            parts.append(f"resolution {self.resolution}")
        gen, real = self.samples.get("generated"), self.samples.get("real")
        if gen is None and real is None:
            parts.append("sample counts not stated")
        else:
            parts.append(f"samples {_count(gen)} generated / {_count(real)} real")
        src = self.source["paper"]
        if self.source.get("table"):
            src += f", {self.source['table']}"
        if self.source.get("url"):
            src += f" ({self.source['url']})"
        parts.append(f"source: {src}")
        return "; ".join(parts)


def _count(n: int | None) -> str:
    return "not stated" if n is None else f"{n:,}"


@dataclass(frozen=True)
class BaselineSet:
    """Entries plus per-block titles and notes, in file order."""

    entries: tuple[Baseline, ...]
    blocks: dict[str, dict[str, Any]]
    source: str

    def block_title(self, block: str) -> str:
        return str(self.blocks.get(block, {}).get("title") or block)

    def block_notes(self, block: str) -> list[str]:
        return list(self.blocks.get(block, {}).get("notes") or [])


def _fail(source: str, message: str) -> OmnibenchError:
    return OmnibenchError(f"baseline file {source}: {message} (format: docs/tables-and-reports.md, 'Baseline files')")


def _validate(data: Any, source: str) -> BaselineSet:
    if not isinstance(data, dict):
        raise _fail(source, "expected a mapping with an 'entries' list at the top level")
    try:
        jsonschema.validate(data, BASELINE_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<top>"
        raise _fail(source, f"invalid at '{where}': {exc.message}") from None
    blocks = dict(data.get("blocks") or {})
    out: list[Baseline] = []
    seen: dict[tuple[str, str, str], int] = {}
    directions: dict[tuple[str, str], bool] = {}
    for i, e in enumerate(data["entries"]):
        key = (e["block"], e["method"], e["metric"])
        if key in seen:
            raise _fail(source, f"entries {seen[key]} and {i} both give {e['method']!r} / {e['metric']!r} in block {e['block']!r}")
        seen[key] = i
        col = (e["block"], e["metric"])
        if directions.setdefault(col, e["higher_is_better"]) != e["higher_is_better"]:
            raise _fail(source, f"entry {i}: metric {e['metric']!r} has conflicting higher_is_better in block {e['block']!r}")
        value = e["value"]
        if value is not None and not math.isfinite(float(value)):
            raise _fail(source, f"entry {i}: value must be a finite number or null (N/A)")
        ci = e.get("ci95")
        out.append(
            Baseline(
                method=e["method"], block=e["block"], metric=e["metric"],
                value=None if value is None else float(value), higher_is_better=e["higher_is_better"],
                definition=e["definition"], dataset=e["dataset"], source=dict(e["source"]), status=e["status"],
                label=e.get("label"), ci95=None if ci is None else (float(ci[0]), float(ci[1])),
                decimals=e.get("decimals"), mark=e.get("mark"), resolution=e.get("resolution"),
                samples=dict(e.get("samples") or {}), notes=tuple(e.get("notes") or ()),
            )
        )
    return BaselineSet(tuple(out), blocks, source)


def _csv_value(col: str, raw: str, source: str, line: int) -> Any:
    raw = raw.strip()
    if col in ("value", "ci95_low", "ci95_high"):
        if raw == "" or raw.upper() == "N/A":
            return None
        try:
            return float(raw)
        except ValueError:
            raise _fail(source, f"line {line}: column '{col}' must be a number or N/A, got {raw!r}") from None
    if col in ("decimals", "samples.generated", "samples.real"):
        if raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise _fail(source, f"line {line}: column '{col}' must be an integer, got {raw!r}") from None
    if col == "higher_is_better":
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise _fail(source, f"line {line}: column 'higher_is_better' must be true or false, got {raw!r}")
    if col == "notes":
        return [n.strip() for n in raw.split("|") if n.strip()]
    return raw or None


def _parse_csv(text: str, source: str) -> dict:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if unknown:
        raise _fail(source, f"unknown CSV column(s) {', '.join(unknown)}; allowed: {', '.join(CSV_COLUMNS)}")
    missing = [c for c in _CSV_REQUIRED if c not in header]
    if missing:
        raise _fail(source, f"missing CSV column(s) {', '.join(missing)}")
    entries = []
    for line, row in enumerate(reader, start=2):
        e: dict[str, Any] = {}
        for col, raw in row.items():
            if col is None:
                raise _fail(source, f"line {line}: more fields than header columns")
            v = _csv_value(col, raw or "", source, line)
            if v is None and col not in ("value",):
                continue
            if col == "notes" and not v:
                continue
            if "." in col:
                outer, inner = col.split(".", 1)
                e.setdefault(outer, {})[inner] = v
            elif col in ("ci95_low", "ci95_high"):
                e.setdefault("_ci", {})[col] = v
            else:
                e[col] = v
        ci = e.pop("_ci", None)
        if ci is not None:
            if set(ci) != {"ci95_low", "ci95_high"}:
                raise _fail(source, f"line {line}: give both ci95_low and ci95_high, or neither")
            e["ci95"] = [ci["ci95_low"], ci["ci95_high"]]
        entries.append(e)
    return {"entries": entries}


def load_baselines(spec: str | Path) -> BaselineSet:
    """Load ``"published"`` (the shipped numbers) or a user ``.yaml``/``.yml``/``.csv`` file; validate it."""
    if str(spec) == PUBLISHED:
        text = resources.files(__name__).joinpath("published.yaml").read_text(encoding="utf-8")
        return _validate(yaml.safe_load(text), "published")
    path = Path(spec)
    source = str(path)
    if not path.is_file():
        raise OmnibenchError(f"baseline file '{path}' does not exist (use 'published' for the shipped numbers)")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = _parse_csv(text, source)
    elif suffix in (".yaml", ".yml", ".json"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _fail(source, f"not valid YAML ({exc})") from None
    else:
        raise OmnibenchError(f"baseline file '{path}': unsupported extension '{suffix}'; use .yaml, .yml or .csv")
    return _validate(data, source)
