from dataclasses import dataclass

import pytest
import torch
import trimesh


@dataclass
class _Out:
    vertices: torch.Tensor


class SphereHead(torch.nn.Module):
    """A head-model stand-in with the omnibench.heads API: a unit-ish sphere whose radius follows
    shape[0] and whose lower half moves with the jaw angle (pose[6])."""

    def __init__(self, sha: str = "sphere-v1") -> None:
        super().__init__()
        m = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        self.template = torch.tensor(m.vertices, dtype=torch.float32)
        self.faces = torch.tensor(m.faces, dtype=torch.int64)
        self.name = "sphere"
        self.sha256 = sha

    def forward(self, shape, expression, pose, translation=None):
        scale = 1 + 0.1 * shape[:, :1, None]
        v = self.template[None] * scale
        drop = (v[..., 1:2] < 0).float() * pose[:, None, 6:7] * 0.05
        v = v - drop * torch.tensor([0.0, 1.0, 0.0])
        return _Out(vertices=v)


@pytest.fixture
def sphere_head():
    return SphereHead()
