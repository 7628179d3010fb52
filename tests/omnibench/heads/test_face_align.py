"""Face-aligned resampling: the grid lies on the mean face and frontalise samples where the camera projects."""

from __future__ import annotations

import torch

from omnibench.cameras import orbit_camera, project
from omnibench.heads.face_align import face_grid, frontalise
from tests.metrics.control_fakes import FakeHead


def test_grid_covers_the_face_front_row_major_from_top_left():
    head = FakeHead()
    g = face_grid(head, size=8, margin=0.0)
    assert g.shape == (64, 3) and g.dtype == torch.float32
    face = head.template[head.masks["face"]]
    rows = g.view(8, 8, 3)
    assert torch.all(rows[:, 1:, 0] > rows[:, :-1, 0])  # x grows to the right
    assert torch.all(rows[1:, :, 1] < rows[:-1, :, 1])  # y falls downward
    # the face's bounding square: same centre as its x/y box, side = the box's longer side
    lo, hi = face[:, :2].min(0).values, face[:, :2].max(0).values
    side = (hi - lo).max()
    assert torch.allclose((rows[0, 0, :2] + rows[-1, -1, :2]) / 2, (lo + hi) / 2, atol=1e-6)
    assert torch.isclose(rows[0, -1, 0] - rows[0, 0, 0], side, atol=1e-6)
    # lifted onto the visible front: never behind the face's depth range
    assert g[:, 2].min() >= face[:, 2].min() - 1e-6 and g[:, 2].max() <= face[:, 2].max() + 1e-6


def test_frontalise_reads_the_pixel_each_grid_point_projects_to():
    head = FakeHead()
    g = face_grid(head, size=8)
    cam = orbit_camera(torch.tensor([0.4, -0.2]), torch.tensor([0.1, 0.0]))
    res = 64
    # an image whose channels are linear ramps of the pixel coordinate: bilinear sampling is exact on it
    ys, xs = torch.meshgrid(torch.arange(res) + 0.5, torch.arange(res) + 0.5, indexing="ij")
    img = torch.stack([xs / res, ys / res, torch.zeros_like(xs)])[None].expand(2, -1, -1, -1).contiguous()
    out = frontalise(img, cam, g)
    px, _ = project(g[None].expand(2, -1, -1), cam, res)
    assert out.shape == (2, 3, 8, 8)
    assert torch.allclose(out[:, 0].reshape(2, -1), px[..., 0] / res, atol=1e-5)
    assert torch.allclose(out[:, 1].reshape(2, -1), px[..., 1] / res, atol=1e-5)
    # a different view moves the samples: the crop follows the face, not the image centre
    assert (px[0] - px[1]).abs().max() > 2
