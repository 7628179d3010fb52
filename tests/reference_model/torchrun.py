"""Run a test script under torchrun (fresh processes, one thread each, from the repo root), and the single-process
runs it is compared with."""

import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def run_script(cmd: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def run_one_thread(fn: Callable[[], None]) -> None:
    """``fn()`` in this process on one thread, as each torchrun rank runs (OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fn()
    finally:
        torch.set_num_threads(threads)


def one_two_half(module: str, out: Callable[[str], Path], per_rank: int) -> None:
    """The data-parallel check's three runs of ``MODULE.train(OUT, N)``: ``out("one")`` one process with
    ``2 * per_rank`` samples, ``out("two")`` two torchrun ranks (gloo) of ``per_rank`` each
    (``python -m MODULE OUT N``), ``out("half")`` one process with ``per_rank`` (rank 0's share alone). The two
    single-process runs are this process (no interpreter, torch and module start-up, most of a run's time)."""
    train = importlib.import_module(module).train
    run_one_thread(lambda: train(out("one"), 2 * per_rank))
    run_script([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", module,
                str(out("two")), str(per_rank)])
    run_one_thread(lambda: train(out("half"), per_rank))
