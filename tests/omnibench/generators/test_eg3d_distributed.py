"""The ``eg3d`` generator gives the same numbers in one process and in two torchrun ranks (gloo on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from omnibench.cli import main

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("one_checkout_per_test")


@pytest.mark.slow  # two torchrun ranks over quick@2's 500 samples; test_eg3d's per-sample tests cover the property
@pytest.mark.timeout(900)
def test_one_vs_two_processes(eg3d_files, tmp_path, fresh_cache, monkeypatch, capsys):
    args = ["evaluate", "--no-progress", "--ckpt", str(eg3d_files["pkl"]), "--option", f"repo={eg3d_files['repo']}",
            "--protocol", "quick@2", "--batch-size", "24", "--metrics", "tests.omnibench.fakes:MeanPixel"]
    fresh_cache()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    one = json.loads(capsys.readouterr().out)
    env = dict(os.environ, OMNIBENCH_CACHE=str(tmp_path / "c2"), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "omnibench", *args], env=env, capture_output=True, text=True, cwd=ROOT, timeout=500)
    assert two.returncode == 0, two.stderr[-3000:]
    r2 = json.loads(two.stdout)
    assert r2["environment"]["world_size"] == 2 and one["environment"]["world_size"] == 1
    a, b = one["metrics"]["mean-pixel"], r2["metrics"]["mean-pixel"]
    assert (a["value"], a["n"], a["ci95"]) == (b["value"], b["n"], b["ci95"])
    assert one["sampling"] == r2["sampling"]
