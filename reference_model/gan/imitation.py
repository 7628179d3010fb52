"""AniFaceGAN's 3D-level imitative learning, against omnibench's head model (FLAME layout).

For the requested controls the head model gives the observation mesh ``S(alpha, beta, theta)`` and the canonical
mesh ``S(alpha, 0, theta_0)`` (expression, jaw and neck at zero; global rotation at zero in both, as the
renderer's world is the head frame). Points ``p`` are drawn on the observation surface (area-weighted faces,
uniform barycentrics) and pushed along the face normal by ``N(0, offset_std)`` metres; each carries the
displacement of its surface point, ``t = S_canonical(p) - S_observation(p)`` (AniFaceGAN assigns a sample near
the mesh the deformation of its mesh point the same way). Then

* ``L_imitate = mean_p || D(p | alpha, beta, theta) - t(p) ||``: the deformation field imitates the head model's
  displacement for the requested expression (metres);
* ``L_neutral = mean_p || D(p | alpha, 0, theta_0) ||``: with a neutral expression the observation space is the
  canonical one (AniFaceGAN's neutral-face consistency), so ``D`` carries the expression and only it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from omnibench.heads.landmarks import barycentric_points


@dataclass
class ImitationTargets:
    points: torch.Tensor  # (B, N, 3) observation-space points on / near the expressive surface, metres
    displacement: torch.Tensor  # (B, N, 3) canonical minus observation position of their surface point, metres
    neutral_expression: torch.Tensor  # (B, E) zeros: the controls of the canonical space
    neutral_pose: torch.Tensor  # (B, 15) pose with global, neck and jaw at zero (eyes kept)


def _face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    tri = verts[:, faces]  # (B, F, 3, 3)
    n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@torch.no_grad()
def imitation_targets(head, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor, n_points: int,
                      offset_std: float, generators: list[torch.Generator]) -> ImitationTargets:
    """Samples and targets for ``B`` controls (shape ``(B, S)``, expression ``(B, E)``, pose ``(B, 15)``). Sample
    ``i``'s draws (``n_points`` face ids, barycentrics, offsets, in that order) come from ``generators[i]`` (CPU)
    alone, so a sample's points do not depend on the batch it is in."""
    b = shape.shape[0]
    obs_pose = pose.clone()
    obs_pose[:, :3] = 0
    can_pose = obs_pose.clone()
    can_pose[:, 3:9] = 0
    zeros = torch.zeros_like(expression)
    obs = head(shape=shape, expression=expression, pose=obs_pose).vertices
    can = head(shape=shape, expression=zeros, pose=can_pose).vertices
    faces = head.faces.to(obs.device)
    tri = head.template.to(obs)[faces]  # area weights of the mean head: the same faces for every sample
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1).norm(dim=-1)
    if len(generators) != b:
        raise ValueError(f"{b} samples need {b} generators, got {len(generators)}")
    weights = (area / area.sum()).cpu()
    draws = []
    for g in generators:
        fid = torch.multinomial(weights, n_points, replacement=True, generator=g)
        draws.append((fid, torch.rand(n_points, 2, generator=g), torch.randn(n_points, generator=g) * offset_std))
    face_idx, r, offset = (torch.stack(t).to(obs.device) for t in zip(*draws))
    su = r[..., 0].sqrt()
    bary = torch.stack([1 - su, su * (1 - r[..., 1]), su * r[..., 1]], dim=-1)
    p_obs = barycentric_points(obs, faces, face_idx, bary.to(obs))
    p_can = barycentric_points(can, faces, face_idx, bary.to(obs))
    normals = torch.gather(_face_normals(obs, faces), 1, face_idx[..., None].expand(-1, -1, 3))
    return ImitationTargets(points=p_obs + normals * offset[..., None].to(obs), displacement=p_can - p_obs,
                            neutral_expression=zeros, neutral_pose=can_pose)


def imitation_loss(offsets: torch.Tensor, targets: ImitationTargets) -> torch.Tensor:
    """``L_imitate``: mean distance (metres) between ``D``'s offsets ``(B, N, 3)`` at ``targets.points`` and the
    head model's displacement."""
    return (offsets - targets.displacement).norm(dim=-1).mean()


def neutral_loss(neutral_offsets: torch.Tensor) -> torch.Tensor:
    """``L_neutral``: mean length (metres) of ``D``'s offsets under neutral controls."""
    return neutral_offsets.norm(dim=-1).mean()
