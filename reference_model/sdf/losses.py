"""Stage I losses (per point, averaged). Distances in metres; gradients dimensionless.

* ``L_iso`` on surface points N: ``|s|`` (zero level set) and ``||grad s - n||`` (normals).
* ``L_eik`` on N and off-surface points F: ``(||grad s|| - 1)^2``.
* ``L_sem`` on N: ``||xbar - xbar*||``.
* ``L_sdf`` on F (our addition, weight ``w_offsurface``; 0 gives the paper's loss list): ``|s - s*|``
  against the exact signed distance, which removes spurious zero level sets far from the surface.
"""

from __future__ import annotations

import torch

from reference_model.sdf.config import SDFConfig


def stage1_losses(
    s_surf: torch.Tensor,
    g_surf: torch.Tensor,
    xbar_surf: torch.Tensor,
    normals: torch.Tensor,
    canonical: torch.Tensor,
    s_off: torch.Tensor,
    g_off: torch.Tensor,
    off_sdf: torch.Tensor,
    cfg: SDFConfig,
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted sum under key ``total``."""
    terms = {
        "surface": s_surf.abs().mean(),
        "normal": (g_surf - normals).norm(dim=-1).mean(),
        "eikonal": torch.cat([(g_surf.norm(dim=-1) - 1) ** 2, (g_off.norm(dim=-1) - 1) ** 2], dim=1).mean(),
        "semantic": (xbar_surf - canonical).norm(dim=-1).mean(),
        "offsurface": (s_off - off_sdf).abs().mean(),
    }
    terms["total"] = (
        cfg.w_surface * terms["surface"]
        + cfg.w_normal * terms["normal"]
        + cfg.w_eikonal * terms["eikonal"]
        + cfg.w_semantic * terms["semantic"]
        + cfg.w_offsurface * terms["offsurface"]
    )
    return terms
