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


def test_framings_v1_and_ffhq():
    from omnibench.cameras import EG3D_UNIT_M, FRAMING_FFHQ, FRAMING_V1, FRAMINGS, get_framing

    assert get_framing("v1") is FRAMING_V1 and FRAMINGS["ffhq"] is FRAMING_FFHQ
    assert (FRAMING_V1.radius, FRAMING_V1.look_at) == (1.6, (0.0, 0.0, 0.0))
    # EG3D's FFHQ cameras: radius 2.7 units, pivot (0, 0, 0.2) units, at 0.385 m a unit (0.370..0.400)
    assert FRAMING_FFHQ.radius == round(2.7 * EG3D_UNIT_M, 4) and 0.99 < FRAMING_FFHQ.radius < 1.09
    assert FRAMING_FFHQ.look_at == (0.0, 0.0, round(0.2 * EG3D_UNIT_M, 4))
    assert abs(FRAMING_FFHQ.field_m - 0.2437) < 1e-3 and abs(FRAMING_V1.field_m - 0.3752) < 1e-3
    # a frontal ffhq camera sits radius metres in front of the pivot and images the pivot at the centre
    zero = torch.zeros(1)
    cam = FRAMING_FFHQ.orbit(zero, zero)
    c2w, _ = split_camera(cam)
    assert torch.allclose(c2w[0, :3, 3], torch.tensor([0.0, 0.0, 0.077 + FRAMING_FFHQ.radius]), atol=1e-6)
    px, z = project(torch.tensor([[FRAMING_FFHQ.look_at]]), cam, 64)
    assert torch.allclose(px[0, 0], torch.tensor([32.0, 32.0]), atol=1e-4)
    # v1 is exactly the old default camera
    assert torch.equal(FRAMING_V1.orbit(torch.tensor([0.3]), torch.tensor([-0.1])),
                       orbit_camera(torch.tensor([0.3]), torch.tensor([-0.1])))
    # yaw/pitch about the pivot are the drawn angles
    yaw, pitch = torch.tensor([0.4, -0.2]), torch.tensor([0.1, -0.3])
    yp = yaw_pitch_of(FRAMING_FFHQ.orbit(yaw, pitch), FRAMING_FFHQ.look_at)
    assert torch.allclose(yp, torch.stack([yaw, pitch], 1), atol=1e-5)


def test_unknown_framing_is_one_clear_error():
    import pytest

    from omnibench.cameras import get_framing
    from omnibench.errors import OmnibenchError

    with pytest.raises(OmnibenchError, match="unknown camera framing 'eg3d'; available: v1, ffhq"):
        get_framing("eg3d")
