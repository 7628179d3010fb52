"""The geometry-guided generator ``G(z, c, p)`` of OmniAvatar Stage II.

mapping (z, c) -> w -> tri-planes in the canonical space; for every ray sample ``x`` of the observation
space the frozen semantic SDF gives ``(s, xbar) = W(x | p)``; the tri-planes are read at ``xbar``, the
dynamic decoder turns the features and ``phi(beta, theta)`` into density and features, the volume
renderer composites them, and super-resolution produces the final image. ``use_sdf=False`` is plain
EG3D (tri-planes read at ``x``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reference_model.gan.config import GANConfig
from reference_model.gan.decoder import DynamicDecoder
from reference_model.gan.mapping import MappingNetwork
from reference_model.gan.renderer import Jitter, render
from reference_model.gan.superresolution import SuperResolution
from reference_model.gan.synthesis import TriplaneSynthesis
from reference_model.gan.triplane import sample_triplanes


def fit_columns(t: torch.Tensor, n: int) -> torch.Tensor:
    """Truncate or zero-pad the coefficient axis of ``t (B, K)`` to ``n``."""
    return t[:, :n] if t.shape[1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[1]))


@dataclass
class GOutput:
    image: torch.Tensor  # (B, 3, R, R) in [0, 1]
    image_raw: torch.Tensor  # (B, 3, r, r) raw neural rendering
    depth: torch.Tensor  # (B, r, r) metres along the optical axis (inf where empty)
    mask: torch.Tensor  # (B, r, r) accumulated opacity
    sigma: torch.Tensor  # (B, S) density at every evaluated sample (1/m)
    s: torch.Tensor | None  # (B, S) W's signed distance at those samples (metres), None without W


class OmniAvatarG(nn.Module):
    def __init__(self, cfg: GANConfig, sdf: nn.Module | None) -> None:
        super().__init__()
        # W's Softplus(beta=100) drives most pre-activations far negative, where exp() underflows to
        # denormals; on x86 CPUs those are ~6x slower (measured: 0.8 s of a 1.9 s tiny step). Flushing them
        # to zero changes values below 1e-38 only.
        torch.set_flush_denormal(True)
        if cfg.use_sdf and sdf is None:
            raise ValueError("use_sdf=True needs a Stage I SDF")
        if cfg.dynamic_gate > 0 and not (cfg.use_sdf and cfg.dynamic):
            raise ValueError("dynamic_gate needs W (use_sdf) and the dynamic decoder")
        self.cfg = cfg
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, cfg.mapping_layers)
        self.synthesis = TriplaneSynthesis(cfg.w_dim, cfg.synthesis_channels, cfg.triplane_res, cfg.triplane_channels)
        self.decoder = DynamicDecoder(cfg.triplane_channels, cfg.n_expression, cfg.decoder_hidden,
                                      cfg.feature_channels, cfg.expr_embed, cfg.density_scale, cfg.dynamic,
                                      cfg.density_shift)
        self.superres = SuperResolution(cfg.feature_channels, cfg.sr_channels, cfg.image_res, cfg.w_dim, cfg.sr_style)
        self.sdf = sdf if cfg.use_sdf else None
        if self.sdf is not None:
            self.sdf.requires_grad_(False)
        self.register_buffer("box_center", torch.tensor(cfg.box_center, dtype=torch.float32))

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("sdf.")]

    def mapping_conditioning(self, camera: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """What the mapping network is conditioned on besides ``z``: the camera ``(B, 25)``."""
        return camera

    def warp(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor):
        """The map from observation points ``(B, N, 3)`` to ``(xbar (B, N, 3), s (B, N) | None)`` for this batch's
        controls (columns already fitted): W's canonical correspondence and signed distance, or the identity
        without W (plain EG3D)."""
        if self.sdf is None:
            return lambda points: (points, None)
        from reference_model.sdf.data import conditioning

        cond = conditioning(shape, expression, pose, self.sdf.cfg).to(shape)

        def warp(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            with torch.no_grad():
                s, xbar = self.sdf.forward_cond(points, cond)
            return xbar, s

        return warp

    def forward(self, z: torch.Tensor, camera: torch.Tensor, shape: torch.Tensor, expression: torch.Tensor,
                pose: torch.Tensor, truncation_psi: float = 1.0, camera_cond: torch.Tensor | None = None,
                generator: Jitter | None = None, update_w_avg: bool = False) -> GOutput:
        cfg = self.cfg
        shape, expression = fit_columns(shape, cfg.n_shape), fit_columns(expression, cfg.n_expression)
        c = self.mapping_conditioning(camera if camera_cond is None else camera_cond, shape)
        w = self.mapping(z, c, truncation_psi, update_w_avg)
        planes = self.synthesis(w)
        s_store: list[torch.Tensor] = []
        warp = self.warp(shape, expression, pose)

        def field(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            xbar, s = warp(points)
            if s is not None:
                s_store.append(s)
            feats = sample_triplanes(planes, xbar, self.box_center, cfg.box_half)
            gate = torch.exp(-s.abs() / cfg.dynamic_gate) if cfg.dynamic_gate > 0 else None  # __init__ refuses a gate without W
            return self.decoder(feats, expression, pose, gate)

        r = render(field, camera, cfg.neural_res, self.box_center, cfg.box_half, cfg.samples_coarse,
                   cfg.samples_fine, generator)
        image = self.superres(r.features, w)
        return GOutput(
            image=image,
            image_raw=r.features[:, :3].clamp(0, 1),
            depth=r.depth,
            mask=r.opacity,
            sigma=r.sigma,
            s=torch.cat(s_store, dim=1) if s_store else None,
        )
