"""One process vs two (torchrun, gloo on CPU) give identical result values."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omnibench.distributed import DistInfo, assign, gather_in_order

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["evaluate", "--no-progress", "--ckpt", "fake64", "--generator", "tests.omnibench.fakes:FakeGenerator64",
        "--protocol", "quick", "--batch-size", "24", "--metrics",
        "tests.omnibench.fakes:MeanPixel,tests.omnibench.fakes:GroupSpread,tests.omnibench.fakes:GroupSpread@expr"]


def _env(cache: Path) -> dict:
    env = dict(os.environ, OMNIBENCH_CACHE=str(cache), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


def test_assign_is_a_partition():
    items = list(range(11))
    parts = [assign(items, DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert sorted(sum(parts, [])) == items and parts[1] == [1, 4, 7, 10]
    assert gather_in_order(["b", "a"], [1, 0], DistInfo()) == ["a", "b"]


@pytest.mark.timeout(600)
def test_one_vs_two_processes(tmp_path):
    one = subprocess.run([sys.executable, "-m", "omnibench", *ARGS, "--out", str(tmp_path / "one.json")],
                         env=_env(tmp_path / "c1"), capture_output=True, text=True, cwd=ROOT, timeout=500)
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "omnibench",
         *ARGS, "--out", str(tmp_path / "two.json")],
        env=_env(tmp_path / "c2"), capture_output=True, text=True, cwd=ROOT, timeout=500,
    )
    assert two.returncode == 0, two.stderr
    r1, r2 = json.loads(one.stdout), json.loads(two.stdout)  # exactly one JSON document: rank 0 prints
    assert r2["environment"]["world_size"] == 2 and r1["environment"]["world_size"] == 1
    for key in r1["metrics"]:
        a, b = r1["metrics"][key], r2["metrics"][key]
        assert (a["value"], a["n"], a["ci95"]) == (b["value"], b["n"], b["ci95"]), key
    assert r1["sampling"] == r2["sampling"]
    assert json.loads((tmp_path / "two.json").read_text())["metrics"].keys() == r1["metrics"].keys()
