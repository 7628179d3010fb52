"""mv-reproj and geometry on analytically rendered scenes (embree ray casting) with known answers."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch

import metrics.estimators
from metrics.multiview import Geometry, MvReproj, pixel_rays, to_pixels, unproject
from omnibench.cameras import orbit_camera, project
from tests.metrics.idmv_fakes import (
    FakeCtx,
    FakeHeadModel,
    controls_for,
    grouped_set,
    raycast_render,
    to_uint8,
    view_cameras,
)

YAWS = (-0.35, 0.0, 0.35)
RES = 64
RADIUS = 1.0


@pytest.fixture(scope="module")
def scene():
    head = FakeHeadModel()
    n_groups = 2
    cams = view_cameras(n_groups, YAWS, RADIUS)
    controls = controls_for(cams)
    mesh = head.mesh(controls.shape[0], controls.expression[0])
    images, depth, mask = raycast_render(mesh, cams, RES)
    return head, grouped_set("views", to_uint8(images), controls, len(YAWS), depth=depth, mask=mask)


def _ctx(head, samples):
    return FakeCtx(sets={"views": samples}, head=head)


def test_unproject_matches_core_projection():
    cam = orbit_camera(torch.tensor([0.3]), torch.tensor([-0.1]), 1.2)
    depth = torch.full((1, 8, 8), 1.1)
    pts = unproject(depth, cam)
    pix, z = to_pixels(pts.reshape(1, -1, 3), cam, 8, 8)
    pix_core, z_core = project(pts.reshape(1, -1, 3).float(), cam, 8)
    centres = torch.stack(
        torch.meshgrid(torch.arange(8) + 0.5, torch.arange(8) + 0.5, indexing="xy"), -1
    ).reshape(1, -1, 2)
    assert torch.allclose(pix.float(), centres, atol=1e-5)
    assert torch.allclose(pix_core, centres, atol=1e-3) and torch.allclose(
        z_core, torch.full_like(z_core, 1.1), atol=1e-5
    )
    assert torch.allclose(z, torch.full_like(z, 1.1), atol=1e-9)
    o, d = pixel_rays(cam, 8, 8)
    assert torch.allclose(o[0], cam[0, [3, 7, 11]].double())


def test_reproj_exact_scene_near_zero(scene):
    head, s = scene
    photo = MvReproj().compute(_ctx(head, s), "photo")
    depth = MvReproj().compute(_ctx(head, s), "depth")
    assert photo.n == 2 and photo.failures == 0 and depth.unit == "m"
    assert photo.value < 0.005  # uint8 quantisation + bilinear lookup of a smooth texture
    assert depth.value < 3e-4  # metres (bilinear lookup of a curved surface)
    assert depth.details["coverage"] > 0.5


def test_reproj_wrong_depth_is_clearly_positive(scene):
    head, s = scene
    base_photo = MvReproj().compute(_ctx(head, s), "photo").value
    wrong = dataclasses.replace(s, depth=s.depth * 1.05)
    photo = MvReproj().compute(_ctx(head, wrong), "photo")
    depth = MvReproj().compute(_ctx(head, wrong), "depth")
    assert depth.value > 5e-3
    assert photo.value > 3 * base_photo


def test_reproj_without_depth_reports_failures(scene):
    head, s = scene
    nodepth = dataclasses.replace(s, depth=None)
    r = MvReproj().compute(_ctx(head, nodepth), "photo")
    assert r.value is None and r.failures == len(s.images) and "flame" in r.details["reason"]


def test_geometry_oracle_near_zero_and_perturbed_positive(scene):
    head, s = scene
    r = Geometry().compute(_ctx(head, s), "mean")
    assert r.value < 1e-6 and r.failures == 0 and r.unit == "m"
    assert r.details["coverage"] > 0.95
    # the generator renders a 2% larger head than the controls ask for: radial offset 0.1 * 0.2 * 0.1 m
    cams = s.controls.camera
    big = head.mesh(torch.tensor([0.2, 0, 0, 0]), torch.zeros(4))
    images, depth, mask = raycast_render(big, cams, RES)
    pert = dataclasses.replace(s, images=to_uint8(images), depth=depth, mask=mask)
    rp = Geometry().compute(_ctx(head, pert), "mean")
    rr = Geometry().compute(_ctx(head, pert), "rmse")
    assert 1.5e-3 < rp.value < 3.5e-3
    assert rr.value >= rp.value
    rm = Geometry().compute(_ctx(head, pert), "median")
    assert 1.5e-3 < rm.value < 3.5e-3


def test_flame_spread_with_stub_estimator(monkeypatch, scene):
    head, s = scene
    n = len(s.images)
    shapes = torch.zeros(n, 4)
    shapes[:, 0] = torch.tensor([0.0, 0.1, 0.2, 0.0, 0.0, 0.0])  # group 0 spreads, group 1 does not

    class Est:
        def __init__(self, head_model, device="cpu", **kw):
            self.i = 0

        def estimate(self, images):
            b = images.shape[0]
            sh = shapes[self.i : self.i + b]
            self.i += b
            return types.SimpleNamespace(
                shape=sh, expression=torch.zeros(b, 4), detected=torch.ones(b, dtype=torch.bool)
            )

        def describe(self):
            return {"name": "stub", "sha256": None}

    monkeypatch.setattr(metrics.estimators, "load_estimator", lambda spec, model, device="cpu", **kw: Est(model))
    r = MvReproj().compute(_ctx(head, s), "flame")
    v = head(shapes, torch.zeros(n, 4)).vertices.double()
    g0 = v[:3]
    expected_g0 = float((g0 - g0.mean(0)).norm(dim=-1).mean())
    assert r.value == pytest.approx(expected_g0 / 2, rel=1e-6)
    assert r.n == 2 and r.failures == 0 and r.backbones["estimator"]["name"] == "stub"
