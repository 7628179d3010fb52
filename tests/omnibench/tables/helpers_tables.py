"""Result-file builders shared by the table/compare/report tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

FIX = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> dict:
    return json.loads((FIX / f"{name}.json").read_text())


def metric(value, higher_is_better=False, ci95=None, n=100, version=1, variant="default", failures=0) -> dict:
    return {"value": value, "higher_is_better": higher_is_better, "n": n, "ci95": ci95, "version": version,
            "variant": variant, "failures": failures}


def write_run(path: Path, metrics: dict, label: str | None = None, protocol: str = "quick", **top) -> str:
    data = copy.deepcopy(load_fixture("oracle_quick"))
    data["metrics"] = metrics
    data["protocol"]["name"] = protocol
    if label:
        data["checkpoint"]["label"] = label
    data.update(top)
    path.write_text(json.dumps(data))
    return str(path)
