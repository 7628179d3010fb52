"""Volume renderer: rays from EG3D cameras, stratified coarse samples inside the head box, importance
samples from the coarse weights, and alpha compositing of density and features.

Conventions: world = head frame (metres); cameras are 25-value EG3D labels (``omnibench.cameras``);
``t`` is the distance along the unit ray direction; the returned depth is along the optical axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from omnibench.cameras import split_camera

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # points (B,N,3) -> sigma (B,N), f (B,N,F)


@dataclass
class Rays:
    origins: torch.Tensor  # (B, R, 3)
    dirs: torch.Tensor  # (B, R, 3) unit, world
    z_factor: torch.Tensor  # (B, R) cosine between ray and optical axis (depth = t * z_factor)


def camera_rays(camera: torch.Tensor, res: int) -> Rays:
    """One ray through each pixel centre of a ``res x res`` image (row-major, y down)."""
    c2w, k = split_camera(camera)
    b = camera.shape[0]
    ij = (torch.arange(res, dtype=camera.dtype, device=camera.device) + 0.5) / res
    v, u = torch.meshgrid(ij, ij, indexing="ij")
    x = (u.reshape(1, -1) - k[:, 0, 2:3]) / k[:, 0, 0:1]
    y = (v.reshape(1, -1) - k[:, 1, 2:3]) / k[:, 1, 1:2]
    d_cam = torch.nn.functional.normalize(torch.stack([x, y, torch.ones_like(x)], dim=-1), dim=-1)
    dirs = d_cam @ c2w[:, :3, :3].transpose(1, 2)
    origins = c2w[:, None, :3, 3].expand(b, res * res, 3)
    return Rays(origins, dirs, d_cam[..., 2])


def box_intersection(rays: Rays, center: torch.Tensor, half: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slab test against the cube ``center +- half``: (near, far, hit) per ray."""
    inv = 1.0 / torch.where(rays.dirs.abs() < 1e-9, torch.full_like(rays.dirs, 1e-9), rays.dirs)
    t0 = (center - half - rays.origins) * inv
    t1 = (center + half - rays.origins) * inv
    near = torch.minimum(t0, t1).amax(dim=-1).clamp(min=0)
    far = torch.maximum(t0, t1).amin(dim=-1)
    hit = far > near
    far = torch.where(hit, far, near + 1e-3)
    return near, far, hit


def composite(sigma: torch.Tensor, feats: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha compositing along the last sample axis. ``sigma (B,R,S)``, ``feats (B,R,S,F)``, ``t (B,R,S)``
    -> (features (B,R,F), expected t (B,R), opacity (B,R), weights (B,R,S))."""
    delta = torch.cat([t[..., 1:] - t[..., :-1], torch.full_like(t[..., :1], 1e-3)], dim=-1)
    alpha = 1 - torch.exp(-sigma * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], dim=-1), dim=-1)[..., :-1]
    w = alpha * trans
    acc = w.sum(-1)
    feat = (w[..., None] * feats).sum(-2)
    depth = (w * t).sum(-1) / acc.clamp(min=1e-6)
    return feat, depth, acc, w


Jitter = torch.Generator | Sequence[torch.Generator]


def uniform(generator: Jitter, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """U[0, 1) of ``shape`` (batch first), drawn on the generator's device and then moved, so a seed gives the
    same jitter on any device. A sequence holds one generator per image (training: keyed by the sample's
    global index, so the jitter does not depend on how the batch is split over processes)."""
    if isinstance(generator, torch.Generator):
        return torch.rand(*shape, generator=generator, dtype=dtype, device=generator.device).to(device)
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} jitter generators for a batch of {shape[0]}")
    return torch.stack([torch.rand(*shape[1:], generator=g, dtype=dtype, device=g.device) for g in generator]).to(device)


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int, generator: Jitter | None) -> torch.Tensor:
    """Inverse-CDF samples ``(..., n)`` from piecewise-constant ``weights (..., S-1)`` over ``bins (..., S)``."""
    pdf = (weights + 1e-5) / (weights + 1e-5).sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, -1)], dim=-1)
    if generator is None:
        u = torch.linspace(0.5 / n, 1 - 0.5 / n, n, dtype=bins.dtype, device=bins.device).expand(*cdf.shape[:-1], n)
    else:
        u = uniform(generator, (*cdf.shape[:-1], n), bins.dtype, bins.device)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.detach(), u, right=True).clamp(1, cdf.shape[-1] - 1)
    c0, c1 = torch.gather(cdf, -1, idx - 1), torch.gather(cdf, -1, idx)
    b0, b1 = torch.gather(bins, -1, idx - 1), torch.gather(bins, -1, idx)
    frac = (u - c0) / (c1 - c0).clamp(min=1e-8)
    return b0 + frac * (b1 - b0)


@dataclass
class RenderResult:
    features: torch.Tensor  # (B, F, H, W)
    depth: torch.Tensor  # (B, H, W) along the optical axis, metres
    opacity: torch.Tensor  # (B, H, W)
    points: torch.Tensor  # (B, R*S, 3) every sample evaluated (for L_prior)
    sigma: torch.Tensor  # (B, R*S)


def render(field: Field, camera: torch.Tensor, res: int, center: torch.Tensor, half: float,
           n_coarse: int, n_fine: int, generator: Jitter | None = None) -> RenderResult:
    """Render ``field`` for ``camera (B, 25)`` at ``res x res``; ``generator`` (one, or one per image) jitters
    samples (training); None: midpoints and a deterministic inverse CDF."""
    rays = camera_rays(camera, res)
    b, r = rays.dirs.shape[:2]
    near, far, hit = box_intersection(rays, center, half)
    steps = torch.linspace(0, 1, n_coarse + 1, dtype=camera.dtype, device=camera.device)
    lo, hi = steps[:-1], steps[1:]
    if generator is None:
        frac = (lo + hi) / 2
        frac = frac.expand(b, r, n_coarse)
    else:
        frac = lo + (hi - lo) * uniform(generator, (b, r, n_coarse), camera.dtype, camera.device)
    t_c = near[..., None] + (far - near)[..., None] * frac

    def evaluate(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pts = rays.origins[:, :, None] + rays.dirs[:, :, None] * t[..., None]
        sigma, f = field(pts.reshape(b, -1, 3))
        sigma = sigma.reshape(b, r, -1) * hit[..., None]
        return sigma, f.reshape(b, r, t.shape[-1], -1), pts

    sig_c, f_c, p_c = evaluate(t_c)
    _, _, _, w_c = composite(sig_c, f_c, t_c)
    with torch.no_grad():
        mids = 0.5 * (t_c[..., 1:] + t_c[..., :-1])
        t_f = sample_pdf(mids, w_c[..., 1:-1].detach(), n_fine, generator)
    sig_f, f_f, p_f = evaluate(t_f)
    t_all, order = torch.sort(torch.cat([t_c, t_f], -1), dim=-1)
    sig_all = torch.gather(torch.cat([sig_c, sig_f], -1), -1, order)
    f_cat = torch.cat([f_c, f_f], -2)
    f_all = torch.gather(f_cat, -2, order[..., None].expand(-1, -1, -1, f_cat.shape[-1]))
    feat, t_exp, acc, _ = composite(sig_all, f_all, t_all)
    depth = torch.where(acc > 1e-3, t_exp * rays.z_factor, torch.full_like(t_exp, float("inf")))
    pts = torch.cat([p_c.reshape(b, -1, 3), p_f.reshape(b, -1, 3)], dim=1)
    sig = torch.cat([sig_c.reshape(b, -1), sig_f.reshape(b, -1)], dim=1)
    return RenderResult(
        features=feat.transpose(1, 2).reshape(b, -1, res, res),
        depth=depth.reshape(b, res, res),
        opacity=acc.reshape(b, res, res),
        points=pts,
        sigma=sig,
    )
