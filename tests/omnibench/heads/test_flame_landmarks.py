"""Landmarks: dynamic-contour row choice at the table boundaries, the pinned sign/neck-chain convention,
iBUG concatenation order (dynamic 17 + static 51) and the static full-68 set."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from omnibench.heads import HeadModel, load_flame_data
from omnibench.heads import landmarks as lm


@pytest.fixture(scope="module")
def data(toy_dir):
    return load_flame_data(toy_dir)


@pytest.mark.parametrize(
    "yaw,row",
    [(0.0, 0), (0.4, 0), (-0.4, 0), (-0.6, 40), (1.0, 1), (20.0, 20), (38.6, 39), (39.0, 39), (39.4, 39),
     (45.0, 39), (170.0, 39), (-1.0, 40), (-20.0, 59), (-38.6, 78), (-39.0, 78), (-39.4, 78), (-39.6, 78),
     (-45.0, 78), (-170.0, 78)],
)
def test_contour_row_boundaries(yaw, row):
    assert lm.contour_row(torch.tensor([yaw], dtype=torch.float64)).item() == row


def test_yaw_degrees_is_the_y_euler_angle():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-80, 80, size=(20, 3))
    mats = Rotation.from_euler("ZYX", angles[:, [2, 1, 0]], degrees=True).as_matrix()  # R = Rz Ry Rx
    np.testing.assert_allclose(lm.yaw_degrees(torch.from_numpy(mats)).numpy(), angles[:, 1], atol=1e-10)
    pure = Rotation.from_rotvec([[0, np.radians(25), 0]]).as_matrix()  # +25 deg about +y: nose toward +x
    assert lm.yaw_degrees(torch.from_numpy(pure)).item() == pytest.approx(25.0)


def _pose(global_yaw_deg, neck_yaw_deg):
    pose = torch.zeros(1, 15, dtype=torch.float64)
    pose[0, 1] = np.radians(global_yaw_deg)
    pose[0, 4] = np.radians(neck_yaw_deg)
    return pose


@pytest.mark.parametrize(
    "yaw_sign,neck_in_chain,expected_row",
    [(1, True, 35), (-1, True, 74), (1, False, 25), (-1, False, 64)],  # DECA | FLAME_PyTorch | - | smplx
)
def test_sign_and_neck_chain_conventions(data, yaw_sign, neck_in_chain, expected_row):
    model = HeadModel(data, yaw_sign=yaw_sign, neck_in_chain=neck_in_chain, dtype=torch.float64)
    out = model(pose=_pose(25, 10))
    assert out.contour_rows.tolist() == [expected_row]
    row_pts = lm.barycentric_points(out.vertices, model.faces, torch.from_numpy(data.dynamic_lmk.face_idx[expected_row]),
                                    torch.from_numpy(data.dynamic_lmk.bary[expected_row]))
    torch.testing.assert_close(out.landmarks[:, :17], row_pts, rtol=0, atol=1e-15)


def test_default_convention_is_deca_and_order_is_dynamic_then_static(data):
    model = HeadModel(data, dtype=torch.float64)
    assert (model.yaw_sign, model.neck_in_chain) == (1, True)
    poses = torch.cat([_pose(a, 0) for a in (-50, -39, -10, 0, 10, 39, 50)])
    out = model(pose=poses)
    assert out.contour_rows.tolist() == [78, 78, 49, 0, 10, 39, 39]
    static = lm.barycentric_points(out.vertices, model.faces, torch.from_numpy(data.static_lmk.face_idx),
                                   torch.from_numpy(data.static_lmk.bary))
    torch.testing.assert_close(out.landmarks[:, 17:], static, rtol=0, atol=0)
    full = lm.barycentric_points(out.vertices, model.faces, torch.from_numpy(data.full_lmk.face_idx),
                                 torch.from_numpy(data.full_lmk.bary))
    torch.testing.assert_close(out.landmarks3d, full, rtol=0, atol=0)
    # pitch and roll alone do not change the contour row
    pitch_roll = torch.zeros(2, 15, dtype=torch.float64)
    pitch_roll[0, 0], pitch_roll[1, 2] = 0.5, -0.5
    assert model(pose=pitch_roll).contour_rows.tolist() == [0, 0]


def test_full68_fallback_without_a_68_file(data):
    import dataclasses

    model = HeadModel(dataclasses.replace(data, full_lmk=None), dtype=torch.float64)
    out = model(pose=_pose(20, 0))
    assert model.side_files["full68"].startswith("fallback")
    rest = model()
    torch.testing.assert_close(rest.landmarks3d, rest.landmarks, rtol=0, atol=0)  # row 0 + static 51 at yaw 0
    assert out.landmarks3d.shape == (1, 68, 3)
