"""Per-sample distances behind AED / ASD / APD (pure tensor functions, no evaluation context).

Every function returns one value per sample (a ``(N,)`` float64 tensor) so metrics can aggregate and
bootstrap them; :func:`aggregate` turns them into the reported number.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from omnibench.cameras import split_camera
from omnibench.errors import OmnibenchError
from omnibench.heads.flame import axis_angle_to_matrix as rodrigues


def common_columns(given: torch.Tensor, estimated: torch.Tensor, cap: int | None) -> int:
    """Number of leading coefficient columns compared: ``min(given, estimated, cap)``."""
    n = min(given.shape[1], estimated.shape[1])
    if cap is not None:
        n = min(n, cap)
    if n <= 0:
        raise OmnibenchError("no coefficients to compare: the estimator or the generator returned 0 columns")
    return n


def per_sample_param_error(given: torch.Tensor, estimated: torch.Tensor, kind: str) -> torch.Tensor:
    """``(N, D)`` pairs -> per-sample mean squared (``kind='rmse'``) or mean absolute (``'l1'``) error."""
    if given.shape != estimated.shape:
        raise OmnibenchError(f"shape mismatch {tuple(given.shape)} vs {tuple(estimated.shape)}")
    d = given.double() - estimated.double()
    if kind == "rmse":
        return (d**2).mean(dim=1)
    if kind == "l1":
        return d.abs().mean(dim=1)
    raise OmnibenchError(f"unknown parameter distance '{kind}' (rmse, l1)")


def per_sample_shuffled_error(given: torch.Tensor, estimated: torch.Tensor, kind: str, chunk: int = 512) -> torch.Tensor:
    """The shuffled-pairing null of :func:`per_sample_param_error`: for each sample ``i`` the error of its
    estimate against every *other* sample's given controls, averaged over those ``N - 1`` pairings, ``(N,)``.

    Under it a generator that ignores the control (its images carry nothing of the given values) scores the
    same as under the true pairing, on its own images; one that renders the control scores lower under the
    true pairing. Exact (all pairings, no random permutation); memory O(chunk x N).
    """
    if given.shape != estimated.shape:
        raise OmnibenchError(f"shape mismatch {tuple(given.shape)} vs {tuple(estimated.shape)}")
    n, d = given.shape
    if n < 2:
        raise OmnibenchError("the shuffled-pairing null needs at least 2 samples")
    if kind not in ("rmse", "l1"):
        raise OmnibenchError(f"unknown parameter distance '{kind}' (rmse, l1)")
    g, e = given.double(), estimated.double()
    out = torch.empty(n, dtype=torch.float64)
    for s in range(0, n, chunk):
        dist = torch.cdist(e[s : s + chunk], g, p=2.0 if kind == "rmse" else 1.0)  # (c, N)
        per_pair = (dist**2 if kind == "rmse" else dist) / d
        own = per_pair[torch.arange(per_pair.shape[0]), torch.arange(s, s + per_pair.shape[0])]
        out[s : s + chunk] = (per_pair.sum(1) - own) / (n - 1)
    return out


def aggregate(per_sample: Any, kind: str) -> float:
    """Per-sample values -> the metric value: ``sqrt(mean)`` for ``rmse`` (RMSE over every entry, as
    Next3D's ``sqrt(mean_squared_error)``), plain mean otherwise."""
    v = torch.as_tensor(per_sample, dtype=torch.float64)
    m = float(v.mean())
    return math.sqrt(m) if kind == "rmse" else m


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """``(N, 3)`` axis-angle (radians) -> ``(N, 3, 3)``: the head model's Rodrigues
    (:func:`omnibench.heads.flame.axis_angle_to_matrix`) in the ``b = (1 - cos t) / t^2`` form the control
    metrics' numbers were computed with (bit for bit); smooth at zero, so gradients flow from 0."""
    return rodrigues(aa, cosine_form=True)


def matrix_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """``(N, 3, 3)`` rotation matrices -> ``(N, 3)`` axis-angle (radians, angle in [0, pi]), through the
    unit quaternion (Shepperd's branch choice: stable at every angle)."""
    r = r.double()
    tr = r.diagonal(dim1=-2, dim2=-1).sum(-1)
    cands = torch.stack([
        torch.stack([1 + tr, r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], -1),
        torch.stack([r[:, 2, 1] - r[:, 1, 2], 1 + 2 * r[:, 0, 0] - tr, r[:, 0, 1] + r[:, 1, 0], r[:, 0, 2] + r[:, 2, 0]], -1),
        torch.stack([r[:, 0, 2] - r[:, 2, 0], r[:, 0, 1] + r[:, 1, 0], 1 + 2 * r[:, 1, 1] - tr, r[:, 1, 2] + r[:, 2, 1]], -1),
        torch.stack([r[:, 1, 0] - r[:, 0, 1], r[:, 0, 2] + r[:, 2, 0], r[:, 1, 2] + r[:, 2, 1], 1 + 2 * r[:, 2, 2] - tr], -1),
    ], 1)  # (N, 4 candidates, wxyz), each 4 q_k q (largest |q_k| is best conditioned)
    diag = torch.stack([1 + tr, 1 + 2 * r[:, 0, 0] - tr, 1 + 2 * r[:, 1, 1] - tr, 1 + 2 * r[:, 2, 2] - tr], -1)
    q = cands[torch.arange(r.shape[0]), diag.argmax(-1)]
    q = torch.nn.functional.normalize(q, dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)
    sin = q[:, 1:].norm(dim=-1)
    angle = 2 * torch.atan2(sin, q[:, 0])
    scale = torch.where(sin > 1e-12, angle / sin.clamp_min(1e-300), torch.full_like(sin, 2.0))
    return q[:, 1:] * scale[:, None]


FRONTAL = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # cam2world rotation looking along -z


def head_in_frontal_pose(camera: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` axis-angle global pose under which a frontal camera (looking along -z) sees the head as
    ``camera (B, 25)`` sees the unrotated head: ``R_f R_c^T`` (cam2world rotations). Its y component is the head's
    yaw in the picture (positive: nose toward +x, the subject's left)."""
    c2w, _ = split_camera(camera.double())
    return matrix_to_axis_angle(FRONTAL @ c2w[:, :3, :3].transpose(1, 2))


def geodesic_degrees(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle (degrees) of the relative rotation ``r1^T r2`` for ``(N, 3, 3)`` rotation matrices."""
    rel = r1.transpose(-1, -2).double() @ r2.double()
    cos = (rel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    skew = torch.stack([rel[..., 2, 1] - rel[..., 1, 2], rel[..., 0, 2] - rel[..., 2, 0], rel[..., 1, 0] - rel[..., 0, 1]], -1)
    sin = skew.norm(dim=-1) / 2
    return torch.rad2deg(torch.atan2(sin, cos))  # stable near 0 and 180 degrees, unlike acos


def head_in_camera_rotation(camera: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Rotation of the head frame in camera axes: ``R_w2c @ R_global`` ``(N, 3, 3)``.

    Equals the camera's world-to-camera rotation when the global pose is zero (the generators'
    convention), and stays comparable when an estimator puts head rotation into the global pose instead.
    """
    c2w, _ = split_camera(camera.double())
    return c2w[:, :3, :3].transpose(1, 2) @ axis_angle_to_matrix(pose[:, 0:3].double())


def per_sample_rotation_error_deg(cam_g: torch.Tensor, pose_g: torch.Tensor, cam_e: torch.Tensor, pose_e: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (degrees) between given and estimated head-in-camera rotations, per sample."""
    return geodesic_degrees(head_in_camera_rotation(cam_g, pose_g), head_in_camera_rotation(cam_e, pose_e))


def per_sample_vertex_distance(verts_a: torch.Tensor, verts_b: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Euclidean distance between corresponding vertices ``(N, V, 3)``, optionally over ``region``
    (vertex indices); same units as the vertices."""
    if region is not None:
        verts_a, verts_b = verts_a[:, region], verts_b[:, region]
    return (verts_a.double() - verts_b.double()).norm(dim=-1).mean(dim=1)
