"""Run by ``test_sdf_distributed``: train the test config on the sphere head, in one process or under torchrun.

Usage: ``python -m tests.reference_model.sdf.ddp_train OUT.pt MESHES_PER_STEP``.
"""

import sys
from pathlib import Path

from reference_model.sdf.train import train
from tests.reference_model.sdf.conftest import SphereHead
from tests.reference_model.sdf.test_sdf import TINY

if __name__ == "__main__":
    cfg = TINY.with_overrides(meshes_per_step=int(sys.argv[2]))
    train(cfg, Path(sys.argv[1]), head=SphereHead(), quiet=True)
