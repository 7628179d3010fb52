"""Run by ``test_sdf_distributed``: train the test config on the sphere head, in one process (``train``) or under
torchrun.

Usage: ``python -m tests.reference_model.sdf.ddp_train OUT.pt MESHES_PER_STEP``.
"""

import sys
from pathlib import Path

from reference_model.sdf.train import train as train_sdf
from tests.reference_model.sdf.conftest import SphereHead
from tests.reference_model.sdf.test_sdf import TINY


def train(out: Path, meshes_per_step: int) -> None:
    train_sdf(TINY.with_overrides(meshes_per_step=meshes_per_step), Path(out), head=SphereHead(), quiet=True)


if __name__ == "__main__":
    train(Path(sys.argv[1]), int(sys.argv[2]))
