"""The deformable semantic SDF ``W(x | p) = (s, xbar)`` (OmniAvatar Stage I).

* Input ``x`` ``(B, N, 3)`` in the head frame (metres), normalised internally by the canonical mesh's
  bounding box (centre ``c``, half-extent ``r``): ``u = (x - c) / r``; positional encoding of ``u`` with
  ``pe_frequencies`` octaves (NeuS style).
* Conditioning ``p`` ``(B, P)`` = ``[shape[:n_shape], expression[:n_expression], neck 3, jaw 3]``, concatenated
  to the input of the first layer and of the skip layer.
* Outputs: ``s`` ``(B, N)`` signed distance in metres (negative inside) and ``xbar`` ``(B, N, 3)`` the
  corresponding point of the canonical space, predicted as ``x + r * delta``.
* Softplus(beta=100) MLP with geometric initialisation (IGR/SAL/NeuS): at step 0 ``s`` is the distance to
  a sphere and ``xbar = x``, and the conditioning weights start at zero.
* Without autograd (W frozen inside Stage II, evaluation) :meth:`SemanticSDF.forward_cond` takes an
  inference path: the conditioning's share of the first and skip layers is computed once per batch
  element instead of once per point, and the softplus is evaluated in place with ``exp2``/``log2``
  (:func:`softplus_inplace`). Same function; differences are float rounding (~1e-7 m).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from reference_model.sdf.config import SDFConfig
from reference_model.sdf.data import conditioning

LOG2E = 1.0 / math.log(2.0)
# Points (over the whole batch) per pass of the inference path. Its activations, 8192 x hidden floats (4 MB
# at hidden 128), stay in cache through the eight element-wise passes of the softplus; one pass over the
# 197 000 coarse points of a 16-image tiny batch went to memory each time and took 2.3x as long (2 threads:
# 1.00 s vs 0.44 s; chunks of 2048 points in all 0.60 s, 4096 0.45 s, 16384 0.47 s). Bit-identical here.
# Sampling the tiny GAN: 139 -> 70 ms an image; W also runs this path inside every GAN training step.
INFERENCE_CHUNK_POINTS = 8192


def softplus_inplace(x: torch.Tensor, beta: float) -> torch.Tensor:
    """``softplus(x; beta) = max(x, 0) + log(1 + exp(-beta |x|)) / beta``, overwriting ``x`` (no autograd).

    ``exp2``/``log2`` instead of ``exp``/``log1p``: on CPU ``log1p`` is not vectorised and the activations
    of W's 197 000 points per tiny GAN step made it a third of the step. ``log2(1 + e)`` loses ``e`` below
    float32 resolution (``e < 6e-8``), an absolute error below ``6e-8 / beta``.
    """
    relu = x.clamp(min=0)
    return x.abs_().mul_(-beta * LOG2E).exp2_().add_(1.0).log2_().mul_(1.0 / (beta * LOG2E)).add_(relu)


class SemanticSDF(nn.Module):
    def __init__(self, cfg: SDFConfig, center: np.ndarray | torch.Tensor, radius: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("center", torch.as_tensor(center, dtype=torch.float32).reshape(3))
        self.register_buffer("radius", torch.tensor(float(radius)))
        self.n_cond = cfg.n_shape + cfg.n_expression + 6
        self.n_pe = 3 + 6 * cfg.pe_frequencies
        d_in = self.n_pe + self.n_cond
        h = cfg.hidden
        self.layers = nn.ModuleList()
        for i in range(cfg.layers):
            fan_in = d_in if i == 0 else h + d_in if i == cfg.skip_layer else h
            self.layers.append(nn.Linear(fan_in, h))
        self.sdf_head = nn.Linear(h, 1)
        self.xbar_head = nn.Linear(h, 3)
        self.act = nn.Softplus(beta=100)
        self._geometric_init()

    def _geometric_init(self, sphere: float = 0.6) -> None:
        h = self.cfg.hidden
        for i, lin in enumerate(self.layers):
            nn.init.zeros_(lin.bias)
            nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(lin.out_features))
            if i == 0:
                lin.weight.data[:, 3:] = 0.0  # PE and conditioning start switched off
            if i == self.cfg.skip_layer:  # input re-enters after the hidden features: keep only xyz
                lin.weight.data[:, h + 3 :] = 0.0
        nn.init.normal_(self.sdf_head.weight, math.sqrt(math.pi) / math.sqrt(h), 1e-4)
        nn.init.constant_(self.sdf_head.bias, -sphere)
        nn.init.zeros_(self.xbar_head.weight)
        nn.init.zeros_(self.xbar_head.bias)

    def encode(self, u: torch.Tensor) -> torch.Tensor:
        """``[u, sin(u), cos(u), sin(2u), cos(2u), ..., cos(2^(K-1) u)]`` for ``u (..., 3)``: ``(..., 3 + 6K)``.

        Octaves ``0, 3, 6, ...`` call ``sin``/``cos``; the two after each by the double-angle formulas
        ``sin 2a = 2 sin a cos a``, ``cos 2a = (cos a - sin a)(cos a + sin a)``: a third of the transcendental
        calls (all twelve were 8 % of a tiny GAN step), within 4e-7 of ``sin(2^k u)`` (the recurrence's error
        roughly doubles an octave, so it restarts every third).
        """
        feats = [u]
        s = c = u
        for k in range(self.cfg.pe_frequencies):
            if k % 3 == 0:
                s, c = torch.sin((2.0**k) * u), torch.cos((2.0**k) * u)
            else:
                s, c = 2.0 * s * c, (c - s) * (c + s)
            feats += [s, c]
        return torch.cat(feats, dim=-1)

    def forward_cond(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (B, N, 3)`` metres, ``cond (B, P)`` -> ``s (B, N)`` metres, ``xbar (B, N, 3)`` metres."""
        if not torch.is_grad_enabled():
            return self._forward_inference(x, cond)
        u = (x - self.center) / self.radius
        inp = torch.cat([self.encode(u), cond[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
        h = inp
        for i, lin in enumerate(self.layers):
            if i == self.cfg.skip_layer:
                h = torch.cat([h, inp], dim=-1) / math.sqrt(2)
            h = self.act(lin(h))
        s = self.sdf_head(h)[..., 0] * self.radius
        xbar = x + self.xbar_head(h) * self.radius
        return s, xbar

    def _forward_inference(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward_cond` without autograd: the layers that read the input are split into their
        positional-encoding and conditioning columns, the latter applied once per batch element, and on CPU
        the points run in chunks of about :data:`INFERENCE_CHUNK_POINTS` (over the batch) that stay in cache."""
        step = max(1, INFERENCE_CHUNK_POINTS // max(1, x.shape[0]))
        if x.device.type != "cpu" or x.shape[1] <= step:  # a GPU wants one large pass
            return self._forward_inference_chunk(x, cond)
        parts = [self._forward_inference_chunk(x[:, i : i + step], cond) for i in range(0, x.shape[1], step)]
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts], dim=1)

    def _forward_inference_chunk(self, x: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pe = self.encode((x - self.center) / self.radius)  # (B, N, n_pe)
        h_dim, skip, beta = self.cfg.hidden, self.cfg.skip_layer, float(self.act.beta)
        h = pe
        for i, lin in enumerate(self.layers):
            w = lin.weight
            if i == 0:  # lin([pe, cond])
                h = torch.matmul(pe, w[:, : self.n_pe].T).add_((cond @ w[:, self.n_pe :].T + lin.bias)[:, None, :])
            elif i == skip:  # lin([h, pe, cond] / sqrt 2)
                wh, wp, wc = w[:, :h_dim], w[:, h_dim : h_dim + self.n_pe], w[:, h_dim + self.n_pe :]
                h = torch.matmul(h, wh.T).add_(torch.matmul(pe, wp.T)).add_((cond @ wc.T)[:, None, :])
                h = h.div_(math.sqrt(2)).add_(lin.bias)
            else:
                h = lin(h)
            h = softplus_inplace(h, beta)
        s = self.sdf_head(h)[..., 0] * self.radius
        xbar = x + self.xbar_head(h) * self.radius
        return s, xbar

    def forward(
        self, x: torch.Tensor, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``W(x | p)`` for FLAME controls ``shape (B, S)``, ``expression (B, E)``, ``pose (B, 15)``."""
        return self.forward_cond(x, conditioning(shape, expression, pose, self.cfg).to(x))


def sdf_and_gradient(
    model: SemanticSDF, x: torch.Tensor, cond: torch.Tensor, create_graph: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(s, xbar, grad_x s)``; the gradient by autograd (kept in the graph for the losses)."""
    x = x.detach().requires_grad_(True)
    s, xbar = model.forward_cond(x, cond)
    (g,) = torch.autograd.grad(s.sum(), x, create_graph=create_graph)
    return s, xbar, g
