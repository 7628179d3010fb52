"""One process vs two (torchrun, gloo on CPU) give identical result values."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omnibench.cli import main
from omnibench.distributed import DistInfo, assign, env_info, gather_in_order

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


def test_each_torchrun_rank_computes_on_its_own_gpu():
    """The device every multi-process entry point (evaluation, both trainers) uses: no GPU needed."""
    info = env_info({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert (info.rank, info.world_size, info.local_rank, info.active) == (1, 2, 1, True)
    assert info.device_for("cuda") == "cuda:1"
    assert info.device_for("cpu") == "cpu" and info.device_for("cuda:0") == "cuda:0"  # explicit choices stand
    assert env_info({"WORLD_SIZE": "4", "RANK": "6", "LOCAL_RANK": "2"}).device_for("cuda") == "cuda:2"
    single = env_info({})
    assert not single.active and single.device_for("cuda") == "cuda" and env_info({"WORLD_SIZE": "1"}) == DistInfo()


@pytest.mark.timeout(600)
def test_one_vs_two_processes(tmp_path, fresh_cache, monkeypatch, capsys):
    """The single-process run is this process (no interpreter start-up) on one thread as each rank; the two ranks
    start from an empty cache, so both build the synthetic head at once."""
    fresh_cache()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # read by `omnibench evaluate`, as in each rank
    threads = torch.get_num_threads()
    try:
        assert main([*ARGS, "--out", str(tmp_path / "one.json")]) == 0
    finally:
        torch.set_num_threads(threads)
    one_out = capsys.readouterr().out
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "omnibench",
         *ARGS, "--out", str(tmp_path / "two.json")],
        env=_env(tmp_path / "c2"), capture_output=True, text=True, cwd=ROOT, timeout=500,
    )
    assert two.returncode == 0, two.stderr
    r1, r2 = json.loads(one_out), json.loads(two.stdout)  # exactly one JSON document: rank 0 prints
    assert r2["environment"]["world_size"] == 2 and r1["environment"]["world_size"] == 1
    for key in r1["metrics"]:
        a, b = r1["metrics"][key], r2["metrics"][key]
        assert (a["value"], a["n"], a["ci95"]) == (b["value"], b["n"], b["ci95"]), key
    assert r1["sampling"] == r2["sampling"]
    assert json.loads((tmp_path / "two.json").read_text())["metrics"].keys() == r1["metrics"].keys()
