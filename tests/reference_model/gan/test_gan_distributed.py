"""Stage II training under torchrun (gloo on CPU): two ranks of B samples each = one process of 2B samples."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference_model.gan.checkpoint import read_gan_checkpoint

ROOT = Path(__file__).resolve().parents[3]


def _run(cmd: list[str]) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def _state(path: Path) -> dict:
    return read_gan_checkpoint(path / "checkpoint.pt")["training"]["G"]


@pytest.mark.timeout(400)
def test_two_ranks_train_like_one_process_with_the_whole_batch(tmp_path):
    script = ["-m", "tests.reference_model.gan.ddp_train"]
    _run([sys.executable, *script, str(tmp_path / "one"), "2"])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *script,
          str(tmp_path / "two"), "1"])
    _run([sys.executable, *script, str(tmp_path / "half"), "1"])  # rank 0's share alone
    one, two, half = (_state(tmp_path / n) for n in ("one", "two", "half"))
    assert read_gan_checkpoint(tmp_path / "two" / "checkpoint.pt")["step"] == 2
    trained = [k for k in one if not k.startswith("sdf.") and k != "mapping.w_avg"]
    flat = lambda s: torch.cat([s[k].flatten().float() for k in trained])  # noqa: E731
    init_free = flat(one) - flat(half)  # how much rank 1's samples change the result
    assert (flat(one) - flat(two)).norm() < 0.02 * init_free.norm()
    assert init_free.norm() > 0
    # w_avg follows the global batch mean of w, not rank 0's
    assert torch.allclose(one["mapping.w_avg"], two["mapping.w_avg"], atol=1e-6)
    assert not torch.allclose(one["mapping.w_avg"], half["mapping.w_avg"], atol=1e-6)
