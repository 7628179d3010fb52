"""Camera convention shared by every generator, renderer and protocol (EG3D's 25-value labels).

A camera is a float tensor of shape ``(..., 25)``:

* ``[0:16]``  cam2world 4x4, row-major, OpenCV axes: camera +x right, +y down, +z forward (viewing
  direction). The translation column is the camera centre in world units.
* ``[16:25]`` intrinsics 3x3, row-major, *normalised* by image size: ``[[fx/W, 0, cx/W], [0, fy/H, cy/H],
  [0, 0, 1]]``. EG3D's FFHQ value ``fx/W = fy/H = 4.2647`` (vertical field of view 13.37 deg) is our default.

World frame = the head model's frame: metres, +y up, +z out of the face, +x the subject's left
(FLAME's frame). ``yaw`` moves the camera towards +x (it then sees the subject's left cheek), ``pitch``
raises it; both in radians; yaw = pitch = 0 looks at the face from the front.

A :class:`Framing` names where cameras sit (radius, pivot, focal): ``v1`` (1.6 m from the origin, the whole
head) for protocols v1, ``ffhq`` (EG3D's FFHQ cameras converted to metres, see docs/protocols.md) for v2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omnibench.errors import OmnibenchError

EG3D_FOCAL = 4.2647
DEFAULT_RADIUS = 1.6  # metres: frames a ~0.38 m tall region (head plus hair) at EG3D's focal length
DEFAULT_LOOK_AT = (0.0, 0.0, 0.0)

# Metres per EG3D world unit. Two readings of the FFHQ pipeline disagree by 8 %: Deep3DFaceRecon's BFM is in
# decimetres and EG3D scales its camera positions by 0.27, so 1 unit = 0.1 / 0.27 = 0.370 m; Next3D maps FLAME
# metres onto EG3D's tri-planes with orth_scale 5 and box_warp 1, so 1 unit = 0.400 m. We take the midpoint,
# 0.385 m, and carry the +-0.015 m (+-4 %) as the stated uncertainty of every length derived from it.
EG3D_UNIT_M = 0.385
EG3D_UNIT_M_UNCERTAINTY = 0.015
EG3D_RADIUS_UNITS = 2.7  # FFHQ's avg_camera_radius
EG3D_PIVOT_UNITS = (0.0, 0.0, 0.2)  # FFHQ's avg_camera_pivot


@dataclass(frozen=True)
class Framing:
    """Where the cameras of a protocol or dataset sit: ``radius`` metres from the pivot ``look_at`` (metres,
    head frame), normalised focal ``focal`` (``fx / W``). :attr:`field_m` is the height of the frame at the
    pivot's distance, in metres."""

    name: str
    radius: float
    look_at: tuple[float, float, float]
    focal: float = EG3D_FOCAL

    @property
    def field_m(self) -> float:
        return self.radius / self.focal

    def orbit(self, yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        """``(B, 25)`` cameras at ``yaw``/``pitch`` ``(B,)`` radians on this framing's sphere."""
        return orbit_camera(yaw, pitch, self.radius, self.focal, self.look_at)

    def to_dict(self) -> dict:
        return {"name": self.name, "radius": self.radius, "look_at": list(self.look_at), "focal": self.focal}


# v1 protocols and everything rendered for them: the whole head, hair, neck and margins (0.375 m field).
FRAMING_V1 = Framing("v1", DEFAULT_RADIUS, DEFAULT_LOOK_AT)
# v2: EG3D's FFHQ cameras in metres: radius 2.7 units = 1.0395 m (1.00-1.08 m), pivot (0, 0, 0.2) units =
# (0, 0, 0.077) m (0.074-0.080 m; Next3D puts the FLAME origin within 0.01 m of EG3D's), same focal: a 0.244 m
# field (0.234-0.253 m) at the pivot, chin to forehead as in FFHQ's crops.
FRAMING_FFHQ = Framing(
    "ffhq",
    round(EG3D_RADIUS_UNITS * EG3D_UNIT_M, 4),
    tuple(round(c * EG3D_UNIT_M, 4) for c in EG3D_PIVOT_UNITS),  # type: ignore[arg-type]
)
FRAMINGS: dict[str, Framing] = {f.name: f for f in (FRAMING_V1, FRAMING_FFHQ)}


def recorded_framing(record: dict | None) -> str:
    """The framing name a dataset manifest or a weights sidecar records under ``framing`` (written only when
    not ``v1``, so files from before framings existed read as ``v1``)."""
    return str(((record or {}).get("framing") or {}).get("name", "v1"))


def get_framing(name: str | Framing) -> Framing:
    """Framing by name (``v1``, ``ffhq``); a :class:`Framing` passes through."""
    if isinstance(name, Framing):
        return name
    if name not in FRAMINGS:
        raise OmnibenchError(f"unknown camera framing '{name}'; available: {', '.join(FRAMINGS)}")
    return FRAMINGS[name]


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
