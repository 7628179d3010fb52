"""The ``eg3d`` generator on a stand-in EG3D-style checkout built at test time (eg3d_standin/): recognition
without execution, both load modes, cameras and depth, determinism, declared controls, the module guard."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
import torch

from omnibench.cameras import EG3D_FOCAL, FRAMINGS
from omnibench.errors import CheckpointError, MissingAssetError
from omnibench.evaluation import evaluate
from omnibench.generators.base import Controls
from omnibench.generators.eg3d import checkout as co
from omnibench.generators.eg3d.generator import EG3DGenerator, sample_seed
from omnibench.generators.eg3d.geometry import METRES_PER_UNIT, place_on_orbit, ray_depth_to_metres
from omnibench.generators.eg3d.scan import cached_scan, scan_pickle
from omnibench.generators.resolve import resolve_generator
from omnibench.protocol import PROTOCOLS, SetSize, get_protocol
from tests.omnibench.generators.eg3d_checkouts import forget_checkouts

# the quick protocol's v2 (FFHQ-framed) cameras at the stand-in's 32 px, with few samples
EG3D_TINY = dataclasses.replace(get_protocol("quick@2"), name="eg3d-tiny", resolution=32, main=SetSize(6),
                                views=SetSize(2, 3), expr=SetSize(2, 2), real_n=6)
METRICS = ["tests.omnibench.fakes:MeanPixel", "tests.omnibench.fakes:ExprSpread"]
REAL_REPO = os.environ.get(co.ENV_REPO)  # a real EG3D checkout named by the user: the opt-in test below


pytestmark = pytest.mark.usefixtures("one_checkout_per_test")


def _load(path, **options):
    return resolve_generator(str(path), None, "cpu", {k: str(v) for k, v in options.items()})


def _controls(yaw, pitch=None):
    yaw = torch.as_tensor(yaw, dtype=torch.float32)
    pitch = torch.zeros_like(yaw) if pitch is None else torch.as_tensor(pitch, dtype=torch.float32)
    n = len(yaw)
    return Controls(FRAMINGS["ffhq"].orbit(yaw, pitch), torch.zeros(n, 100), torch.zeros(n, 50), torch.zeros(n, 15))


# ------------------------------------------------------------------------------------------- recognition
def test_recognised_without_executing_stored_code(eg3d_files, tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setenv("STANDIN_SIDE_EFFECT", str(marker))
    scan, _ = scan_pickle(eg3d_files["side_pkl"])
    assert not marker.exists()
    assert scan.family == "eg3d" and scan.keys == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    net = scan.network()
    assert net.class_name == "TriPlaneGenerator" and net.init_kwargs["c_dim"] == 25
    assert net.rendering_kwargs["avg_camera_radius"] == 2.7 and net.attrs["neural_rendering_resolution"] == 16
    assert {"TriPlaneGenerator", "MappingNetwork", "SuperresolutionToy"} <= set(net.sources)
    assert "training.triplane.OSGDecoder" in scan.globals
    assert "training.volumetric_rendering.renderer" in scan.imports
    assert "_os.environ" in net.module_src  # the stored source does carry the side effect
    assert EG3DGenerator.accepts(eg3d_files["side_pkl"]) and not marker.exists()
    assert cached_scan(eg3d_files["pkl"]).family == "eg3d"
    assert scan_pickle(eg3d_files["next3d"])[0].family == "next3d"
    assert scan_pickle(eg3d_files["stylegan2"])[0].family == "other"
    assert not sys_modules_has_checkout()


def sys_modules_has_checkout() -> bool:
    import sys

    return any(n.split(".")[0] in co.TOP_LEVEL for n in sys.modules)


def test_default_mode_rebuilds_without_running_stored_code(eg3d_files, tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    monkeypatch.setenv("STANDIN_SIDE_EFFECT", str(marker))
    gen, info = _load(eg3d_files["side_pkl"], repo=eg3d_files["side_repo"])
    d = gen.describe()
    assert not marker.exists()
    assert d["load"] == "rebuild" and d["source_identical_to_pickle"] is False  # the checkout lacks the payload
    assert d["neural_rendering_resolution"] == 16  # copied from the pickle, not the constructor's 32
    assert d["buffers_added_after_construction"] == ["dataset_label_std"]  # as EG3D's training loop registers it
    assert torch.equal(gen.G.dataset_label_std, gen.G.dataset_label_std.new_tensor(
        scan_pickle(eg3d_files["side_pkl"], load_tensors=True)[1]["G_ema"].state["_buffers"]["dataset_label_std"]))
    assert info["generator"] == "eg3d" and info["controls"] == ["camera"] and info["options"]["repo"]
    rebuilt = gen.synthesize(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)), _controls([0.0, 0.3]))
    forget_checkouts()
    trusted, _ = _load(eg3d_files["side_pkl"], repo=eg3d_files["side_repo"], trust_code="true")
    assert marker.read_text() == "stored source executed\n"  # the test can fail: trusting does run it
    assert trusted.describe()["load"] == "trust_code"
    same = trusted.synthesize(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)), _controls([0.0, 0.3]))
    assert torch.equal(rebuilt.image, same.image) and torch.equal(rebuilt.depth, same.depth)


def test_outputs_map_to_omnibench_conventions(eg3d_files):
    gen, _ = _load(eg3d_files["pkl"], repo=eg3d_files["repo"])
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(3))
    c = _controls([0.2])
    out = gen.synthesize(z, c)
    assert out.image.shape == (1, 3, 32, 32) and out.depth.shape == (1, 32, 32) and out.mask is None
    cam = place_on_orbit(c.camera, gen.pivot, gen.radius, gen.focal)
    torch.manual_seed(sample_seed(z[0], c, 1.0))
    raw = gen.G.synthesis(gen.G.mapping(z, gen_cond(gen)), cam, noise_mode="const")
    assert torch.equal(out.image, ((raw["image"] + 1) / 2).clamp(0, 1))
    depth = ray_depth_to_metres(raw["image_depth"], cam, c.camera)
    assert torch.equal(out.depth[:, ::2, ::2], depth)  # 16 -> 32 px, nearest
    assert 0.8 < float(out.depth.min()) and float(out.depth.max()) < 1.3  # metres from an FFHQ-framed camera


def gen_cond(gen):
    from omnibench.generators.eg3d.geometry import frontal_camera

    return frontal_camera(1, gen.pivot, gen.radius, gen.focal)


# ------------------------------------------------------------------------------------------- cameras, depth
def test_frontal_camera_lands_on_the_model_orbit():
    frontal = FRAMINGS["ffhq"].orbit(torch.zeros(1), torch.zeros(1))
    cam = place_on_orbit(frontal, torch.tensor([0.0, 0.0, 0.2]), 2.7)
    expected = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])  # EG3D's frontal pose
    assert torch.allclose(cam[0, :16].view(4, 4), expected, atol=1e-6)
    assert torch.allclose(cam[0, 16:], torch.tensor([EG3D_FOCAL, 0, 0.5, 0, EG3D_FOCAL, 0.5, 0, 0, 1]))
    v1 = FRAMINGS["v1"].orbit(torch.zeros(1), torch.zeros(1))  # another framing: same model camera
    assert torch.allclose(place_on_orbit(v1, torch.tensor([0.0, 0.0, 0.2]), 2.7), cam, atol=1e-6)


def test_conditioning_camera_is_eg3d_scripts_frontal_camera():
    """EG3D's gen_samples.py conditions on LookAtPoseSampler.sample(pi/2, pi/2, pivot, radius): the centre on the
    radius sphere about the world origin, (0, 0, 2.7), aimed at the pivot (checked against the real camera_utils
    in test_real_checkout_random_weights)."""
    from omnibench.generators.eg3d.geometry import frontal_camera

    cam = frontal_camera(2, torch.tensor([0.0, 0.0, 0.2]), 2.7)
    expected = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]])
    assert torch.allclose(cam[:, :16].view(-1, 4, 4), expected.expand(2, 4, 4), atol=1e-6)
    assert torch.allclose(cam[0, 16:], torch.tensor([EG3D_FOCAL, 0, 0.5, 0, EG3D_FOCAL, 0.5, 0, 0, 1]))
    pivot = torch.tensor([0.0, 0.05, 0.2])
    pose = frontal_camera(1, pivot, 2.7)[0, :16].view(4, 4)
    assert torch.allclose(pose[:3, 3], torch.tensor([0.0, 0.0, 2.7]))
    forward = pivot - pose[:3, 3]
    assert torch.allclose(pose[:3, 2], forward / forward.norm(), atol=1e-6)


def test_direction_kept_and_centre_on_the_origin_sphere_through_the_pivot():
    """EG3D's orbit (LookAtPoseSampler, fix_pose_orig): centres at ``radius`` from the world origin; the view
    direction kept and passing through the pivot."""
    c = FRAMINGS["v1"].orbit(torch.tensor([0.4, -0.3]), torch.tensor([0.1, -0.2]))
    pivot = torch.tensor([0.0, 0.05, 0.2])
    cam = place_on_orbit(c, pivot, 2.7, focal=4.5)
    pose, src = cam[:, :16].view(-1, 4, 4), c[:, :16].view(-1, 4, 4)
    assert torch.allclose(pose[:, :3, :3], src[:, :3, :3])
    assert torch.allclose(pose[:, :3, 3].norm(dim=1), torch.full((2,), 2.7))
    to_pivot = pivot - pose[:, :3, 3]
    assert torch.allclose(to_pivot / to_pivot.norm(dim=1, keepdim=True), pose[:, :3, 2], atol=1e-6)  # looks at it
    assert cam[0, 16] == pytest.approx(4.5)


def test_metres_per_unit_is_the_declared_ffhq_constant():
    assert METRES_PER_UNIT == pytest.approx(0.385)
    assert 0.1 / 0.27 <= METRES_PER_UNIT <= 0.400  # between the two readings of the FFHQ pipeline
    assert FRAMINGS["ffhq"].radius == pytest.approx(2.7 * METRES_PER_UNIT, abs=1e-4)  # protocol v2 = EG3D orbit


def test_ray_depth_becomes_axial_metres():
    cam = FRAMINGS["ffhq"].orbit(torch.zeros(1), torch.zeros(1))
    model = place_on_orbit(cam, torch.tensor([0.0, 0.0, 0.2]), 2.7)
    t = torch.full((1, 1, 2, 2), 2.5)
    z = ray_depth_to_metres(t, model, cam)
    # pixel centres (0.25, 0.75): the ray's cosine to the axis is 1 / sqrt(1 + 2 (0.25 / f)^2)
    cos = 1 / (1 + 2 * (0.25 / EG3D_FOCAL) ** 2) ** 0.5
    offset = float((model[0, 11] * METRES_PER_UNIT - cam[0, 11]) * -1)  # both look along -z
    assert torch.allclose(z, torch.full((1, 2, 2), 2.5 * cos * METRES_PER_UNIT + offset), atol=1e-6)
    # the v2 framing's frontal camera sits 2.7 units from the pivot, EG3D's 2.7 units from the world origin: it is
    # 0.2 units (the pivot's z) further back than the model camera (docs/real-checkpoints.md, "Verified against")
    assert offset == pytest.approx(0.2 * METRES_PER_UNIT, abs=1e-4)
    far = FRAMINGS["v1"].orbit(torch.zeros(1), torch.zeros(1))  # 1.6 m away: 0.56 m further along the axis
    assert torch.allclose(ray_depth_to_metres(t, model, far) - z, torch.tensor(1.6 - 2.9 * METRES_PER_UNIT),
                          atol=2e-3)


# ------------------------------------------------------------------------------------------- determinism
def test_each_image_depends_on_its_own_inputs_only(eg3d_files):
    gen, _ = _load(eg3d_files["pkl"], repo=eg3d_files["repo"])
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    c = _controls([0.0, 0.3, -0.3])
    together = gen.synthesize(z, c)
    alone = gen.synthesize(z[1:2], c.index(slice(1, 2)))
    assert torch.equal(together.image[1:2], alone.image) and torch.equal(together.depth[1:2], alone.depth)
    state = torch.get_rng_state()
    gen.synthesize(z[:1], c.index(slice(0, 1)))
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is untouched
    # the problem this solves is real: the model's own batch-2 render of row 0 differs from its batch-1 render
    cam = place_on_orbit(c.camera, gen.pivot, gen.radius, gen.focal)
    torch.manual_seed(0)
    two = gen.G(z[:2], cam[:2], noise_mode="const")["image"]
    torch.manual_seed(0)
    one = gen.G(z[:1], cam[:1], noise_mode="const")["image"]
    assert not torch.equal(two[:1], one)


def test_batch_size_independent_numbers_and_declared_controls(eg3d_files, fresh_cache, monkeypatch, tmp_path):
    monkeypatch.setitem(PROTOCOLS, "eg3d-tiny", EG3D_TINY)
    options = {"repo": str(eg3d_files["repo"])}
    fresh_cache()
    a = evaluate(str(eg3d_files["pkl"]), protocol="eg3d-tiny", metrics=METRICS, batch_size=1, progress=False,
                 options=options, out=tmp_path / "a.json")
    fresh_cache()
    b = evaluate(str(eg3d_files["pkl"]), protocol="eg3d-tiny", metrics=METRICS, batch_size=4, progress=False,
                 options=options)
    assert a["metrics"]["mean-pixel"]["value"] == b["metrics"]["mean-pixel"]["value"]
    assert a["sampling"] == b["sampling"]
    na = a["metrics"]["expr-spread"]
    assert na["value"] is None and "ignores the expression control" in na["not_applicable"]
    assert a["checkpoint"]["generator"] == "eg3d" and a["checkpoint"]["controls"] == ["camera"]
    assert a["checkpoint"]["description"]["load"] == "rebuild" and len(a["checkpoint"]["sha256"]) == 64
    assert (tmp_path / "a.json").is_file()


# ------------------------------------------------------------------------------------------- options, guard
def test_custom_ops_off_selects_the_reference_path(eg3d_files):
    gen, _ = _load(eg3d_files["pkl"], repo=eg3d_files["repo"], custom_ops="false")
    import sys

    assert sys.modules["torch_utils.ops.bias_act"]._init() is False
    d = gen.describe()
    assert d["custom_ops"] is False and len(d["custom_ops_patched"]) == 3
    forget_checkouts()
    _load(eg3d_files["pkl"], repo=eg3d_files["repo"])
    with pytest.raises(RuntimeError, match="nvcc"):  # untouched otherwise: the stand-in cannot compile
        sys.modules["torch_utils.ops.bias_act"]._init()


def test_conditioning_option(eg3d_files):
    z = torch.randn(1, 16, generator=torch.Generator().manual_seed(5))
    c = _controls([0.5])
    frontal, _ = _load(eg3d_files["pkl"], repo=eg3d_files["repo"])
    render, _ = _load(eg3d_files["pkl"], repo=eg3d_files["repo"], conditioning="render")
    assert render.describe()["conditioning"] == "render"
    assert not torch.equal(frontal.synthesize(z, c).image, render.synthesize(z, c).image)
    front = _controls([0.0])
    assert torch.equal(frontal.synthesize(z, front).image, render.synthesize(z, front).image)


def test_a_second_checkout_is_refused(eg3d_files, tmp_path):
    _load(eg3d_files["pkl"], repo=eg3d_files["repo"])
    other = shutil.copytree(eg3d_files["repo"], tmp_path / "other-clone")
    with pytest.raises(CheckpointError, match="another EG3D-style checkout .* is already loaded"):
        _load(eg3d_files["pkl"], repo=other)
    _load(eg3d_files["pkl"], repo=eg3d_files["repo"])  # the same checkout again is fine


def test_repo_from_the_environment(eg3d_files, monkeypatch):
    monkeypatch.setenv(co.ENV_REPO, str(eg3d_files["repo"]))
    gen, _ = _load(eg3d_files["pkl"])
    assert gen.describe()["checkout"]["path"] == str(eg3d_files["repo"].resolve())


def test_checkout_module_check_names_what_is_missing(eg3d_files, tmp_path):
    scan = cached_scan(eg3d_files["pkl"])
    broken = shutil.copytree(eg3d_files["repo"], tmp_path / "broken")
    (broken / "training" / "volumetric_rendering" / "renderer.py").unlink()
    with pytest.raises(MissingAssetError, match="lacks training/volumetric_rendering/renderer.py"):
        co.Checkout.locate(broken, "eg3d").check_modules(scan.imports, "eg3d")
    with pytest.raises(MissingAssetError, match="not_installed_pkg is not installed"):
        co.Checkout.locate(broken, "eg3d").check_modules({"not_installed_pkg.sub"}, "eg3d")
    nested = tmp_path / "repo-root"
    shutil.copytree(eg3d_files["repo"], nested / "eg3d")
    assert co.Checkout.locate(nested, "eg3d").root == (nested / "eg3d").resolve()  # NVlabs/eg3d's layout


@pytest.mark.skipif(not REAL_REPO, reason=f"set {co.ENV_REPO} to a real EG3D checkout to run the adapter on a "
                    "random-weight generator built from it")
def test_real_checkout_random_weights(tmp_path):
    """NVlabs/eg3d itself (see docs/real-checkpoints.md, "Verified against"): a snapshot as its training loop writes
    one is recognised without executing it, rebuilt from the checkout without running its stored sources (the
    dataset_label_std buffer the loop adds included), uses EG3D's own cameras (camera_utils), returns its output keys,
    and gives the same images as the checkout's own legacy.load_network_pkl (trust_code=true)."""
    import importlib
    import math
    import sys

    from omnibench.generators.eg3d.generator import Next3DGenerator, OmniAvatarPklGenerator
    from tests.omnibench.generators.eg3d_checkouts import build_real_pickle

    def executed_sources():  # modules torch_utils.persistence made by executing a pickle's stored source
        return [m for m in sys.modules if m.startswith("_imported_module_")]

    repo = REAL_REPO
    pkl = build_real_pickle(repo, tmp_path / "real.pkl")
    scan = cached_scan(pkl)
    assert scan.family == "eg3d" and scan.keys == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert scan.network().class_name == "TriPlaneGenerator"
    assert EG3DGenerator.accepts(pkl) and not Next3DGenerator.accepts(pkl) and not OmniAvatarPklGenerator.accepts(pkl)
    assert "dnnlib" not in sys.modules and not executed_sources()  # recognition imported and ran nothing

    gen, info = _load(pkl, repo=repo, custom_ops="false")
    d = info["description"]
    assert d["load"] == "rebuild" and d["source_identical_to_pickle"] is True
    assert d["buffers_added_after_construction"] == ["dataset_label_std"] and not executed_sources()
    assert (gen.resolution, gen.radius, gen.pivot.tolist()) == (128, 2.7, pytest.approx([0.0, 0.0, 0.2]))

    # the conditioning camera is the one of EG3D's gen_samples.py, from its own camera_utils
    lookat = importlib.import_module("camera_utils").LookAtPoseSampler
    ref = lookat.sample(math.pi / 2, math.pi / 2, gen.pivot, radius=gen.radius)
    assert torch.allclose(gen_cond(gen)[:, :16].view(1, 4, 4), ref, atol=1e-5)

    # the model cameras are LookAtPoseSampler's poses (centre on the radius sphere about the world origin, aimed at
    # the pivot) for every view aimed at the pivot, wherever the protocol camera's centre was on that line
    for h, v in [(0.3, 0.0), (-0.5, 0.25)]:
        ref = lookat.sample(math.pi / 2 + h, math.pi / 2 + v, gen.pivot, radius=gen.radius)
        moved = ref.clone()
        moved[:, :3, 3] -= 0.4 * ref[:, :3, 2]
        cam = place_on_orbit(torch.cat([moved.view(1, 16), torch.zeros(1, 9)], 1), gen.pivot, gen.radius)
        assert torch.allclose(cam[:, :16].view(1, 4, 4), ref, atol=1e-5)

    z = torch.randn(2, gen.z_dim)
    c = _controls([0.1, -0.3], [0.0, 0.2])
    out = gen.synthesize(z, c)
    assert out.image.shape == (2, 3, 128, 128) and out.depth.shape == (2, 128, 128) and out.mask is None
    assert torch.isfinite(out.depth).all() and 0.5 < float(out.depth.min()) and float(out.depth.max()) < 1.6
    cams = place_on_orbit(c.camera, gen.pivot, gen.radius, gen.focal)
    with torch.no_grad():
        raw = gen.render(z[:1], cams[:1], gen_cond(gen), c.index(slice(0, 1)), 1.0)
    assert {"image", "image_raw", "image_depth"} <= set(raw)
    assert raw["image_raw"].shape[-1] == raw["image_depth"].shape[-1] == 64

    forget_checkouts()  # the checkout's own loader in a fresh module state: it executes the stored sources
    trusted, info = _load(pkl, repo=repo, custom_ops="false", trust_code="true")
    assert info["description"]["load"] == "trust_code" and executed_sources()
    again = trusted.synthesize(z, c)
    assert torch.allclose(again.image, out.image, atol=1e-5) and torch.allclose(again.depth, out.depth, atol=1e-5)
