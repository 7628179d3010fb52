"""The landmark fitter alone (landmarks from the mesh: flame.md 5.16) and the landmark-fit estimator."""

from __future__ import annotations

import pytest
import torch

from metrics.control_math import per_sample_rotation_error_deg
from metrics.estimators.fitting import FitterConfig, FlameFitter, fold_rigid_into_camera
from metrics.estimators.landmark_fit import LandmarkFitEstimator
from omnibench.cameras import orbit_camera, project
from tests.metrics.control_fakes import FakeHead

RES = 224


def _flame_516_params(b: int, head, seed: int = 1):
    """flame.md 5.16: beta ~ 0.5 N(0,1) on 20 columns, psi ~ 0.5 N(0,1) on 10, global within +-0.3, jaw in [0, 0.3]."""
    g = torch.Generator().manual_seed(seed)
    shape = torch.zeros(b, head.n_shape)
    shape[:, :20] = 0.5 * torch.randn(b, 20, generator=g)
    expr = torch.zeros(b, head.n_expression)
    expr[:, :10] = 0.5 * torch.randn(b, 10, generator=g)
    pose = torch.zeros(b, 15)
    pose[:, 0:3] = (torch.rand(b, 3, generator=g) - 0.5) * 0.6
    pose[:, 6] = torch.rand(b, generator=g) * 0.3
    return shape, expr, pose


@pytest.fixture(scope="module")
def head():
    return FakeHead(n_shape=20, n_expression=10)


def test_fitter_recovers_pose_from_2d_mesh_landmarks(head):
    torch.manual_seed(0)
    shape, expr, pose = _flame_516_params(4, head)
    cam = orbit_camera(torch.zeros(4), torch.zeros(4))
    px, _ = project(head(shape=shape, expression=expr, pose=pose).landmarks, cam, RES)
    fit = FlameFitter(head).fit_2d(px, cam, RES)
    assert (fit.landmark_rmse < 0.5).all(), fit.landmark_rmse
    assert (fit.pose[:, 0:3] - pose[:, 0:3]).abs().max() < 0.02
    assert (fit.pose[:, 6:9] - pose[:, 6:9]).abs().max() < 0.02


def test_fitter_3d_landmarks_below_half_a_millimetre(head):
    shape, expr, pose = _flame_516_params(3, head, seed=2)
    lm = head(shape=shape, expression=expr, pose=pose).landmarks
    fit = FlameFitter(head).fit_3d(lm)
    assert (fit.landmark_rmse < 0.5e-3).all(), fit.landmark_rmse
    assert (fit.pose[:, 0:3] - pose[:, 0:3]).abs().max() < 0.02
    assert (fit.pose[:, 6:9] - pose[:, 6:9]).abs().max() < 0.02


def test_fitter_is_batch_independent(head):
    shape, expr, pose = _flame_516_params(2, head, seed=3)
    cam = orbit_camera(torch.zeros(2), torch.zeros(2))
    px, _ = project(head(shape=shape, expression=expr, pose=pose).landmarks, cam, RES)
    fitter = FlameFitter(head, FitterConfig(rigid_steps=20, steps=20, refine_iters=5))
    both = fitter.fit_2d(px, cam, RES)
    one = fitter.fit_2d(px[1:], cam[1:], RES)
    assert torch.allclose(both.pose[1], one.pose[0], atol=1e-5)


def test_fold_rigid_into_camera_reproduces_the_image(head):
    shape, expr, pose = _flame_516_params(3, head, seed=4)
    pose[:, 6] = 0
    t = torch.tensor([[0.01, -0.02, 0.05]]).expand(3, 3)
    cam0 = orbit_camera(torch.zeros(3), torch.zeros(3))
    moved = head(shape=shape, expression=expr, pose=pose, translation=t)
    still = head(shape=shape, expression=expr)
    cam = fold_rigid_into_camera(cam0, pose[:, 0:3], t, still.joints[:, 0])
    a, _ = project(moved.vertices, cam0, RES)
    b, _ = project(still.vertices, cam, RES)
    assert (a - b).abs().max() < 1e-3


def test_landmark_fit_estimator_recovers_the_camera(head):
    """Head at rest seen by a yawed/pitched camera: the estimate's camera matches within a degree."""
    b = 3
    shape, expr, _ = _flame_516_params(b, head, seed=5)
    jaw = torch.zeros(b, 15)
    jaw[:, 6] = torch.tensor([0.05, 0.15, 0.25])
    cam = orbit_camera(torch.tensor([0.3, -0.2, 0.0]), torch.tensor([0.1, 0.0, -0.15]))
    px, _ = project(head(shape=shape, expression=expr, pose=jaw).landmarks, cam, RES)
    # exact landmarks: the fitter's weak (noise-free) priors instead of the estimator's detection-noise defaults
    est = LandmarkFitEstimator(head, n_shape=20, n_expression=10, shape_prior=1e-5, expression_prior=1e-5)
    out = est.estimate_from_landmarks(px, RES, torch.ones(b), torch.tensor([True, True, True])).validate()
    assert out.detected.all() and (out.pose[:, 0:3] == 0).all()
    assert per_sample_rotation_error_deg(cam, torch.zeros(b, 15), out.camera, out.pose).max() < 1.0
    assert (out.pose[:, 6] - jaw[:, 6]).abs().max() < 0.02
    # an undetected row comes back as the null estimate, flagged
    out = est.estimate_from_landmarks(px, RES, torch.ones(b), torch.tensor([True, False, True]))
    assert out.detected.tolist() == [True, False, True] and out.expression[1].abs().sum() == 0


def test_dlib_landmarks_on_a_real_photo():
    from skimage import data  # scikit-image: a dependency of face-alignment

    from metrics.estimators.landmarks import DlibLandmarks

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None]  # (1, 3, 512, 512), face near (250, 130)
    lm = DlibLandmarks()(torch.cat([img, torch.zeros_like(img)]))
    assert lm.detected.tolist() == [True, False]
    p = lm.points[0]
    assert 150 < float(p[:, 0].mean()) < 320 and 60 < float(p[:, 1].mean()) < 230
    assert float(p[36:42, 1].mean()) < float(p[48:60, 1].mean())  # eyes above the mouth


def test_fitter_works_under_no_grad(head):
    shape, expr, pose = _flame_516_params(1, head, seed=6)
    lm = head(shape=shape, expression=expr, pose=pose).landmarks
    with torch.no_grad():
        fit = FlameFitter(head, FitterConfig(rigid_steps=5, steps=5, refine_iters=2)).fit_3d(lm)
    assert torch.isfinite(fit.pose).all()


def test_fitter_poses_only_the_landmark_vertices_and_fits_as_the_full_head_does():
    from omnibench.heads import load_head_model

    full = load_head_model("synthetic:tiny", n_shape=20, n_expression=10)
    shape, expr, pose = _flame_516_params(2, full, seed=5)
    cam = orbit_camera(torch.zeros(2), torch.zeros(2))
    px, _ = project(full(shape=shape, expression=expr, pose=pose).landmarks, cam, RES)
    cfg = FitterConfig(rigid_steps=20, steps=20, refine_iters=0)
    fast = FlameFitter(full, cfg)
    assert fast.head.n_vertices < full.n_vertices
    # the landmarks' gradients are the full mesh's (float rounding apart)
    params = [t.clone().requires_grad_(True) for t in (0.3 * shape, 0.3 * expr, pose[:, 0:3], pose[:, 6:9])]
    grads = []
    for head in (fast.head, full):
        lms = head(shape=params[0], expression=params[1], pose=torch.cat(
            [params[2], torch.zeros(2, 3), params[3], torch.zeros(2, 6)], 1)).landmarks
        grads.append(torch.autograd.grad((lms * torch.linspace(-1, 1, 68 * 3).view(68, 3)).sum(), params))
    for g_fast, g_full in zip(*grads):
        torch.testing.assert_close(g_fast, g_full, rtol=1e-5, atol=1e-6)
    # so the Adam fit follows the same path. (The per-sample L-BFGS refinement is left out: on the full mesh
    # alone it already lands on different points when the landmarks move by 1e-5 px.)
    slow = FlameFitter(full, cfg)
    slow.head = full  # the whole mesh, as before the subset
    a, b = fast.fit_2d(px, cam, RES), slow.fit_2d(px, cam, RES)
    for key in ("shape", "expression", "pose", "translation", "landmark_rmse"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), rtol=1e-5, atol=1e-5)
