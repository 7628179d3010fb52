"""The AniFaceGAN-style baseline generator (Wu et al., "AniFaceGAN: Animatable 3D-Aware Face Image Generation
for Video Avatars", NeurIPS 2022, arXiv 2210.06465), rebuilt on OmniAvatar's tri-plane backbone.

A template radiance field in a canonical space (neutral expression, jaw and neck) conditioned on the latent and
on the identity coefficients, and an expression-driven deformation field ``D`` (:mod:`deformation`) that maps
every observation-space ray sample ``x`` to ``xbar = x + D(x | alpha, beta, theta)``, where the template is read.
No semantic SDF ``W``, no ``L_prior``, no ``L_enc``: the deformation learns expression by 3D-level imitation of
the head model (:mod:`imitation`). Mapping, tri-planes, decoder (static: the template holds no expression),
renderer and super-resolution are OmniAvatar's, so a comparison with it isolates the method; the deviations from
the paper (GRAM radiance manifolds, BFM coefficients, the density/colour corrections of its deformation network)
are listed in docs/reference-model.md.
"""

from __future__ import annotations

import torch

from reference_model.gan.config import GANConfig
from reference_model.gan.deformation import DeformationField, deformation_conditioning
from reference_model.gan.generator import OmniAvatarG
from reference_model.gan.mapping import MappingNetwork


class AniFaceGANG(OmniAvatarG):
    def __init__(self, cfg: GANConfig) -> None:
        if cfg.method != "anifacegan" or cfg.use_sdf or cfg.dynamic:
            raise ValueError("AniFaceGANG needs a config with method='anifacegan', use_sdf=False and dynamic=False")
        super().__init__(cfg, None)
        # AniFaceGAN's template field reads the identity coefficients beside the noise latent
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim + cfg.n_shape, cfg.w_dim, cfg.mapping_layers)
        self.deformation = DeformationField(cfg.n_shape, cfg.n_expression, cfg.deform_hidden, cfg.deform_layers,
                                            cfg.deform_pe_frequencies, cfg.box_center, cfg.box_half)

    def mapping_conditioning(self, camera: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """``[camera (B, 25), shape (B, n_shape)]``."""
        return torch.cat([camera, shape], dim=1)

    def deform(self, points: torch.Tensor, shape: torch.Tensor, expression: torch.Tensor,
               pose: torch.Tensor) -> torch.Tensor:
        """``D``'s offsets ``(B, N, 3)`` metres at ``points (B, N, 3)`` for controls with columns already fitted."""
        return self.deformation(points, deformation_conditioning(shape, expression, pose))

    def warp(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor):
        cond = deformation_conditioning(shape, expression, pose)
        return lambda points: (points + self.deformation(points, cond), None)
