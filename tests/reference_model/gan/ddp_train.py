"""Run by ``test_gan_distributed``: two steps of the test GAN config, in one process or under torchrun.

Usage: ``python -m tests.reference_model.gan.ddp_train OUT_DIR BATCH_PER_RANK``.
"""

import sys
from pathlib import Path

from reference_model.gan.train import Trainer
from tests.reference_model.gan.test_gan import CFG, LinearHead, make_data, make_sdf, sdf_meta

if __name__ == "__main__":
    sdf = make_sdf()
    Trainer(CFG.with_overrides(batch=int(sys.argv[2])), make_data(), sdf, LinearHead(), sdf_meta(sdf), Path(sys.argv[1]),
            quiet=True).run()
