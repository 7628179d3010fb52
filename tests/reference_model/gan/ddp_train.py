"""Run by ``test_gan_distributed``: two steps of the test GAN config, in one process (``train``) or under torchrun.

Usage: ``python -m tests.reference_model.gan.ddp_train OUT_DIR BATCH_PER_RANK``.
"""

import sys
from pathlib import Path

from reference_model.gan.train import Trainer
from tests.reference_model.gan.test_gan import CFG, LinearHead, make_data, make_sdf, sdf_meta


def train(out: Path, batch: int) -> None:
    sdf = make_sdf()
    Trainer(CFG.with_overrides(batch=batch), make_data(), sdf, LinearHead(), sdf_meta(sdf), Path(out), quiet=True).run()


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]))
