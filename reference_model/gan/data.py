"""Training data for Stage II: an EG3D-style dataset (images + camera + FLAME labels) held in memory."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def seeded(*key: int) -> torch.Generator:
    """A generator seeded from an integer key (seed, stream, step): batches depend on the key alone."""
    g = torch.Generator()
    g.manual_seed(int(sum(k * 1_000_003**i for i, k in enumerate(key)) % (2**63)))
    return g


@dataclass
class TrainingSet:
    images: torch.Tensor  # (N, 3, H, W) uint8
    camera: torch.Tensor  # (N, 25)
    shape: torch.Tensor  # (N, S)
    expression: torch.Tensor  # (N, E)
    pose: torch.Tensor  # (N, 15)
    content_hash: str = ""
    path: str = ""
    framing: str = "v1"  # where the dataset's cameras sit (omnibench.cameras.FRAMINGS; its manifest's)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[idx].float() / 255.0,
            "camera": self.camera[idx],
            "shape": self.shape[idx],
            "expression": self.expression[idx],
            "pose": self.pose[idx],
        }


def load_training_set(path: str) -> TrainingSet:
    """Read an EG3D-style dataset folder written by ``omnibench data synth`` (or any with FLAME labels)."""
    from omnibench.cameras import recorded_framing
    from omnibench.data.dataset import load_dataset

    ds = load_dataset(path)
    controls = ds.controls()  # raises a clear error if the dataset has no FLAME labels
    return TrainingSet(
        images=ds.images(),
        camera=controls.camera,
        shape=controls.shape,
        expression=controls.expression,
        pose=controls.pose,
        content_hash=str((ds.manifest or {}).get("content_hash", "")),
        path=str(path),
        framing=recorded_framing(ds.manifest),
    )
