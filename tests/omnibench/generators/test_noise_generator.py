import pytest
import torch

from omnibench.errors import OmnibenchError
from omnibench.generators import GENERATORS, Controls
from omnibench.generators.noise import NoiseGenerator


def _controls(n: int) -> Controls:
    return Controls(torch.zeros(n, 25), torch.zeros(n, 100), torch.zeros(n, 50), torch.zeros(n, 15))


def test_noise_is_a_deterministic_function_of_each_latent_row():
    assert GENERATORS.get("noise") is NoiseGenerator
    g = NoiseGenerator(resolution=16)
    z = torch.randn(3, g.z_dim, generator=torch.Generator().manual_seed(0))
    a = g.synthesize(z, _controls(3)).image
    assert a.shape == (3, 3, 16, 16) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(g.synthesize(z[2:], _controls(1)).image[0], a[2])
    assert not torch.equal(a[0], a[1])
    assert abs(a.mean().item() - 0.5) < 0.05
    assert not g.provides_depth


def test_noise_rejects_bad_shapes():
    g = NoiseGenerator()
    with pytest.raises(OmnibenchError):
        g.synthesize(torch.zeros(2, 3), _controls(2))
    with pytest.raises(OmnibenchError):
        g.synthesize(torch.zeros(2, g.z_dim), _controls(3))
    with pytest.raises(OmnibenchError):
        NoiseGenerator(resolution=1)
