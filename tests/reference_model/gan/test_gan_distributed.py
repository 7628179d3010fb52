"""Stage II training under torchrun (gloo on CPU): two ranks of B samples each = one process of 2B samples
(B = 2 = D's minibatch-std group in the test config, so both form the same groups)."""

from pathlib import Path

import pytest
import torch

from reference_model.gan.checkpoint import read_gan_checkpoint
from tests.reference_model.torchrun import one_two_half


def _state(path: Path) -> dict:
    return read_gan_checkpoint(path / "checkpoint.pt")["training"]["G"]


@pytest.mark.timeout(400)
def test_two_ranks_train_like_one_process_with_the_whole_batch(tmp_path):
    one_two_half("tests.reference_model.gan.ddp_train", lambda name: tmp_path / name, per_rank=2)
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
