"""A small tri-plane volume renderer with stratified depth samples and random jitter inside each stratum
(the source of EG3D's run-to-run and batch-composition variation); ``det_sampling`` turns the jitter off
where a checkout supports it."""

import torch


def sample_from_planes(planes, points, box_warp):
    """planes (B, 3, C, P, P), points (B, N, 3) -> features (B, N, C), the mean over the xy, xz, zy planes."""
    coords = 2 * points / box_warp
    pairs = (coords[..., [0, 1]], coords[..., [0, 2]], coords[..., [2, 1]])
    feats = [torch.nn.functional.grid_sample(planes[:, i], p[:, None], align_corners=False)[:, :, 0]
             for i, p in enumerate(pairs)]
    return torch.stack(feats).mean(0).permute(0, 2, 1)


class ImportanceRenderer(torch.nn.Module):
    def __init__(self, det_sampling_supported=False):
        super().__init__()
        self.det_sampling_supported = det_sampling_supported

    def forward(self, planes, decoder, ray_origins, ray_directions, rendering_options, conditioning=None):
        start, end = rendering_options["ray_start"], rendering_options["ray_end"]
        steps = rendering_options["depth_resolution"]
        B, R, _ = ray_origins.shape
        t = torch.linspace(start, end, steps, device=ray_origins.device).view(1, 1, steps, 1).expand(B, R, steps, 1)
        delta = (end - start) / (steps - 1)
        if not (self.det_sampling_supported and rendering_options.get("det_sampling", False)):
            t = t + torch.rand_like(t) * delta
        points = ray_origins[:, :, None] + t * ray_directions[:, :, None]
        feats = sample_from_planes(planes, points.reshape(B, -1, 3), rendering_options["box_warp"])
        sigma, rgb = decoder(feats, points.reshape(B, -1, 3), conditioning)
        sigma, rgb = sigma.view(B, R, steps), rgb.view(B, R, steps, 3)
        alpha = 1 - torch.exp(-torch.nn.functional.softplus(sigma) * delta)
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha + 1e-10], -1), -1)[..., :-1]
        weights = alpha * trans
        total = weights.sum(-1)
        color = (weights[..., None] * rgb).sum(-2)
        depth = (weights * t[..., 0]).sum(-1) / total
        depth = torch.nan_to_num(depth, float("inf")).clamp(start, end)
        return color * 2 - 1, depth, total
