"""``deca``: the stand-in deca_model.tar (exact E_flame key layout, random values) loads strictly, bad files are
refused with one line (exit 2 through the CLI), a forced known code yields the known FlameEstimate, the crop
geometry and the orthographic -> EG3D camera conversion are checked on their own, both ways, and the full
path runs on synthetic renders independently of the batch."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from metrics.control_math import axis_angle_to_matrix
from metrics.estimators.deca import DECA_CODE, DecaEstimator, ResnetCoder
from metrics.estimators.ortho import (
    DECA_CROP,
    SMIRK_CROP,
    camera_to_ortho,
    crop_boxes,
    ortho_project,
    ortho_to_camera,
    warp_crops,
)
from omnibench.cameras import orbit_camera, project
from omnibench.errors import CheckpointError, MissingAssetError
from tests.metrics.estimators.stand_ins import DECA_E_FLAME_ENTRIES, resnet_coder_state, write_deca_tar


@pytest.fixture(scope="module")
def head(synthetic_heads):
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


@pytest.fixture(scope="module")
def deca_tar(tmp_path_factory):
    return write_deca_tar(tmp_path_factory.mktemp("deca") / "deca_model.tar")


def test_rebuilt_encoder_has_exactly_decas_key_set():
    ours = ResnetCoder(236).state_dict()
    theirs = resnet_coder_state(236, 0)
    assert len(theirs) == DECA_E_FLAME_ENTRIES == len(ours)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    assert sum(k.endswith("num_batches_tracked") for k in ours) == 53


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("layers.2.bias"), r"1 missing \(first: layers\.2\.bias\)"),
    (lambda s: s.__setitem__("layers.4.weight", torch.zeros(1)), r"1 unexpected \(first: layers\.4\.weight\)"),
    (lambda s: s.__setitem__("layers.2.weight", torch.zeros(235, 1024)), r"1 mis-shaped"),
])
def test_strict_load_refuses_wrong_keys(tmp_path, head, damage, message):
    state = resnet_coder_state(236, 0)
    damage(state)
    tar = write_deca_tar(tmp_path / "deca_model.tar", state)
    with pytest.raises(CheckpointError, match=message) as err:
        DecaEstimator(head, weights=str(tar))
    assert "\n" not in str(err.value)


def test_bad_files_are_one_line_errors(tmp_path, head):
    with pytest.raises(MissingAssetError, match="pass --option estimator.weights="):
        DecaEstimator(head, weights=str(tmp_path / "nope.tar"))
    (tmp_path / "garbage.tar").write_bytes(b"not a torch file" * 10)
    with pytest.raises(CheckpointError, match="could not be read"):
        DecaEstimator(head, weights=str(tmp_path / "garbage.tar"))
    torch.save({"E_detail": {}}, tmp_path / "other.tar")
    with pytest.raises(CheckpointError, match="no 'E_flame' entry"):
        DecaEstimator(head, weights=str(tmp_path / "other.tar"))


def test_cli_exit_code_2_on_wrong_keys(tmp_path):
    state = resnet_coder_state(236, 0)
    state.pop("encoder.conv1.weight")
    tar = write_deca_tar(tmp_path / "deca_model.tar", state)
    p = subprocess.run([sys.executable, "-m", "omnibench", "estimators", "eval", "--estimator", "deca",
                        "--weights", str(tar), "--n", "2"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "1 missing (first: encoder.conv1.weight)" in lines[0]


def test_crop_boxes_and_warp_known_answer():
    pts = torch.tensor([[[50.0, 60.0], [150.0, 140.0], [100.0, 100.0]]])  # pixel-centre coordinates
    box = crop_boxes(pts, DECA_CROP)[0]  # index box (49.5..149.5, 59.5..139.5): w 100, h 80
    assert box.tolist() == [99.5 - 61.5, 99.5 - 61.5, 123.0]  # side floor(90 * 1.1 * 1.25) = 123
    # SMIRK's crop_face: int(90 * 1.4) = int(125.99999999999999) = 125, in float64 as numpy computes it
    assert crop_boxes(pts, SMIRK_CROP)[0, 2].item() == 125.0
    h = w = 256
    ramp = torch.arange(w, dtype=torch.float32)[None, None, None, :].expand(1, 3, h, w) / 1000  # value = x index / 1000
    crop = warp_crops(ramp, box[None])
    want = (box[0] + torch.arange(224) * box[2] / 223) / 1000
    assert torch.allclose(crop[0, 0, 100].double(), want, atol=1e-6)


def _random_cameras(b: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    cam = torch.stack([torch.rand(b, generator=g) * 4 + 6, torch.randn(b, generator=g) * 0.01,
                       torch.randn(b, generator=g) * 0.01], 1)
    aa = torch.randn(b, 3, generator=g) * 0.3
    boxes = torch.stack([torch.rand(b, generator=g) * 20 + 30, torch.rand(b, generator=g) * 20 + 30,
                         torch.rand(b, generator=g) * 40 + 100], 1).double()
    root = torch.randn(b, 3, generator=g) * 0.01
    return cam, aa, boxes, root


def test_orthographic_to_eg3d_camera_projects_known_points_alike():
    """Points of the posed head on the depth plane land on the same pixels under DECA's orthographic model and
    the converted EG3D camera; points 5 cm off it move by the weak-perspective error only."""
    b, width, z_ref = 6, 256, 0.08
    cam, aa, boxes, root = _random_cameras(b, 0)
    eg3d = ortho_to_camera(cam, aa, boxes, root, torch.full((b,), z_ref), 4.2647, width)
    g = torch.Generator().manual_seed(1)
    posed = torch.randn(b, 40, 3, generator=g, dtype=torch.float64) * 0.05
    posed[..., 2] = z_ref
    r = axis_angle_to_matrix(aa.double())
    unposed = torch.einsum("bji,bnj->bni", r, posed - root.double()[:, None]) + root.double()[:, None]
    a = ortho_project(unposed, cam, aa, root, boxes)
    px, _ = project(unposed, eg3d.double(), width)
    assert (a - px).abs().max() < 1e-3
    posed[..., 2] = z_ref + 0.05
    unposed = torch.einsum("bji,bnj->bni", r, posed - root.double()[:, None]) + root.double()[:, None]
    a, (px, depth) = ortho_project(unposed, cam, aa, root, boxes), project(unposed, eg3d.double(), width)
    centre = torch.tensor([width / 2, width / 2], dtype=torch.float64)
    bound = (a - centre).norm(dim=-1) * 0.05 / (depth - 0.0) + 1  # |x| dz / z, +1 px for the principal offset
    assert ((a - px).norm(dim=-1) <= bound * 1.5).all()


def test_eg3d_camera_to_orthographic_and_back():
    """EG3D orbit cameras -> (s, tx, ty, global pose) -> the same cameras, and both project alike."""
    b, width, z_ref = 5, 128, 0.09
    camera = orbit_camera(torch.linspace(-0.6, 0.6, b), torch.linspace(0.3, -0.2, b), 1.04, 4.2647, (0.0, 0.0, 0.077))
    boxes = torch.tensor([[20.0, 18.0, 90.0]]).double().expand(b, 3)
    root = torch.tensor([[0.0, -0.02, -0.01]]).expand(b, 3)
    cam, aa = camera_to_ortho(camera, boxes, root, torch.full((b,), z_ref), width)
    assert (cam[:, 0] > 0).all()
    back = ortho_to_camera(cam, aa, boxes, root, torch.full((b,), z_ref), 4.2647, width)
    assert torch.allclose(back, camera, atol=1e-5)


def test_forced_code_yields_the_known_estimate(tmp_path, head):
    code = torch.zeros(236)
    code[0:100] = torch.linspace(-1, 1, 100)
    code[150:200] = torch.linspace(0.5, -0.5, 50)
    code[200:203] = torch.tensor([0.05, -0.3, 0.02])  # global: head turned to -x
    code[203:206] = torch.tensor([0.2, 0.0, 0.0])  # jaw open
    code[206:209] = torch.tensor([7.5, 0.004, -0.01])
    state = resnet_coder_state(236, 0)
    state["layers.2.weight"] = torch.zeros(236, 1024)
    state["layers.2.bias"] = code
    est = DecaEstimator(head, weights=str(write_deca_tar(tmp_path / "deca_model.tar", state)), framing="ffhq")
    width = 128
    pts = torch.tensor([[[40.0, 45.0], [90.0, 95.0], [64.0, 70.0]]]).expand(2, 3, 2)
    images = torch.rand(2, 3, width, width)
    out = est.estimate_from_landmarks(images, pts, torch.tensor([0.9, 0.8]), torch.tensor([True, False])).validate()
    assert out.detected.tolist() == [True, False] and out.confidence[0] == pytest.approx(0.9)
    assert torch.allclose(out.shape[0], code[0:100], atol=1e-5)
    assert torch.allclose(out.expression[0], code[150:200], atol=1e-5)
    want_pose = torch.zeros(15)
    want_pose[6:9] = code[203:206]
    assert torch.allclose(out.pose[0], want_pose, atol=1e-6)
    assert out.shape[1].abs().max() == 0 and out.pose[1].abs().max() == 0  # the undetected row: null estimate
    # the camera: the model's landmarks seen by it land where DECA's orthographic model puts them
    s, e = code[0:100][None], code[150:200][None]
    pose = torch.zeros(1, 15)
    pose[:, 6:9] = code[203:206]
    with torch.no_grad():
        unposed = head(shape=s, expression=e, pose=pose)
    box = crop_boxes(pts[:1], DECA_CROP)
    ortho = ortho_project(unposed.landmarks.double(), code[206:209][None], code[200:203][None], unposed.joints[:, 0], box)
    persp, _ = project(unposed.landmarks.double(), out.camera[:1].double(), width)
    assert (ortho - persp).norm(dim=-1).mean() < 0.5  # px: weak-perspective error of a face at ~1 m
    assert (ortho.mean(1) - persp.mean(1)).norm() < 0.05
    d = est.describe()
    assert d["sha256"] and d["crop"]["rule"] == "deca-kpt68" and d["camera"]["focal"] == pytest.approx(4.2647)


def test_full_path_on_synthetic_renders_is_batch_independent(deca_tar, head):
    from omnibench.generators.oracle import OracleGenerator

    gen = OracleGenerator(head="synthetic", resolution=128)
    n = 3
    cam = orbit_camera(torch.tensor([0.0, 0.3, -0.3]), torch.zeros(n), 1.04, 4.2647, (0.0, 0.0, 0.077))
    from omnibench.generators.base import Controls

    controls = Controls(shape=torch.zeros(n, 100), expression=torch.zeros(n, 50), pose=torch.zeros(n, 15), camera=cam)
    images = gen.synthesize(torch.zeros(n, gen.z_dim), controls).image_uint8()
    est = DecaEstimator(head, weights=str(deca_tar), detector="dlib", framing="ffhq")
    whole = est.estimate(images).validate()
    assert whole.detected.all() and whole.shape.shape == (n, 100) and whole.expression.shape == (n, 50)
    parts = [est.estimate(images[i : i + 1]) for i in range(n)]
    for f in ("shape", "expression", "pose", "camera"):
        assert torch.allclose(getattr(whole, f), torch.cat([getattr(p, f) for p in parts]), atol=1e-4), f
    assert est.describe()["detector"] == "dlib"
    # the metrics' wiring: --option estimator=deca --option estimator.weights=... --option estimator.detector=dlib
    from metrics.control import AED
    from omnibench.memory_context import InMemoryContext, sample_set

    ctx = InMemoryContext({"main": sample_set("main", images, controls)}, head=head, protocol="quick@2",
                          options={"estimator": "deca", "estimator.weights": str(deca_tar), "estimator.detector": "dlib"})
    r = AED().compute(ctx, "rmse")
    assert r.n == n and r.failures == 0 and r.backbones["estimator"]["name"] == "deca"
    assert set(DECA_CODE) == {"shape", "tex", "expression", "global", "jaw", "cam", "light"}
