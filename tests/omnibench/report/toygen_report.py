"""A tiny deterministic generator for figure tests: colour from z, a disc that moves with yaw and grows with
expression, a bar that opens with the jaw."""

import torch

from omnibench.cameras import yaw_pitch_of
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput


class ToyGenerator(Generator):
    name = "toy"
    z_dim = 8
    resolution = 32
    flame_layout = FlameLayout(n_shape=10, n_expression=10)

    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        b, r = z.shape[0], self.resolution
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, r), torch.linspace(-1, 1, r), indexing="ij")
        yaw = yaw_pitch_of(controls.camera)[:, 0]
        cx = -yaw[:, None, None]
        rad = 0.35 + 0.05 * controls.expression[:, :3].sum(1).clamp(-3, 3)[:, None, None]
        disc = (((xx - cx) ** 2 + yy**2) < rad**2).float()
        bar = ((yy - 0.5).abs() < controls.pose[:, 6, None, None] + 0.02).float() * (xx.abs() < 0.3).float()
        colour = torch.sigmoid(z[:, :3] * truncation_psi)[:, :, None, None]
        img = colour * disc[:, None] + 0.2 * bar[:, None]
        return GeneratorOutput(image=img.clamp(0, 1).expand(b, 3, r, r))


class ToySeeded(ToyGenerator):
    """The toy under named "checkpoints" (``toy-s0``, ``toy-s1``: the same weights), so result files can stand for
    several training runs of one model in seed-sibling tests."""

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> ToyGenerator:
        return cls()
