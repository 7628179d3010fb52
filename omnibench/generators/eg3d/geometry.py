"""Cameras and depth between omnibench (metres, any framing) and an EG3D-family model (its own units, orbit
and pivot).

An EG3D-family model renders only its own framing: rays are clipped to ``[ray_start, ray_end]``, and EG3D's
cameras sit on the sphere of radius ``avg_camera_radius`` about the *world origin* (its FFHQ labels:
``dataset_preprocessing/ffhq/preprocess_face_cameras.py``'s ``fix_pose_orig`` scales each camera centre to norm
2.7; its scripts: ``camera_utils.LookAtPoseSampler`` puts the centre on that sphere and aims it at
``avg_camera_pivot``). :func:`place_on_orbit` keeps the protocol camera's rotation (so its viewing direction) and
moves its centre onto that sphere along the line through the pivot, which reproduces ``LookAtPoseSampler`` exactly
for every camera aimed at the pivot (a frontal camera at ``(0, 0, 2.7)``, 2.5 units from the pivot ``(0, 0, 0.2)``).
Lengths convert with :data:`METRES_PER_UNIT`.
"""

from __future__ import annotations

import torch

from omnibench.cameras import EG3D_FOCAL, EG3D_UNIT_M, intrinsics, look_at_cam2world

# Metres per EG3D world unit: a declared constant of the adapter (0.370 m from Deep3DFaceRecon's decimetres and
# EG3D's 0.27 camera scale, 0.400 m from Next3D's orth_scale 5; the midpoint, +-4 %; see omnibench.cameras).
METRES_PER_UNIT = EG3D_UNIT_M
OMNIAVATAR_FOCAL = 1015.0 / 224.0  # OmniAvatar's ffhq_3dmm intrinsics (EG3D FFHQ: EG3D_FOCAL = 4.2647)


def orbit_centres(forward: torch.Tensor, pivot: torch.Tensor, radius: float) -> torch.Tensor:
    """``(B, 3)`` camera centres looking along ``forward`` ``(B, 3)`` (unit) through ``pivot``, at distance ``radius``
    from the world origin: ``pivot - t * forward`` with ``|pivot - t * forward| = radius``, ``t > 0``."""
    p = pivot.to(forward)[None]
    pf = (p * forward).sum(-1, keepdim=True)
    t = pf + (pf * pf - (p * p).sum(-1, keepdim=True) + float(radius) ** 2).clamp_min(0).sqrt()
    return p - t * forward


def place_on_orbit(camera: torch.Tensor, pivot: torch.Tensor, radius: float, focal: float = EG3D_FOCAL) -> torch.Tensor:
    """``(B, 25)`` model cameras: each protocol camera's rotation, its centre on EG3D's orbit (``radius`` from the
    world origin, on the line through ``pivot`` along the camera's +z axis; model units), intrinsics ``focal``
    (normalised)."""
    pose = camera[:, :16].reshape(-1, 4, 4)
    rot = pose[:, :3, :3]
    out = torch.zeros_like(pose)
    out[:, :3, :3] = rot
    out[:, :3, 3] = orbit_centres(rot[:, :, 2], pivot, radius)
    out[:, 3, 3] = 1
    k = intrinsics(focal, camera.shape[0], camera.dtype).to(camera.device)
    return torch.cat([out.reshape(-1, 16), k.reshape(-1, 9)], 1)


def frontal_camera(batch: int, pivot: torch.Tensor, radius: float, focal: float = EG3D_FOCAL) -> torch.Tensor:
    """``(batch, 25)`` frontal model cameras, the conditioning camera of EG3D's own sampling scripts
    (``camera_utils.LookAtPoseSampler.sample(pi/2, pi/2, pivot, radius)``): centre ``(0, 0, radius)`` (EG3D's
    orbit is about the world origin), aimed at the pivot."""
    origin = torch.tensor([[0.0, 0.0, float(radius)]]).expand(batch, 3)
    c2w = look_at_cam2world(origin, pivot.to(torch.float32)[None].expand(batch, 3))
    return torch.cat([c2w.reshape(-1, 16), intrinsics(focal, batch).reshape(-1, 9)], 1)


def ray_depth_to_metres(ray_depth: torch.Tensor, model_camera: torch.Tensor, protocol_camera: torch.Tensor) -> torch.Tensor:
    """Expected ray distance ``(B, 1, n, n)`` in model units -> ``(B, n, n)`` metres along the protocol camera's
    optical axis: ``t * cos(angle to the axis)`` (pixel centres ``(i + 0.5) / n``), times
    :data:`METRES_PER_UNIT`, plus the axial offset between the model camera's centre (in metres) and the
    protocol camera's (both share the rotation, so the offset is one number per image)."""
    n = ray_depth.shape[-1]
    k = model_camera[:, 16:25].reshape(-1, 3, 3)
    centres = (torch.arange(n, dtype=ray_depth.dtype, device=ray_depth.device) + 0.5) / n
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    x = (u[None] - k[:, 0, 2, None, None]) / k[:, 0, 0, None, None]
    y = (v[None] - k[:, 1, 2, None, None]) / k[:, 1, 1, None, None]
    cos = torch.rsqrt(1 + x * x + y * y)
    z = ray_depth[:, 0] * cos * METRES_PER_UNIT
    pose_m, pose_p = model_camera[:, :16].reshape(-1, 4, 4), protocol_camera[:, :16].reshape(-1, 4, 4)
    forward = pose_p[:, :3, 2]
    offset = ((pose_m[:, :3, 3] * METRES_PER_UNIT - pose_p[:, :3, 3]) * forward).sum(-1)
    return z + offset[:, None, None]
