"""Camera convention shared by every generator, renderer and protocol (EG3D's 25-value labels).

A camera is a float tensor of shape ``(..., 25)``:

* ``[0:16]``  cam2world 4x4, row-major, OpenCV axes: camera +x right, +y down, +z forward (viewing
  direction). The translation column is the camera centre in world units.
* ``[16:25]`` intrinsics 3x3, row-major, *normalised* by image size: ``[[fx/W, 0, cx/W], [0, fy/H, cy/H],
  [0, 0, 1]]``. EG3D's FFHQ value ``fx/W = fy/H = 4.2647`` (vertical field of view 13.37 deg) is our default.

World frame = the head model's frame: metres, +y up, +z out of the face, +x the subject's left
(FLAME's frame). ``yaw`` moves the camera towards +x (it then sees the subject's left cheek), ``pitch``
raises it; both in radians; yaw = pitch = 0 looks at the face from the front.
"""

from __future__ import annotations

import torch

EG3D_FOCAL = 4.2647
DEFAULT_RADIUS = 1.6  # metres: frames a ~0.38 m tall region (head plus hair) at EG3D's focal length
DEFAULT_LOOK_AT = (0.0, 0.0, 0.0)


def look_at_cam2world(origin: torch.Tensor, target: torch.Tensor, up: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """cam2world ``(B, 4, 4)`` (OpenCV axes) for cameras at ``origin (B, 3)`` looking at ``target (B, 3)``."""
    forward = torch.nn.functional.normalize(target - origin, dim=-1)
    world_up = torch.tensor(up, dtype=origin.dtype, device=origin.device).expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(forward, world_up, dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    m = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    m[:, :3, 0] = right
    m[:, :3, 1] = down
    m[:, :3, 2] = forward
    m[:, :3, 3] = origin
    return m


def intrinsics(focal: float = EG3D_FOCAL, batch: int = 1, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised intrinsics ``(B, 3, 3)`` with principal point at the image centre."""
    k = torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]], dtype=dtype)
    return k.expand(batch, 3, 3).clone()


def orbit_camera(
    yaw: torch.Tensor,
    pitch: torch.Tensor,
    radius: float | torch.Tensor = DEFAULT_RADIUS,
    focal: float = EG3D_FOCAL,
    look_at: tuple[float, float, float] = DEFAULT_LOOK_AT,
) -> torch.Tensor:
    """25-value cameras ``(B, 25)`` on a sphere around ``look_at``; ``yaw``/``pitch`` are ``(B,)`` radians."""
    yaw = torch.as_tensor(yaw, dtype=torch.float32).reshape(-1)
    pitch = torch.as_tensor(pitch, dtype=yaw.dtype).reshape(-1)
    radius_t = torch.as_tensor(radius, dtype=yaw.dtype).expand_as(yaw)
    target = torch.tensor(look_at, dtype=yaw.dtype).expand(yaw.shape[0], 3)
    offset = torch.stack(
        [torch.sin(yaw) * torch.cos(pitch), torch.sin(pitch), torch.cos(yaw) * torch.cos(pitch)], dim=-1
    )
    origin = target + radius_t[:, None] * offset
    c2w = look_at_cam2world(origin, target)
    k = intrinsics(focal, yaw.shape[0], yaw.dtype)
    return torch.cat([c2w.reshape(-1, 16), k.reshape(-1, 9)], dim=-1)


def split_camera(camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 25)`` -> (cam2world ``(B, 4, 4)``, normalised intrinsics ``(B, 3, 3)``)."""
    return camera[..., :16].reshape(*camera.shape[:-1], 4, 4), camera[..., 16:25].reshape(*camera.shape[:-1], 3, 3)


def project(points: torch.Tensor, camera: torch.Tensor, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points ``(B, N, 3)`` to pixel coordinates ``(B, N, 2)`` (x right, y down, pixel
    centres at +0.5) and camera-space depth ``(B, N)`` (metres along the optical axis)."""
    c2w, k = split_camera(camera)
    w2c = torch.linalg.inv(c2w)
    p = points @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
    z = p[..., 2]
    uv = p[..., :2] / z[..., None]
    px = (uv[..., 0] * k[:, None, 0, 0] + k[:, None, 0, 2]) * resolution
    py = (uv[..., 1] * k[:, None, 1, 1] + k[:, None, 1, 2]) * resolution
    return torch.stack([px, py], dim=-1), z


def yaw_pitch_of(camera: torch.Tensor, look_at: tuple[float, float, float] = DEFAULT_LOOK_AT) -> torch.Tensor:
    """Inverse of :func:`orbit_camera`: ``(B, 2)`` yaw and pitch (radians) of the camera centre."""
    c2w, _ = split_camera(camera)
    d = c2w[:, :3, 3] - torch.tensor(look_at, dtype=camera.dtype, device=camera.device)
    d = torch.nn.functional.normalize(d, dim=-1)
    pitch = torch.asin(d[:, 1].clamp(-1, 1))
    yaw = torch.atan2(d[:, 0], d[:, 2])
    return torch.stack([yaw, pitch], dim=-1)
