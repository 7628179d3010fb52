"""Small stand-ins for the control-accuracy tests: a FLAME-like head, an in-memory metric context and a
mock estimator that returns the true controls plus noise of known sigma."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from metrics.control_math import axis_angle_to_matrix
from metrics.estimators.base import Estimator, FlameEstimate
from omnibench.cameras import orbit_camera
from omnibench.generators.base import Controls
from omnibench.memory_context import InMemoryContext, sample_set


@dataclass
class FakeHeadOutput:
    vertices: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor
    landmarks3d: torch.Tensor


class FakeHead(torch.nn.Module):
    """FLAME-like linear head (metres): smooth shape/expression bases, a rotating jaw, global rotation
    about the root joint, 68 landmarks picked on the front of the face."""

    name = "fake"
    sha256 = "0" * 64

    def __init__(self, n_shape: int = 20, n_expression: int = 10, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        u, v = torch.meshgrid(torch.linspace(-1.2, 1.2, 24), torch.linspace(-1.4, 1.4, 24), indexing="ij")
        u, v = u.reshape(-1), v.reshape(-1)
        x, y = 0.075 * torch.sin(u), 0.11 * torch.sin(v) * 0.9
        z = 0.09 * torch.cos(u) * torch.cos(v * 0.8)
        self.register_buffer("template", torch.stack([x, y, z], -1))
        p = self.template / 0.1
        feats = torch.stack([p[:, 0], p[:, 1], p[:, 0] * p[:, 1], p[:, 1] ** 2, p[:, 0] ** 2, torch.ones_like(p[:, 0])], -1)
        normal = torch.nn.functional.normalize(self.template - torch.tensor([0.0, 0.0, -0.02]), dim=-1)
        # displacements along the (radial) normal: like FLAME's bases they cannot emulate a rigid rotation
        sf = torch.einsum("vf,fn->vn", feats, torch.randn(6, n_shape, generator=g))
        ef = torch.einsum("vf,fn->vn", feats, torch.randn(6, n_expression, generator=g))
        self.register_buffer("shapedirs", normal[:, :, None] * sf[:, None, :] * 0.003)
        self.register_buffer("exprdirs", normal[:, :, None] * ef[:, None, :] * 0.002)
        self.register_buffer("jaw_w", torch.sigmoid((-0.02 - self.template[:, 1]) / 0.01))
        self.n_shape, self.n_expression = n_shape, n_expression
        front = torch.nonzero(self.template[:, 2] > 0.03).squeeze(1)
        self.register_buffer("lmk_idx", front[torch.randperm(front.numel(), generator=g)[:68]].sort().values)
        self.masks = {"face": front}
        self.faces = torch.zeros(1, 3, dtype=torch.long)

    def forward(self, shape=None, expression=None, pose=None, translation=None) -> FakeHeadOutput:
        b = (shape if shape is not None else expression).shape[0]
        shape = torch.zeros(b, self.n_shape) if shape is None else shape[:, : self.n_shape]
        expression = torch.zeros(b, self.n_expression) if expression is None else expression[:, : self.n_expression]
        pose = torch.zeros(b, 15) if pose is None else pose
        vs = self.template + torch.einsum("vkn,bn->bvk", self.shapedirs[..., : shape.shape[1]], shape)
        vs = vs + torch.einsum("vkn,bn->bvk", self.exprdirs[..., : expression.shape[1]], expression)
        root = torch.tensor([0.0, -0.06, -0.03]).expand(b, 3)
        jaw_c = torch.tensor([0.0, -0.02, -0.03]).expand(b, 3)
        rj = axis_angle_to_matrix(pose[:, 6:9])
        jawed = torch.einsum("bij,bvj->bvi", rj, vs - jaw_c[:, None]) + jaw_c[:, None]
        w = self.jaw_w[None, :, None]
        vs = w * jawed + (1 - w) * vs
        rg = axis_angle_to_matrix(pose[:, 0:3])
        vs = torch.einsum("bij,bvj->bvi", rg, vs - root[:, None]) + root[:, None]
        joints = torch.stack([root, root, jaw_c, root, root], 1)
        if translation is not None:
            vs, joints = vs + translation[:, None], joints + translation[:, None]
        lm = vs[:, self.lmk_idx]
        return FakeHeadOutput(vs, joints, lm, lm)


def encode_index_images(n: int, res: int = 8) -> torch.Tensor:
    """uint8 images whose first two pixels hold the sample index (lets the mock find the truth)."""
    img = torch.zeros(n, 3, res, res, dtype=torch.uint8)
    idx = torch.arange(n)
    img[:, 0, 0, 0] = (idx // 256).to(torch.uint8)
    img[:, 0, 0, 1] = (idx % 256).to(torch.uint8)
    return img


def random_controls(n: int, n_shape: int = 20, n_expr: int = 10, seed: int = 0) -> Controls:
    g = torch.Generator().manual_seed(seed)
    yaw = (torch.rand(n, generator=g) - 0.5) * 0.8
    pitch = (torch.rand(n, generator=g) - 0.5) * 0.4
    pose = torch.zeros(n, 15)
    pose[:, 3:6] = torch.randn(n, 3, generator=g) * 0.05
    pose[:, 6] = torch.rand(n, generator=g) * 0.3
    return Controls(
        camera=orbit_camera(yaw, pitch),
        shape=torch.randn(n, n_shape, generator=g),
        expression=torch.randn(n, n_expr, generator=g),
        pose=pose,
    )


class FakeContext(InMemoryContext):
    """An :class:`InMemoryContext` with a ``main`` set of index-encoded images for ``controls`` (the mock finds
    the truth through them), the estimator and its options as ``--option`` gives them, batch size 7, seed 0."""

    def __init__(self, controls: Controls, head: Any, estimator: str, **estimator_options: Any) -> None:
        n = len(controls)
        main = sample_set("main", encode_index_images(n), controls, z=torch.zeros(n, 4))
        super().__init__({"main": main}, head=head, seed=0, batch_size=7,
                         options={"estimator": estimator, "estimator_options": estimator_options})


class MockEstimator(Estimator):
    """Returns the true controls (looked up by the index encoded in the image) plus Gaussian noise.

    ``sigma_*``: noise per coefficient / radian; ``camera_deg``: rotates the camera by exactly this angle
    about a random axis; ``fail_every``: every k-th sample is reported undetected; ``ignore_expression``: the
    expression estimate is the noise alone, as if read from a generator that ignores expression.
    """

    name = "mock"
    truth: ClassVar[Controls | None] = None

    def __init__(self, head_model, device="cpu", sigma_expr=0.0, sigma_shape=0.0, sigma_pose=0.0, camera_deg=0.0, fail_every=0,
                 ignore_expression=False):
        super().__init__(head_model, device)
        self.s_e, self.s_s, self.s_p, self.cam_deg, self.fail_every = sigma_expr, sigma_shape, sigma_pose, camera_deg, fail_every
        self.ignore_expression = ignore_expression  # expression = noise alone: images that carry none of it

    def estimate(self, images: torch.Tensor) -> FlameEstimate:
        idx = images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()
        t = type(self).truth.index(idx)
        noise = []
        for i in idx.tolist():  # per-sample generator: batch-size independent
            g = torch.Generator().manual_seed(1000 + i)
            noise.append((torch.randn(t.expression.shape[1], generator=g), torch.randn(t.shape.shape[1], generator=g),
                          torch.randn(15, generator=g), torch.nn.functional.normalize(torch.randn(3, generator=g), dim=0)))
        ne, ns, npose, axis = (torch.stack(x) for x in zip(*noise))
        cam = t.camera.clone()
        r = axis_angle_to_matrix(axis * torch.deg2rad(torch.tensor(self.cam_deg)))
        c2w = cam[:, :16].reshape(-1, 4, 4).clone()
        c2w[:, :3, :3] = c2w[:, :3, :3] @ r
        cam[:, :16] = c2w.reshape(-1, 16)
        detected = torch.ones(len(idx), dtype=torch.bool)
        if self.fail_every:
            detected = (idx % self.fail_every) != 0
        return FlameEstimate(
            shape=t.shape + self.s_s * ns,
            expression=(0.0 if self.ignore_expression else t.expression) + self.s_e * ne,
            pose=t.pose + self.s_p * npose,
            camera=cam,
            confidence=detected.float(),
            detected=detected,
        )
