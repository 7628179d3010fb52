"""Result files for report tests: the table fixtures plus a run whose checkpoint is the toy generator."""

import json
from pathlib import Path

FIX = Path(__file__).parents[1] / "tables" / "fixtures"


def report_runs(tmp_path: Path) -> list[str]:
    toy = json.loads((FIX / "oracle_quick.json").read_text())
    toy["checkpoint"] = {"path": "toy", "sha256": None, "generator": "toygen_report:ToyGenerator", "label": "toy"}
    p = tmp_path / "toy.json"
    p.write_text(json.dumps(toy))
    return [str(p), str(FIX / "noise_quick.json"), str(FIX / "oracle_full.json")]
