"""Dynamic decoder ``(sigma, f) = Phi(M(xbar | z), phi(beta, theta))`` (OmniAvatar's dynamic details).

``phi`` embeds the expression ``beta`` and the jaw/neck pose ``theta``; ``Phi`` is EG3D's small MLP
decoder extended with that embedding. With ``dynamic=False`` the embedding is dropped (ablation). An optional
per-sample ``gate (B, N)`` in [0, 1] scales the embedding at each sample (1: full, 0: the decoder sees a zero code),
so that expression and jaw can act only where the gate is open (the generator's ``dynamic_gate``).
Outputs: ``sigma (B, N)`` density in 1/m (``density_scale * softplus(raw - density_shift)``) and features ``(B, N, F)``
whose first three channels are the raw colour in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def control_conditioning(expression: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """What ``phi`` embeds (and a controls-conditioned D reads besides the camera): ``expression (B, E)`` (the
    columns the generator reads) and the neck and jaw axis-angles of ``pose (B, 15)`` (FLAME layout
    global|neck|jaw|eyes, radians) -> ``(B, E + 6)``."""
    return torch.cat([expression, pose[:, 3:9]], dim=1)


class DynamicDecoder(nn.Module):
    def __init__(self, triplane_channels: int, n_expression: int, hidden: int, out_features: int,
                 expr_embed: int, density_scale: float, dynamic: bool = True,
                 density_shift: float = 1.0) -> None:
        super().__init__()
        self.dynamic, self.density_scale, self.density_shift = dynamic, density_scale, density_shift
        self.phi = nn.Sequential(nn.Linear(n_expression + 6, expr_embed), nn.Softplus(), nn.Linear(expr_embed, expr_embed)) if dynamic else None
        d_in = triplane_channels + (expr_embed if dynamic else 0)
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Softplus(), nn.Linear(hidden, 1 + out_features))

    def forward(self, feats: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                gate: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats (B, N, C)``, ``expression (B, E)``, ``pose (B, 15)``, ``gate (B, N)`` or None ->
        ``sigma (B, N)``, ``f (B, N, F)``."""
        x = feats
        if self.phi is not None:
            code = self.phi(control_conditioning(expression, pose))[:, None, :].expand(-1, feats.shape[1], -1)
            if gate is not None:
                code = code * gate[..., None]
            x = torch.cat([feats, code], dim=-1)
        out = self.net(x)
        sigma = self.density_scale * F.softplus(out[..., 0] - self.density_shift)
        f = torch.sigmoid(out[..., 1:]) * (1 + 2e-3) - 1e-3
        return sigma, f
