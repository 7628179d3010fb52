import json

import pytest

from omnibench.errors import ResultFileError
from omnibench.results import load_result, write_result


def minimal_result() -> dict:
    return {
        "schema_version": 1,
        "omnibench_version": "0.1.0",
        "created": "2026-11-25T00:00:00Z",
        "git_sha": None,
        "checkpoint": {"path": "oracle", "sha256": None, "generator": "oracle"},
        "protocol": {"name": "quick", "version": 1, "seed": 0, "hash": "abc"},
        "backbones": {"inception": {"name": "inception-2015-12-05", "sha256": "7ff4"}},
        "environment": {"python": "3.11", "torch": "2.14.1", "device": "cpu"},
        "metrics": {
            "fid": {"value": 1.5, "higher_is_better": False, "n": 10, "ci95": [1.0, 2.0], "version": 1,
                    "variant": "default", "failures": 0}
        },
        "timings": {"total_s": 1.0},
    }


def test_round_trip(tmp_path):
    p = tmp_path / "r.json"
    write_result(p, minimal_result())
    assert load_result(p)["metrics"]["fid"]["value"] == 1.5


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("metrics"), "'metrics' is a required property"),
        (lambda d: d["metrics"]["fid"].pop("ci95"), "ci95"),
        (lambda d: d.update(schema_version=7), "schema_version 7"),
    ],
)
def test_malformed_files_rejected(tmp_path, mutate, message):
    d = minimal_result()
    mutate(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ResultFileError, match=message):
        load_result(p)


def test_invalid_write_leaves_nothing(tmp_path):
    d = minimal_result()
    d["metrics"]["fid"]["n"] = -1
    with pytest.raises(ResultFileError):
        write_result(tmp_path / "x.json", d)
    assert list(tmp_path.iterdir()) == []
