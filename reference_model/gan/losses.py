"""Stage II losses: adversarial (non-saturating logistic) with R1, ``L_prior`` and ``L_enc``.

``L_prior = mean_x exp(-gamma |s(x|p)|) * |sigma(x|z,p) - sigma*(x|p)|`` with
``sigma* = (1/kappa) * Sigmoid(-s/kappa)`` (units: s, kappa in metres; sigma, sigma* in 1/m).
``L_enc`` compares the frozen encoder's estimates ``(beta~, theta~)`` on generated images with the input
controls: parameter distance ``||beta~ - beta|| + ||theta~ - theta||``, FLAME vertex distance and 3D
landmark distance between ``S(alpha, beta~, theta~)`` and ``S(alpha, beta, theta)`` (metres).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def prior_target(s: torch.Tensor, kappa: float) -> torch.Tensor:
    return torch.sigmoid(-s / kappa) / kappa


def prior_weight(w: float, w_final: float | None, start: int, end: int, step: int) -> float:
    """Weight of ``L_prior`` at training ``step``: ``w`` until ``start``, linear to ``w_final`` at ``end``, then
    ``w_final``; ``w_final is None`` keeps ``w`` throughout."""
    if w_final is None or step <= start:
        return w
    if step >= end:
        return w_final
    return w + (w_final - w) * (step - start) / (end - start)


def prior_loss(sigma: torch.Tensor, s: torch.Tensor, kappa: float, gamma: float) -> torch.Tensor:
    return (torch.exp(-gamma * s.abs()) * (sigma - prior_target(s, kappa)).abs()).mean()


def g_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def d_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: list[torch.Tensor], gamma: float) -> torch.Tensor:
    grads = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return 0.5 * gamma * sum(g.square().sum(dim=(1, 2, 3)) for g in grads).mean()


def enc_loss(encoder, head, image: torch.Tensor, shape: torch.Tensor, expression: torch.Tensor,
             pose: torch.Tensor, w_vertex: float, w_landmark: float,
             camera: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Terms of ``L_enc`` (``total`` weighted). ``pose (B, 15)``: the encoder estimates indices 3:9;
    ``camera (B, 25)``: the cameras G rendered ``image`` with (used by a face-aligned encoder)."""
    est_expr, est_nj = encoder(image, camera)
    n_e = est_expr.shape[1]
    expr = expression[:, :n_e] if expression.shape[1] >= n_e else F.pad(expression, (0, n_e - expression.shape[1]))
    param = (est_expr - expr).norm(dim=1).mean() + (est_nj - pose[:, 3:9]).norm(dim=1).mean()
    pose_est = torch.cat([pose[:, :3], est_nj, pose[:, 9:]], dim=1)
    out_est = head(shape=shape, expression=est_expr, pose=pose_est)
    with torch.no_grad():
        out_ref = head(shape=shape, expression=expr, pose=pose)
    vertex = (out_est.vertices - out_ref.vertices).norm(dim=-1).mean()
    landmark = (out_est.landmarks3d - out_ref.landmarks3d).norm(dim=-1).mean()
    return {"param": param, "vertex": vertex, "landmark": landmark,
            "total": param + w_vertex * vertex + w_landmark * landmark}
