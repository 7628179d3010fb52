"""FLAME forward pass: exactness, independent reference, rigidity, locality, landmarks, gradients, dtypes."""

from __future__ import annotations

import dataclasses

import igl
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from toyflame import build_toy_flame, reference_forward

from omnibench.errors import OmnibenchError
from omnibench.heads import (
    HeadModel,
    axis_angle_to_matrix,
    deca_pose_to_flame15,
    load_flame_data,
    load_head_model,
)


@pytest.fixture(scope="module")
def data(toy_dir):
    return load_flame_data(toy_dir)


@pytest.fixture(scope="module")
def m64(data):
    return HeadModel(data, dtype=torch.float64)


@pytest.fixture(scope="module")
def m32(data):
    return HeadModel(data, dtype=torch.float32)


def _random_params(batch, seed=0, n_shape=300, n_expr=100):
    rng = np.random.default_rng(seed)
    return dict(shape=rng.normal(size=(batch, n_shape)), expression=rng.normal(size=(batch, n_expr)),
                pose=rng.normal(size=(batch, 15)) * 0.35, translation=rng.normal(size=(batch, 3)) * 0.02)


def _reference(data, **params):
    model, _ = build_toy_flame(0)
    emb = dict(static=(data.static_lmk.face_idx, data.static_lmk.bary),
               dynamic=(data.dynamic_lmk.face_idx, data.dynamic_lmk.bary))
    return reference_forward(model, **params, **emb)


def test_zero_parameters_give_the_template_exactly(m32, m64, data):
    for m in (m32, m64):
        out = m()
        assert out.vertices.shape == (1, data.n_vertices, 3)
        assert torch.equal(out.vertices[0], m.template)
        out = m(shape=torch.zeros(3, 300), expression=torch.zeros(3, 100), pose=torch.zeros(3, 15),
                translation=torch.zeros(3, 3))
        assert torch.equal(out.vertices, m.template.expand(3, -1, -1))
    np.testing.assert_allclose(m64().joints[0].numpy(), data.J_regressor @ data.v_template, atol=1e-15)
    assert torch.equal(m64.template, torch.from_numpy(data.v_template))
    assert m64.faces.dtype == torch.int64 and m64.faces.shape == data.faces.shape


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-6)])
def test_matches_independent_numpy_reference(data, dtype, tol):
    params = _random_params(5, seed=1)
    ref = _reference(data, **params)
    out = HeadModel(data, dtype=dtype)(**params)
    for key in ("vertices", "joints", "landmarks"):
        err = np.abs(getattr(out, key).double().numpy() - ref[key]).max()
        assert err < tol, (key, err)
    # batch broadcasting: one identity, several poses; fewer coefficients than the model uses
    params = _random_params(4, seed=2, n_shape=20, n_expr=7)
    params["shape"] = params["shape"][:1]
    params["translation"] = params["translation"][0]
    out = HeadModel(data, dtype=dtype)(**params)
    ref = _reference(data, shape=np.repeat(params["shape"], 4, 0), expression=params["expression"],
                     pose=params["pose"], translation=np.repeat(params["translation"][None], 4, 0))
    assert out.vertices.shape[0] == 4
    assert np.abs(out.vertices.double().numpy() - ref["vertices"]).max() < tol
    assert np.abs(out.landmarks.double().numpy() - ref["landmarks"]).max() < tol


def test_float32_and_float64_agree(m32, m64):
    params = _random_params(6, seed=3)
    a, b = m32(**params), m64(**params)
    for key in ("vertices", "joints", "landmarks", "landmarks3d"):
        np.testing.assert_allclose(getattr(a, key).double().numpy(), getattr(b, key).numpy(), atol=2e-6)
    assert torch.equal(a.contour_rows, b.contour_rows)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_are_bit_identical_whatever_the_batch(data, dtype):
    model = HeadModel(data, dtype=dtype)
    params = {k: torch.from_numpy(v).to(dtype) for k, v in _random_params(21, seed=4).items()}
    params["eyelids"] = torch.rand(21, 2, generator=torch.Generator().manual_seed(0), dtype=dtype)
    full = model(**params)
    for sl in (slice(3, 4), slice(0, 3), slice(5, 13), slice(2, 19)):
        part = model(**{k: v[sl] for k, v in params.items()})
        for key in ("vertices", "joints", "landmarks", "landmarks3d", "transforms", "contour_rows"):
            assert torch.equal(getattr(part, key), getattr(full, key)[sl]), (key, sl)


def test_global_rotation_is_rigid_about_root_joint(m64, data):
    rot = np.array([0.3, -0.5, 0.2])
    out = m64(pose=torch.tensor(np.concatenate([rot, np.zeros(12)]))[None])
    j0 = (data.J_regressor @ data.v_template)[0]
    expect = (data.v_template - j0) @ Rotation.from_rotvec(rot).as_matrix().T + j0
    np.testing.assert_allclose(out.vertices[0].numpy(), expect, atol=1e-14)
    np.testing.assert_allclose(out.transforms[0, :, :3, :3].numpy(),
                               np.repeat(Rotation.from_rotvec(rot).as_matrix()[None], 5, 0), atol=1e-15)
    tr = torch.tensor([[0.01, -0.02, 0.03]], dtype=torch.float64)
    moved = m64(pose=torch.tensor(np.concatenate([rot, np.zeros(12)]))[None], translation=tr)
    torch.testing.assert_close(moved.vertices, out.vertices + tr[:, None], rtol=0, atol=1e-15)
    torch.testing.assert_close(moved.landmarks, out.landmarks + tr[:, None], rtol=0, atol=1e-15)
    torch.testing.assert_close(moved.joints, out.joints + tr[:, None], rtol=0, atol=1e-15)


def test_transforms_map_rest_joints_to_posed_joints(m64, data):
    params = _random_params(3, seed=5)
    out = m64(**params)
    rest = m64(shape=params["shape"], expression=params["expression"]).joints  # rest joints incl. blendshapes
    homog = torch.cat([rest, torch.ones(3, 5, 1, dtype=torch.float64)], -1)
    posed = (out.transforms @ homog[..., None])[..., :3, 0]
    torch.testing.assert_close(posed, out.joints, rtol=0, atol=1e-14)


def test_expression_and_jaw_move_the_mouth_not_the_scalp(m64, data):
    _, side = build_toy_flame(0)
    scalp = torch.from_numpy(data.masks["scalp"])
    lips = torch.from_numpy(data.masks["lips"])
    base = m64().vertices[0]
    rng = np.random.default_rng(6)
    jaw = torch.zeros(1, 15, dtype=torch.float64)
    jaw[0, 6] = 0.3
    for out in (m64(expression=torch.from_numpy(rng.normal(size=(1, 100)))), m64(pose=jaw)):
        moved = (out.vertices[0] - base).norm(dim=-1)
        assert moved[scalp].max() == 0
        assert moved[lips].mean() > 1e-3  # millimetres of motion in the mouth region
        not_mouth = torch.from_numpy(side["mouth_weight"] == 0)
        assert moved[not_mouth].max() == 0


def test_landmarks_lie_on_the_posed_surface(m64, data):
    params = _random_params(3, seed=7)
    params["pose"][:, 3:] *= 0.3  # moderate articulation; the toy mesh is coarse
    out = m64(**params)
    assert out.landmarks.shape == (3, 68, 3) and out.landmarks3d.shape == (3, 68, 3)
    for b in range(3):
        for pts in (out.landmarks[b].numpy(), out.landmarks3d[b].numpy()):
            sq, _, _ = igl.point_mesh_squared_distance(pts, out.vertices[b].numpy(), data.faces)
            assert np.sqrt(sq).max() < 1e-9


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_landmark_subset_gives_the_full_models_landmarks_joints_and_transforms(dtype, atol):
    full = load_head_model("synthetic", dtype=dtype)
    sub = full.landmark_subset()
    assert 0 < sub.n_vertices < full.n_vertices / 4
    params = {k: torch.as_tensor(v, dtype=dtype) for k, v in _random_params(5, seed=11).items()}
    params["pose"][:, 0:3] *= 2  # yaws across several dynamic-contour rows
    params["eyelids"] = torch.rand(5, 2, generator=torch.Generator().manual_seed(0), dtype=dtype)
    a, b = full(**params), sub(**params)
    assert len(set(a.contour_rows.tolist())) > 1 and torch.equal(a.contour_rows, b.contour_rows)
    for key in ("landmarks", "landmarks3d", "joints", "transforms"):
        torch.testing.assert_close(getattr(b, key), getattr(a, key), rtol=0, atol=atol)
    # the kept vertices are the full model's, and the subset's faces index them
    landmark_faces = full.faces[torch.unique(torch.cat([t.reshape(-1) for t in (full.static_idx, full.dynamic_idx,
                                                                                 full.full_idx)]))]
    kept = torch.unique(landmark_faces)
    torch.testing.assert_close(b.vertices, a.vertices[:, kept], rtol=0, atol=atol)
    assert torch.equal(kept[sub.faces], landmark_faces)


def test_landmark_subset_needs_landmarks(data):
    bare = HeadModel(dataclasses.replace(data, static_lmk=None, dynamic_lmk=None, full_lmk=None))
    with pytest.raises(OmnibenchError, match="no landmark embedding"):
        bare.landmark_subset()


def test_eyelids_are_added_after_skinning(m64, data):
    params = _random_params(2, seed=8)
    lids = torch.tensor([[1.0, 0.0], [0.25, 0.5]], dtype=torch.float64)
    plain = m64(**params)
    closed = m64(**params, eyelids=lids)
    expect = plain.vertices + torch.einsum("bk,kvc->bvc", lids, torch.from_numpy(data.eyelids))
    torch.testing.assert_close(closed.vertices, expect, rtol=0, atol=1e-15)
    assert torch.equal(m64(**params, eyelids=torch.zeros(2, 2)).vertices, plain.vertices)


def test_finite_difference_gradients_float64(toy_dir):
    model = load_head_model(toy_dir, n_shape=4, n_expression=3, dtype=torch.float64)
    rng = np.random.default_rng(9)
    inputs = tuple(torch.tensor(rng.normal(size=s) * sc, requires_grad=True)
                   for s, sc in (((2, 4), 1.0), ((2, 3), 1.0), ((2, 15), 0.3), ((2, 3), 0.01), ((2, 2), 0.5)))

    def fn(shape, expr, pose, trans, lids):
        out = model(shape=shape, expression=expr, pose=pose, translation=trans, eyelids=lids)
        return out.vertices[:, ::7], out.joints, out.landmarks

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)
    zero = torch.zeros(1, 15, dtype=torch.float64, requires_grad=True)  # finite gradient at the zero pose
    (model(pose=zero).vertices ** 2).sum().backward()
    assert torch.isfinite(zero.grad).all() and zero.grad.abs().sum() > 0


def test_transposed_posedirs_layout_changes_outputs(data):
    n_v = data.n_vertices
    good = HeadModel(data, dtype=torch.float64)
    pose = torch.zeros(1, 15, dtype=torch.float64)
    pose[0, 3:9] = torch.tensor([0.2, 0.1, -0.1, 0.25, 0.0, 0.05])
    variants = {
        "coord-major": data.posedirs.reshape(3 * n_v, 36).reshape(3, n_v, 36).transpose(1, 0, 2),
        "feature-transposed": data.posedirs.reshape(n_v, 3, 4, 3, 3).transpose(0, 1, 2, 4, 3).reshape(n_v, 3, 36),
        "joint-permuted": data.posedirs.reshape(n_v, 3, 4, 9)[:, :, [1, 0, 2, 3]].reshape(n_v, 3, 36),
    }
    ref = good(pose=pose).vertices
    for name, bad in variants.items():
        out = HeadModel(dataclasses.replace(data, posedirs=np.ascontiguousarray(bad)), dtype=torch.float64)(pose=pose)
        assert (out.vertices - ref).abs().max() > 1e-6, name


def test_axis_angle_matches_scipy_and_deca_pose_mapping():
    rng = np.random.default_rng(10)
    r = rng.normal(size=(50, 3)) * np.array([[1.0]] * 25 + [[1e-7]] * 25)
    ours = axis_angle_to_matrix(torch.from_numpy(r)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(r).as_matrix(), atol=1e-15)
    pose6 = torch.arange(12.0).reshape(2, 6)
    full = deca_pose_to_flame15(pose6)
    assert full.shape == (2, 15)
    assert torch.equal(full[:, 0:3], pose6[:, :3]) and torch.equal(full[:, 6:9], pose6[:, 3:])
    assert full[:, 3:6].abs().sum() == 0 and full[:, 9:].abs().sum() == 0
    with pytest.raises(OmnibenchError, match=r"\(\.\.\., 6\)"):
        deca_pose_to_flame15(torch.zeros(2, 15))


def _rodrigues_cosine_reference(aa: torch.Tensor) -> torch.Tensor:
    """The control metrics' former own Rodrigues (``b = (1 - cos t) / t^2``), verbatim: the numbers they
    publish were computed with it, so ``cosine_form=True`` must reproduce it to the bit."""
    t2 = (aa * aa).sum(-1, keepdim=True)
    small = t2 < 1e-8
    t = torch.where(small, torch.ones_like(t2), t2).sqrt()
    a = torch.where(small, 1 - t2 / 6, torch.sin(t) / t)[..., None]
    b = torch.where(small, 0.5 - t2 / 24, (1 - torch.cos(t)) / (t * t))[..., None]
    rx, ry, rz = aa.unbind(-1)
    zero = torch.zeros_like(rx)
    kmat = torch.stack([zero, -rz, ry, rz, zero, -rx, -ry, rx, zero], dim=-1).reshape(*aa.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(kmat)
    return eye + a * kmat + b * (kmat @ kmat)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cosine_form_reproduces_the_control_metrics_rodrigues_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.0, 1e-7, 1e-5, 1e-3, 0.1, 1.0, 3.0], dtype=torch.float64).repeat_interleave(200)[:, None]
    r = (torch.randn(len(scales), 3, generator=g, dtype=torch.float64) * scales).to(dtype)
    x1, x2 = r.clone().requires_grad_(True), r.clone().requires_grad_(True)
    ours, ref = axis_angle_to_matrix(x1, cosine_form=True), _rodrigues_cosine_reference(x2)
    assert torch.equal(ours, ref)
    ours.square().sum().backward()
    ref.square().sum().backward()
    assert torch.equal(x1.grad, x2.grad)
    # the two forms are the same rotation up to rounding, and both exactly the identity at zero
    tol = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(axis_angle_to_matrix(r), ours.detach(), atol=tol, rtol=0)
    eye = torch.eye(3, dtype=dtype).expand(2, 3, 3)
    assert torch.equal(axis_angle_to_matrix(torch.zeros(2, 3, dtype=dtype), cosine_form=True), eye)
    assert torch.equal(axis_angle_to_matrix(torch.zeros(2, 3, dtype=dtype)), eye)


def test_bad_inputs_raise_clear_errors(m32):
    with pytest.raises(OmnibenchError, match="deca_pose_to_flame15"):
        m32(pose=torch.zeros(2, 6))
    with pytest.raises(OmnibenchError, match="301 coefficients"):
        m32(shape=torch.zeros(2, 301))
    with pytest.raises(OmnibenchError, match="inconsistent batch"):
        m32(shape=torch.zeros(2, 10), pose=torch.zeros(3, 15))
    small = load_head_model(m32.source, n_shape=10, n_expression=5)
    assert small.n_shape == 10 and small.n_expression == 5
    with pytest.raises(OmnibenchError, match="n_expression=5"):
        small(expression=torch.zeros(1, 6))
    with pytest.raises(OmnibenchError, match="n_shape must be"):
        load_head_model(m32.source, n_shape=301)


def test_fewer_coefficients_equal_zero_padding(m64):
    rng = np.random.default_rng(11)
    s = torch.from_numpy(rng.normal(size=(2, 12)))
    padded = torch.nn.functional.pad(s, (0, 288))
    torch.testing.assert_close(m64(shape=s).vertices, m64(shape=padded).vertices, rtol=0, atol=0)
    small = HeadModel(dataclasses.replace(load_flame_data(m64.source)), n_shape=12, n_expression=0,
                      dtype=torch.float64)
    torch.testing.assert_close(small(shape=s).vertices, m64(shape=s).vertices, rtol=0, atol=1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(m32):
    params = {k: torch.from_numpy(v).float() for k, v in _random_params(4, seed=12).items()}
    cpu = m32(**params)
    gpu = load_head_model(m32.source, device="cuda")(**{k: v.cuda() for k, v in params.items()})
    torch.testing.assert_close(gpu.vertices.cpu(), cpu.vertices, rtol=0, atol=1e-5)
    torch.testing.assert_close(gpu.landmarks.cpu(), cpu.landmarks, rtol=0, atol=1e-5)


def test_empty_batch_and_chunked_skinning_agree(m64, monkeypatch):
    out = m64(shape=torch.zeros(0, 300))
    assert out.vertices.shape == (0, m64.n_vertices, 3) and out.landmarks.shape == (0, 68, 3)
    params = _random_params(7, seed=13)
    whole = m64(**params)
    import omnibench.heads.flame as flame_mod

    monkeypatch.setattr(flame_mod, "_SKIN_CHUNK_ELEMS", 12 * m64.n_vertices * 3)  # chunks of 3 samples
    chunked = m64(**params)
    torch.testing.assert_close(chunked.vertices, whole.vertices, rtol=0, atol=0)
