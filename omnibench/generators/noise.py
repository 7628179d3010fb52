"""``noise``: images of deterministic uniform noise; the worst-case generator for calibrating metrics.

Each image depends only on its own latent row (and ``truncation_psi``): the row ``psi * z`` as
float32 bytes is hashed with SHA-256 and seeds a PCG64 stream that draws ``(3, H, W)`` uniform values.
Controls are ignored (their batch size is checked), so every control metric should score at chance.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from omnibench.errors import OmnibenchError
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput


class NoiseGenerator(Generator):
    name = "noise"
    z_dim = 64
    flame_layout = FlameLayout()
    provides_depth = False
    # declares every control on purpose: it is the chance-level calibration of the control metrics

    def __init__(self, resolution: int = 64) -> None:
        if not isinstance(resolution, int) or not 4 <= resolution <= 4096:
            raise OmnibenchError(f"noise generator resolution must be an integer in [4, 4096], got {resolution!r}")
        self.resolution = resolution

    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise OmnibenchError(f"noise generator expects z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if len(controls) != z.shape[0]:
            raise OmnibenchError(f"z has {z.shape[0]} rows but controls have {len(controls)}")
        rows = (z.detach().cpu().to(torch.float32) * float(truncation_psi)).numpy()
        images = []
        for row in rows:
            seed = int.from_bytes(hashlib.sha256(np.ascontiguousarray(row).tobytes()).digest()[:8], "little")
            rng = np.random.Generator(np.random.PCG64(seed))
            images.append(rng.random((3, self.resolution, self.resolution), dtype=np.float32))
        return GeneratorOutput(image=torch.from_numpy(np.stack(images)))

    def describe(self) -> dict:
        return {**super().describe(), "kind": "deterministic uniform noise from sha256(z)"}
