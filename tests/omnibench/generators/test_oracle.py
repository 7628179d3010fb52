"""Oracle generators render exactly the controls they are given; variants ignore theirs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnibench.cameras import orbit_camera, project
from omnibench.data.synth import sample_controls, sample_latents
from omnibench.errors import OmnibenchError
from omnibench.generators import GENERATORS, Controls
from omnibench.generators.oracle import OracleGenerator, OracleNoExprGenerator, OracleNoShapeGenerator


def _controls(head, n: int = 2) -> Controls:
    return sample_controls(n, 11, head)


def test_registered_with_depth_and_layout(small_head):
    assert GENERATORS.get("oracle") is OracleGenerator
    assert GENERATORS.get("oracle-noexpr") is OracleNoExprGenerator
    assert GENERATORS.get("oracle-noshape") is OracleNoShapeGenerator
    g = OracleGenerator(head=small_head)
    assert g.provides_depth and g.z_dim == 64 and g.resolution == 64
    c = _controls(small_head)
    assert (g.flame_layout.n_shape, g.flame_layout.n_expression) == (c.shape.shape[1], c.expression.shape[1])


def test_deterministic_and_batch_independent(oracle, small_head):
    c = _controls(small_head, 3)
    z = sample_latents(3, 0, oracle.z_dim)
    a = oracle.synthesize(z, c)
    b = oracle.synthesize(z, c)
    assert torch.equal(a.image, b.image) and torch.equal(a.depth, b.depth) and torch.equal(a.mask, b.mask)
    single = oracle.synthesize(z[1:2], c.index(slice(1, 2)))
    assert torch.equal(single.image[0], a.image[1]) and torch.equal(single.depth[0], a.depth[1])
    assert a.image.shape == (3, 3, 48, 48) and a.depth.shape == (3, 48, 48) and a.mask.shape == (3, 48, 48)
    other = oracle.synthesize(sample_latents(3, 1, oracle.z_dim), c)
    assert not torch.equal(other.image, a.image)  # the latent picks the appearance


def _vary(c: Controls, field: str, generator: torch.Generator) -> Controls:
    d = {k: getattr(c, k).clone() for k in ("camera", "shape", "expression", "pose")}
    if field == "jaw":
        d["pose"][:, 6] += 0.3
    else:
        d[field] = d[field] + 1.5 * torch.randn(d[field].shape, generator=generator)
    return Controls(**d)


@pytest.mark.parametrize(
    ("cls", "ignored", "respected"),
    [(OracleGenerator, (), ("shape", "expression", "jaw")),
     (OracleNoExprGenerator, ("expression",), ("shape", "jaw")),
     (OracleNoShapeGenerator, ("shape",), ("expression", "jaw"))],
)
def test_variants_ignore_exactly_their_input(small_head, cls, ignored, respected):
    g = cls(head=small_head, resolution=48)
    cam = orbit_camera(torch.tensor([0.2]), torch.tensor([0.05]))
    c = Controls(cam, torch.zeros(1, 100), torch.zeros(1, 50), torch.zeros(1, 15))
    z = sample_latents(1, 3, g.z_dim)
    base = g.synthesize(z, c)
    gen = torch.Generator().manual_seed(0)
    for field in ignored:
        assert torch.equal(g.synthesize(z, _vary(c, field, gen)).image, base.image), field
    for field in respected:
        assert not torch.equal(g.synthesize(z, _vary(c, field, gen)).image, base.image), field


def test_rendered_landmarks_lie_on_the_rendered_surface(small_head):
    g = OracleGenerator(head=small_head, resolution=128, supersample=1)
    res = 128
    cams = orbit_camera(torch.tensor([0.0, 0.35]), torch.tensor([0.0, -0.1]))
    c = Controls(cams, torch.zeros(2, 100), torch.zeros(2, 50), torch.zeros(2, 15))
    c.shape[1, :10] = torch.linspace(-1.5, 1.5, 10)
    c.pose[1, 6] = 0.15
    out = g.synthesize(sample_latents(2, 0, g.z_dim), c)
    with torch.no_grad():
        lmk = small_head(shape=c.shape, expression=c.expression, pose=c.pose).landmarks.double()
    uv, z = project(lmk, cams.double(), res)
    depth = out.depth.double()
    checked = false_matches = 0
    for b in range(2):
        # nose, eyes and mouth (hair never covers them); at yaw 0.35 only the near (+x) half is unoccluded
        idx = list(range(27, 68)) if b == 0 else [i for i in range(27, 68) if lmk[b, i, 0] >= -0.005]
        for i in idx:
            x, y = (int(t) for t in uv[b, i].floor().tolist())
            nb = depth[b, max(y - 1, 0): y + 2, max(x - 1, 0): x + 2]
            err = (nb - z[b, i]).abs().min().item()
            assert err < 2e-3, (b, i, err)
            # power: a point 1 cm behind the landmark is rarely within 2 mm of the surface near its pixel
            false_matches += (nb - (z[b, i] + 0.01)).abs().min().item() < 2e-3
            checked += 1
    assert checked > 60
    assert false_matches < 0.25 * checked


def test_bad_inputs_raise(oracle, small_head):
    c = _controls(small_head, 2)
    with pytest.raises(OmnibenchError, match="z of shape"):
        oracle.synthesize(torch.zeros(2, 10), c)
    with pytest.raises(OmnibenchError, match="rows"):
        oracle.synthesize(torch.zeros(3, oracle.z_dim), c)
    with pytest.raises(OmnibenchError, match="pose"):
        oracle.synthesize(torch.zeros(2, oracle.z_dim), Controls(c.camera, c.shape, c.expression, c.pose[:, :6]))
    with pytest.raises(OmnibenchError, match="resolution"):
        OracleGenerator(head=small_head, resolution=0)
    with pytest.raises(OmnibenchError):
        OracleGenerator(head="/nonexistent/flame/generic_model.pkl")


def test_truncation_zero_gives_the_mean_look(oracle, small_head):
    c = _controls(small_head, 2).index([0, 0])
    z = sample_latents(2, 5, oracle.z_dim)
    out = oracle.synthesize(z, c, truncation_psi=0.0)
    assert torch.equal(out.image[0], out.image[1])
    assert np.isfinite(out.depth.numpy()).any()


def test_regions_of_the_synthetic_head_come_from_its_masks(small_head):
    from omnibench.render import HeadRegions

    r = HeadRegions.from_model(small_head)
    assert r.from_masks and r.has_eyeballs
    # flame.md 5.4: eyeballs of radius 12.5 mm centred at (+-0.031, 0.028, 0.039); mouth slit at y = -0.035
    assert np.allclose(r.eye_centres, [[0.031, 0.028, 0.039], [-0.031, 0.028, 0.039]], atol=1e-3)
    assert r.eye_radius == pytest.approx(0.0125, abs=5e-4)
    assert r.mouth_centre[1] == pytest.approx(-0.035, abs=4e-3) and abs(r.mouth_centre[0]) < 1e-3
    assert r.scale == pytest.approx(1.0, abs=0.02)
    assert set(r.weights) >= {"lips", "eye_region", "scalp", "neck"}


def test_at_resolution_renders_natively_and_leaves_the_original_alone():
    import torch

    from omnibench.cameras import orbit_camera
    from omnibench.generators.base import Controls
    from omnibench.generators.oracle import OracleGenerator

    gen = OracleGenerator(head="synthetic:tiny", resolution=16, supersample=1)
    big = gen.at_resolution(32)
    assert gen.at_resolution(16) is gen and gen.resolution == 16 and big.resolution == 32
    c = Controls(orbit_camera(torch.zeros(1), torch.zeros(1)), torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 15))
    z = torch.zeros(1, gen.z_dim)
    assert big.synthesize(z, c).image.shape[-2:] == (32, 32)
    assert gen.synthesize(z, c).image.shape[-2:] == (16, 16)


def test_detail_px_keeps_only_the_detail_of_a_smaller_render(small_head):
    """An independent computation: the plain render, area-averaged to N px and bilinearly enlarged back."""
    import torch.nn.functional as F

    c = _controls(small_head, 2)
    z = sample_latents(2, 3, 64)
    full = OracleGenerator(head=small_head, resolution=32).synthesize(z, c)
    low = OracleGenerator(head=small_head, resolution=32, detail_px=8).synthesize(z, c)
    want = F.interpolate(F.interpolate(full.image, size=(8, 8), mode="area"), size=(32, 32), mode="bilinear",
                         align_corners=False)
    assert torch.allclose(low.image, want.clamp(0, 1), atol=1e-6)
    assert not torch.allclose(low.image, full.image, atol=1e-3)  # detail was removed
    assert torch.equal(low.depth, full.depth) and torch.equal(low.mask, full.mask)
    same = OracleGenerator(head=small_head, resolution=32, detail_px=32).synthesize(z, c)
    assert torch.equal(same.image, full.image)  # N >= the output size: nothing to remove
    assert OracleGenerator(head=small_head, detail_px=8).describe()["detail_px"] == 8
    assert "detail_px" not in OracleGenerator(head=small_head).describe()


def test_detail_px_option_is_parsed_and_checked():
    from omnibench.generators.resolve import resolve_generator

    gen, info = resolve_generator("oracle-noexpr", options={"detail_px": "16"})
    assert isinstance(gen, OracleNoExprGenerator) and gen.detail_px == 16 and info["options"] == {"detail_px": "16"}
    with pytest.raises(OmnibenchError, match="integer"):
        resolve_generator("oracle", options={"detail_px": "half"})
    with pytest.raises(OmnibenchError, match="detail_px"):
        OracleGenerator(head="synthetic:tiny", detail_px=1)
