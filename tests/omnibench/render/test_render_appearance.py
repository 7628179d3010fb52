"""Appearance, determinism and input validation of the renderer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omnibench.cameras import orbit_camera, project
from omnibench.errors import OmnibenchError
from omnibench.render import APPEARANCE_Z_DIM, Appearance, HeadRegions, render_mesh


def _front(n: int = 1) -> torch.Tensor:
    return orbit_camera(torch.zeros(n), torch.zeros(n))


def test_deterministic_and_batch_independent(toy):
    v, f, _, regions = toy
    z = torch.randn(3, APPEARANCE_Z_DIM, generator=torch.Generator().manual_seed(1))
    apps = Appearance.from_latents(z)
    cams = orbit_camera(torch.tensor([-0.3, 0.0, 0.5]), torch.tensor([0.1, 0.0, -0.1]))
    batch = render_mesh(np.repeat(v[None], 3, 0), f, cams, 48, apps, regions=regions)
    again = render_mesh(np.repeat(v[None], 3, 0), f, cams, 48, apps, regions=regions)
    assert torch.equal(batch.image, again.image) and torch.equal(batch.depth, again.depth)
    for b in range(3):
        single = render_mesh(v[None], f, cams[b : b + 1], 48, apps[b], regions=regions)
        assert torch.equal(single.image[0], batch.image[b])
        assert torch.equal(single.mask[0], batch.mask[b])
    assert batch.image.shape == (3, 3, 48, 48) and batch.image.dtype == torch.float32
    assert batch.depth.shape == (3, 48, 48) and batch.mask.shape == (3, 48, 48)
    assert 0 <= batch.image.min() and batch.image.max() <= 1


def test_every_latent_coordinate_changes_the_image(toy):
    v, f, _, regions = toy
    cam = orbit_camera(torch.tensor([0.6]), torch.tensor([0.2]))  # a view that shows face, side and back hair
    base = render_mesh(v, f, cam, 64, Appearance.mean(), regions=regions).image
    unchanged = []
    for k in range(APPEARANCE_Z_DIM):
        z = torch.zeros(APPEARANCE_Z_DIM)
        z[k] = 2.5
        img = render_mesh(v, f, cam, 64, Appearance.from_latent(z), regions=regions).image
        if torch.equal(img, base):
            unchanged.append(k)
    assert unchanged == []


def test_pupil_is_dark_and_lips_are_redder_than_skin(toy):
    v, f, _, regions = toy
    app = Appearance.mean()
    cam = _front()
    res = 256
    out = render_mesh(v, f, cam, res, app, regions=regions)
    img = out.image[0]
    front_pole = torch.from_numpy(regions.eye_centres + np.array([0, 0, regions.eye_radius]))[None]
    uv, _ = project(front_pole, cam.double(), res)
    for x, y in uv[0].round().long().tolist():
        assert img[:, y, x].max() < 0.1  # pupil
    mouth = torch.from_numpy(regions.mouth_centre + np.array([0, -0.004, 0]))[None, None]
    cheek = torch.from_numpy(np.array([0.045, -0.03, 0.07]))[None, None]
    (mx, my), (cx, cy) = (project(p, cam.double(), res)[0][0, 0].round().long().tolist() for p in (mouth, cheek))
    lip_rgb, cheek_rgb = img[:, my, mx], img[:, cy, cx]
    assert lip_rgb[0] / lip_rgb[1] > cheek_rgb[0] / cheek_rgb[1] + 0.1


def test_background_fills_misses_and_mask_is_coverage(toy):
    v, f, _, regions = toy
    app = Appearance.mean()
    out = render_mesh(v, f, _front(), 32, app, regions=regions)
    assert out.mask[0, 0, 0] == 0 and not torch.isfinite(out.depth[0, 0, 0])
    assert torch.allclose(out.image[0, :, 0, 0], torch.tensor(app.background, dtype=torch.float32), atol=0.1)
    partial = (out.mask[0] > 0) & (out.mask[0] < 1)
    assert partial.any()  # anti-aliased silhouette
    assert ((out.mask[0] == 1) <= torch.isfinite(out.depth[0])).all()
    assert torch.isinf(out.depth[out.mask == 0]).all()


def test_bad_inputs_raise(toy):
    v, f, _, regions = toy
    cam = _front()
    with pytest.raises(OmnibenchError, match="camera"):
        render_mesh(v, f, torch.zeros(1, 16), 32, regions=regions)
    with pytest.raises(OmnibenchError, match="camera"):
        render_mesh(v, f, torch.zeros(1, 25), 32, regions=regions)
    with pytest.raises(OmnibenchError, match="resolution"):
        render_mesh(v, f, cam, 0, regions=regions)
    with pytest.raises(OmnibenchError, match="supersample"):
        render_mesh(v, f, cam, 16, regions=regions, supersample=0)
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(OmnibenchError, match="NaN"):
        render_mesh(bad, f, cam, 16, regions=regions)
    with pytest.raises(OmnibenchError, match="different mesh"):
        render_mesh(v[:-1], f[:-10], cam, 16, regions=regions)
    with pytest.raises(OmnibenchError, match="out of range"):
        HeadRegions.from_mesh(v[:10], f)
    with pytest.raises(OmnibenchError, match="appearance"):
        render_mesh(np.repeat(v[None], 2, 0), f, _front(2), 16, [Appearance.mean()], regions=regions)
    with pytest.raises(OmnibenchError):
        Appearance.from_latent(torch.zeros(APPEARANCE_Z_DIM + 1))
    with pytest.raises(OmnibenchError):
        Appearance.from_latent(torch.full((4,), float("nan")))


def test_any_triangle_mesh_renders_without_masks():
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    mesh.apply_scale([0.8, 1.2, 1.0])
    z = torch.randn(APPEARANCE_Z_DIM, generator=torch.Generator().manual_seed(3))
    out = render_mesh(mesh.vertices[None], mesh.faces, _front(), 32, Appearance.from_latent(z))
    assert out.mask.sum() > 100 and torch.isfinite(out.depth).sum() > 100
