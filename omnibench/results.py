"""Result files (schema version 1): writing atomically, loading and validating.

The schema is documented in ``docs/result-schema.md``; :data:`RESULT_SCHEMA` is the machine-checked form.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import jsonschema

from omnibench.errors import ResultFileError
from omnibench.fileio import atomic_write_text

SCHEMA_VERSION = 1

_METRIC = {
    "type": "object",
    "required": ["value", "higher_is_better", "n", "ci95", "version", "variant", "failures"],
    "properties": {
        "value": {"type": ["number", "null"]},
        "higher_is_better": {"type": "boolean"},
        "n": {"type": "integer", "minimum": 0},
        "ci95": {
            "oneOf": [
                {"type": "array", "items": {"type": ["number", "null"]}, "minItems": 2, "maxItems": 2},
                {"type": "null"},
            ]
        },
        "version": {"type": "integer", "minimum": 1},
        "variant": {"type": "string"},
        "failures": {"type": "integer", "minimum": 0},
        "unit": {"type": "string"},
        "details": {"type": "object"},
        "seconds": {"type": "number", "minimum": 0},
        "not_applicable": {"type": "string"},  # why the generator's controls make this metric meaningless
    },
}

RESULT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "omnibench result file",
    "type": "object",
    "required": [
        "schema_version",
        "omnibench_version",
        "created",
        "git_sha",
        "checkpoint",
        "protocol",
        "backbones",
        "environment",
        "metrics",
        "timings",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "omnibench_version": {"type": "string"},
        "created": {"type": "string"},
        "git_sha": {"type": ["string", "null"]},
        "profile": {"type": "string"},
        "checkpoint": {
            "type": "object",
            "required": ["path", "sha256", "generator"],
            "properties": {
                "path": {"type": "string"},
                "sha256": {"type": ["string", "null"]},
                "generator": {"type": "string"},
                "label": {"type": "string"},
            },
        },
        "protocol": {
            "type": "object",
            "required": ["name", "version", "seed", "hash"],
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "integer"},
                "seed": {"type": "integer"},
                "hash": {"type": "string"},
            },
        },
        "backbones": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["name", "sha256"],
                "properties": {"name": {"type": "string"}, "sha256": {"type": ["string", "null"]}},
            },
        },
        "environment": {
            "type": "object",
            "required": ["python", "torch", "device"],
        },
        "metrics": {"type": "object", "additionalProperties": _METRIC},
        "timings": {"type": "object", "additionalProperties": {"type": "number"}},
        # optional blocks written by `omnibench evaluate` (see docs/result-schema.md)
        "sampling": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["n", "cache_key"],
                "properties": {"n": {"type": "integer"}, "cache_key": {"type": "string"}, "controls": {"type": "object"}},
            },
        },
        "real": {"type": ["object", "null"], "properties": {"path": {"type": "string"}, "hash": {"type": "string"}}},
        "skipped": {"type": "object", "additionalProperties": {"type": "string"}},
        "options": {"type": "object"},
        "run": {"type": "object"},
    },
}


def validate_result(data: Any, source: str = "<result>") -> dict:
    """Raise :class:`ResultFileError` naming the first problem if ``data`` is not a valid result."""
    if not isinstance(data, dict):
        raise ResultFileError(f"{source}: not a JSON object")
    if data.get("schema_version") not in (None, SCHEMA_VERSION):
        raise ResultFileError(
            f"{source}: schema_version {data.get('schema_version')!r} is not supported (expected {SCHEMA_VERSION})"
        )
    try:
        jsonschema.validate(data, RESULT_SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "<top>"
        raise ResultFileError(f"{source}: invalid result file at '{where}': {exc.message}") from None
    return data


def load_result(path: str | os.PathLike) -> dict:
    """Load and validate a result file."""
    p = Path(path)
    if not p.is_file():
        raise ResultFileError(f"result file '{p}' does not exist")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultFileError(f"{p}: not valid JSON ({exc})") from None
    return validate_result(data, str(p))


def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays and torch tensors become numbers and lists,
    paths and other objects strings, dict keys strings, non-finite floats ``None`` (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars, torch tensors
        return json_safe(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def dumps_result(data: dict) -> str:
    return json.dumps(json_safe(data), indent=2, sort_keys=False) + "\n"


def write_result(path: str | os.PathLike, data: dict) -> None:
    """Validate then atomically write a result file."""
    validate_result(json_safe(data), str(path))
    atomic_write_text(path, dumps_result(data))
