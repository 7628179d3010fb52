"""``next3d`` (FLAME mesh conditioning built by omnibench's head model) and ``omniavatar-pkl`` (206 FLAME values,
deterministic sampling, no pose perturbation) on the stand-in checkouts."""

from __future__ import annotations

import pytest
import torch

from omnibench.evaluation import evaluate
from omnibench.generators.base import Controls
from omnibench.generators.resolve import resolve_generator
from omnibench.protocol import PROTOCOLS
from tests.omnibench.generators.test_eg3d import EG3D_TINY, METRICS, _controls

pytestmark = pytest.mark.usefixtures("one_checkout_per_test")
HEAD = "synthetic:flame-count"  # the synthetic head with FLAME 2020's vertex count


def _next3d(files, **extra):
    return resolve_generator(str(files["next3d"]), None, "cpu",
                             {"repo": str(files["next3d_repo"]), "head": HEAD, **extra})


def test_next3d_is_detected_and_declares_its_controls(eg3d_files):
    gen, info = _next3d(eg3d_files)
    assert info["generator"] == "next3d"
    assert info["controls"] == ["camera", "shape", "expression", "jaw", "eyes"]
    d = gen.describe()
    assert d["family"] == "next3d" and d["head"]["spec"] == HEAD and d["load"] == "rebuild"
    assert d["class_module"] == "training_avatar_texture/triplane_next3d.py"
    assert d["plain_tensor_attributes"] == ["uv_face_mask"]


def test_next3d_mesh_packing(eg3d_files):
    gen, _ = _next3d(eg3d_files)
    c = _controls([0.0, 0.2])
    c.expression[1, :3] = torch.tensor([1.0, -0.5, 0.3])
    c.pose[1, 6] = 0.2  # jaw
    v = gen.mesh(c)
    assert v.shape == (2, 5023 + 68, 3)
    out = gen.head(shape=c.shape[:, :100], expression=c.expression[:, :50], pose=c.pose)
    assert torch.allclose(v[:, :5023], out.vertices) and torch.allclose(v[:, 5023:], out.landmarks)
    turned = Controls(c.camera, c.shape, c.expression, c.pose.clone())
    turned.pose[:, 0:6] = torch.tensor([0.3, 0.1, 0.0, 0.2, 0.0, 0.1])  # global and neck: zeroed for Next3D
    assert torch.equal(gen.mesh(turned), v)
    assert v.abs().max() < 0.5  # metres
    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    a = gen.synthesize(z, c)
    open_jaw = Controls(c.camera, c.shape, c.expression, c.pose.clone())
    open_jaw.pose[:, 6] = 0.35
    assert not torch.equal(a.image, gen.synthesize(z, open_jaw).image)  # the mesh reaches the image
    assert torch.equal(a.image[1:], gen.synthesize(z[1:], c.index(slice(1, 2))).image)


def test_next3d_rebuilt_equals_trusted(eg3d_files):
    """The stand-in's constructor draws a random plain tensor (uv_face_mask): only copying the stored one makes
    the rebuilt generator render what the trusted unpickling renders."""
    from tests.omnibench.generators.eg3d_checkouts import forget_checkouts

    z = torch.randn(2, 16, generator=torch.Generator().manual_seed(4))
    c = _controls([0.0, -0.2])
    c.expression[:, :4] = 0.8
    rebuilt = _next3d(eg3d_files)[0].synthesize(z, c)
    forget_checkouts()
    trusted = _next3d(eg3d_files, trust_code="true")[0].synthesize(z, c)
    assert torch.equal(rebuilt.image, trusted.image) and torch.equal(rebuilt.depth, trusted.depth)


def test_next3d_expression_metric_applies(eg3d_files, fresh_cache, monkeypatch):
    monkeypatch.setitem(PROTOCOLS, "eg3d-tiny", EG3D_TINY)
    fresh_cache()
    r = evaluate(str(eg3d_files["next3d"]), protocol="eg3d-tiny", metrics=METRICS, progress=False,
                 options={"repo": str(eg3d_files["next3d_repo"]), "head": HEAD})
    assert r["checkpoint"]["generator"] == "next3d"
    assert r["metrics"]["expr-spread"]["value"] is not None and "not_applicable" not in r["metrics"]["expr-spread"]


def test_omniavatar_release_switches_and_layout(eg3d_files):
    gen, info = resolve_generator(str(eg3d_files["omni"]), None, "cpu", {"repo": str(eg3d_files["omni_repo"])})
    assert info["generator"] == "omniavatar-pkl"
    assert info["controls"] == ["camera", "shape", "expression", "neck", "jaw"]
    assert gen.G.rendering_kwargs["det_sampling"] is True and gen.G.decoder.pose_perturb_magtinude == 0
    assert gen.focal == pytest.approx(1015 / 224) and gen.describe()["det_sampling"] is True
    c = _controls([0.0])
    c.shape[0, :100] = torch.arange(100) / 100
    c.expression[0, :50] = -torch.arange(50) / 50  # 50 given, 100 packed: the rest are zero
    c.pose[0, 3:9] = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    f = gen.flame_values(c)
    assert f.shape == (1, 206)
    assert torch.equal(f[0, :100], c.shape[0, :100]) and torch.equal(f[0, 100:150], c.expression[0, :50])
    assert torch.equal(f[0, 150:200], torch.zeros(50)) and torch.equal(f[0, 200:206], c.pose[0, 3:9])
    # with det_sampling and no perturbation the model itself is deterministic
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(2))
    cam = torch.cat([c.camera, f], 1)
    one, two = gen.G(z, cam, noise_mode="const")["image"], gen.G(z, cam, noise_mode="const")["image"]
    assert torch.equal(one, two)
    smile = Controls(c.camera, c.shape, c.expression * 3, c.pose)
    out = gen.synthesize(z, c)
    assert not torch.equal(out.image, gen.synthesize(z, smile).image)
    # the release returns its accumulated opacity: the adapter's mask, upsampled to the image
    from omnibench.generators.eg3d.geometry import place_on_orbit

    model_cam = torch.cat([place_on_orbit(c.camera, gen.pivot, gen.radius, gen.focal), f], 1)
    raw = gen.G.synthesis(gen.G.mapping(z, model_cam), model_cam, noise_mode="const")["image_mask"]
    assert out.mask.shape == (1, 32, 32) and 0 <= float(out.mask.min()) and float(out.mask.max()) <= 1
    expected = torch.nn.functional.interpolate(raw, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(out.mask, expected.clamp(0, 1), atol=1e-5)  # frontal conditioning = this camera
