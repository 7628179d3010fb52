"""Small stand-ins for the head model and renderer, and in-memory metric contexts (identity + multi-view
tests).

``raycast_render`` is an independent analytic renderer (embree ray casting through trimesh): exact
per-pixel depth along the optical axis and a view-independent colour that is a function of the world
position, so a correct reprojection has (almost) zero photometric and depth error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import trimesh

from omnibench.cameras import orbit_camera
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput
from omnibench.memory_context import InMemoryContext, sample_set
from omnibench.metric_api import SampleSet


def grouped_set(name: str, images: torch.Tensor, controls: Controls, n_members: int, *,
                depth: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> SampleSet:
    """A ``views``/``expr`` set: ``len(images) // n_members`` groups of ``n_members`` consecutive samples."""
    return sample_set(name, images, controls, depth=depth, mask=mask, n_members=n_members)


class FakeCtx(InMemoryContext):
    """An :class:`InMemoryContext` with these tests' defaults: batch size 4, seed 0, no real set."""

    def __init__(self, sets: dict[str, SampleSet], head: Any = None, options: dict[str, Any] | None = None,
                 batch_size: int = 4) -> None:
        super().__init__(sets, head=head, options=options, seed=0, batch_size=batch_size)


def controls_for(camera: torch.Tensor, n_shape: int = 4, n_expr: int = 4) -> Controls:
    b = camera.shape[0]
    return Controls(
        camera=camera,
        shape=torch.zeros(b, n_shape),
        expression=torch.zeros(b, n_expr),
        pose=torch.zeros(b, 15),
    )


def color_of(points: np.ndarray) -> np.ndarray:
    """Smooth, view-independent RGB in [0, 1] of world points (N, 3)."""
    p = points * 25.0
    return np.stack(
        [
            0.5 + 0.4 * np.sin(p[:, 0]),
            0.5 + 0.4 * np.sin(p[:, 1] + 1.0),
            0.5 + 0.4 * np.cos(p[:, 2] + p[:, 0]),
        ],
        1,
    )


def raycast_render(
    mesh: trimesh.Trimesh, cameras: torch.Tensor, res: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images float (B,3,res,res), depth (B,res,res) with inf off-mesh, mask (B,res,res)) by ray casting."""
    from metrics.multiview import pixel_rays

    o, d = pixel_rays(cameras, res, res)
    imgs, depths, masks = [], [], []
    for b in range(cameras.shape[0]):
        dirs = d[b].reshape(-1, 3).numpy()
        unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        origins = np.broadcast_to(o[b].numpy(), dirs.shape)
        loc, ray_idx, _ = mesh.ray.intersects_location(origins, unit, multiple_hits=False)
        depth = np.full(dirs.shape[0], np.inf)
        # optical-axis depth: distance along the unnormalised ray (camera z = 1)
        t = np.linalg.norm(loc - origins[ray_idx], axis=1) / np.linalg.norm(dirs[ray_idx], axis=1)
        depth[ray_idx] = t
        img = np.full((dirs.shape[0], 3), 0.1)
        img[ray_idx] = color_of(loc)
        imgs.append(img.T.reshape(3, res, res))
        depths.append(depth.reshape(res, res))
        masks.append(np.isfinite(depth).reshape(res, res).astype(np.float32))
    return (
        torch.tensor(np.stack(imgs), dtype=torch.float32),
        torch.tensor(np.stack(depths), dtype=torch.float32),
        torch.tensor(np.stack(masks)),
    )


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def view_cameras(n_groups: int, yaws: tuple[float, ...], radius: float = 0.8) -> torch.Tensor:
    y = torch.tensor(yaws, dtype=torch.float32).repeat(n_groups)
    return orbit_camera(y, torch.zeros_like(y), radius)


@dataclass
class FakeHeadOutput:
    vertices: torch.Tensor


class FakeHeadModel(torch.nn.Module):
    """A bumpy sphere 'head': shape[:,0] scales it, expression[:,0] pushes the lower half forward (metres)."""

    def __init__(self, subdivisions: int = 3, radius: float = 0.1) -> None:
        super().__init__()
        base = trimesh.creation.icosphere(subdivisions, radius)
        v = base.vertices.copy()
        v[:, 2] += 0.02 * np.exp(-((v[:, 0] ** 2 + (v[:, 1] - 0.0) ** 2) / 0.002))  # a 'nose'
        self.template = torch.tensor(v, dtype=torch.float32)
        self.faces = torch.tensor(base.faces, dtype=torch.int64)
        self.masks = {"face": torch.nonzero(self.template[:, 2] > 0.03).flatten()}
        self.name = "fake-head"
        self.sha256 = "0" * 64
        self.n_shape, self.n_expression = 4, 4

    def forward(
        self,
        shape: torch.Tensor,
        expression: torch.Tensor,
        pose: torch.Tensor | None = None,
        translation: torch.Tensor | None = None,
    ) -> FakeHeadOutput:
        v = self.template[None] * (1 + 0.1 * shape[:, None, :1])
        lower = (self.template[None, :, 1:2] < 0).float()
        v = v + lower * torch.tensor([0.0, 0.0, 1.0]) * 0.01 * expression[:, None, :1]
        return FakeHeadOutput(vertices=v)

    def mesh(self, shape: torch.Tensor, expression: torch.Tensor) -> trimesh.Trimesh:
        v = self(shape[None], expression[None]).vertices[0].numpy()
        return trimesh.Trimesh(vertices=v, faces=self.faces.numpy(), process=False)


class RaycastGenerator(Generator):
    """A generator that ray-casts
    :class:`FakeHeadModel` for the given controls; ``z[:, :3]`` tints the colour. Exact depth."""

    name = "raycast-fake"
    z_dim = 8
    resolution = 32
    provides_depth = True
    head_model = "fake-head"
    checkpoint_kind = None

    def __init__(self) -> None:
        self.head = FakeHeadModel()
        self.flame_layout = FlameLayout(n_shape=4, n_expression=4)

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> RaycastGenerator:
        return cls()

    def describe(self) -> dict:
        return {"generator": self.name, "z_dim": self.z_dim, "resolution": self.resolution}

    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        imgs, depths, masks = [], [], []
        for i in range(len(controls)):
            mesh = self.head.mesh(controls.shape[i, :4], controls.expression[i, :4])
            im, d, m = raycast_render(mesh, controls.camera[i : i + 1], self.resolution)
            tint = 0.8 + 0.2 * torch.tanh(z[i, :3]).reshape(3, 1, 1)
            imgs.append((im[0] * tint).clamp(0, 1))
            depths.append(d[0])
            masks.append(m[0])
        return GeneratorOutput(torch.stack(imgs), torch.stack(depths), torch.stack(masks))
