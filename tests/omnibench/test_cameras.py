import math

import torch

from omnibench.cameras import orbit_camera, project, split_camera, yaw_pitch_of


def test_frontal_camera_looks_down_minus_z_with_opencv_axes():
    cam = orbit_camera(torch.tensor([0.0]), torch.tensor([0.0]), radius=2.0)
    c2w, k = split_camera(cam)
    assert torch.allclose(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 2.0]), atol=1e-6)
    assert torch.allclose(c2w[0, :3, 2], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)  # forward
    assert torch.allclose(c2w[0, :3, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # image right = subject's left
    assert torch.allclose(c2w[0, :3, 1], torch.tensor([0.0, -1.0, 0.0]), atol=1e-6)  # image down = world down
    assert k[0, 0, 2] == 0.5


def test_project_centre_and_offsets():
    cam = orbit_camera(torch.tensor([0.0]), torch.tensor([0.0]), radius=2.0, focal=4.0)
    pts = torch.tensor([[[0.0, 0.0, 0.0], [0.1, 0.1, 0.0]]])
    px, z = project(pts, cam, 64)
    assert torch.allclose(px[0, 0], torch.tensor([32.0, 32.0]))
    # +x right, +y up -> smaller pixel row
    assert px[0, 1, 0] > 32 and px[0, 1, 1] < 32
    assert torch.allclose(px[0, 1], torch.tensor([32 + 0.05 * 4 * 64, 32 - 0.05 * 4 * 64]), atol=1e-4)
    assert torch.allclose(z, torch.tensor([[2.0, 2.0]]))


def test_yaw_pitch_round_trip():
    yaw = torch.tensor([0.3, -0.5, 0.0])
    pitch = torch.tensor([0.1, -0.2, 0.4])
    got = yaw_pitch_of(orbit_camera(yaw, pitch))
    assert torch.allclose(got, torch.stack([yaw, pitch], -1), atol=1e-5)
    assert math.isclose(float(got[0, 0]), 0.3, rel_tol=1e-4)
