"""Rays through pixel centres ``(i + 0.5) / n`` of an OpenCV camera with normalised intrinsics."""

import torch


class RaySampler(torch.nn.Module):
    def forward(self, cam2world, intrinsics, resolution):
        n, dev = resolution, cam2world.device
        v, u = torch.meshgrid((torch.arange(n, device=dev) + 0.5) / n, (torch.arange(n, device=dev) + 0.5) / n,
                              indexing="ij")
        fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
        cx, cy = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None]
        x = (u.reshape(1, -1) - cx) / fx
        y = (v.reshape(1, -1) - cy) / fy
        d = torch.stack([x, y, torch.ones_like(x)], -1)
        d = d / d.norm(dim=-1, keepdim=True)
        dirs = torch.einsum("bij,bnj->bni", cam2world[:, :3, :3], d)
        origins = cam2world[:, None, :3, 3].expand_as(dirs)
        return origins, dirs
