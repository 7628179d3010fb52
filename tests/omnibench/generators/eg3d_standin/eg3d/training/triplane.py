"""Toy EG3D ``TriPlaneGenerator``: EG3D's constructor, ``mapping``/``synthesis``/``forward`` signatures and
output keys; a StyleGAN-like backbone makes tri-planes, a small decoder and a stratified volume renderer make a
``neural_rendering_resolution`` image and expected ray distance, a toy super-resolution the final image."""

import torch
from torch_utils import persistence

from training.networks_stylegan2 import FullyConnectedLayer
from training.networks_stylegan2 import Generator as StyleGAN2Backbone
from training.superresolution import SuperresolutionToy
from training.volumetric_rendering.ray_sampler import RaySampler
from training.volumetric_rendering.renderer import ImportanceRenderer

PLANE_CHANNELS = 8
PLANE_RES = 16


@persistence.persistent_class
class TriPlaneGenerator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, sr_num_fp16_res=0, mapping_kwargs={},
                 rendering_kwargs={}, sr_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.renderer = ImportanceRenderer()
        self.ray_sampler = RaySampler()
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=PLANE_RES,
                                          img_channels=PLANE_CHANNELS * 3, mapping_kwargs=mapping_kwargs,
                                          **synthesis_kwargs)
        self.superresolution = SuperresolutionToy(3, img_resolution, sr_num_fp16_res=sr_num_fp16_res, **sr_kwargs)
        self.decoder = OSGDecoder(PLANE_CHANNELS, {"decoder_output_dim": 3})
        self.neural_rendering_resolution = 32
        self.rendering_kwargs = rendering_kwargs
        self._last_planes = None

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        if self.rendering_kwargs["c_gen_conditioning_zero"]:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0), truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def synthesis(self, ws, c, neural_rendering_resolution=None, update_emas=False, cache_backbone=False,
                  use_cached_backbone=False, **synthesis_kwargs):
        cam2world, intrinsics = c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3)
        if neural_rendering_resolution is None:
            neural_rendering_resolution = self.neural_rendering_resolution
        else:
            self.neural_rendering_resolution = neural_rendering_resolution
        n = neural_rendering_resolution
        origins, dirs = self.ray_sampler(cam2world, intrinsics, n)
        planes = self.backbone.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)
        planes = planes.view(len(planes), 3, PLANE_CHANNELS, PLANE_RES, PLANE_RES)
        rgb, depth, _ = self.renderer(planes, self.decoder, origins, dirs, self.rendering_kwargs)
        rgb_image = rgb.permute(0, 2, 1).reshape(-1, 3, n, n)
        depth_image = depth.reshape(-1, 1, n, n)
        sr_image = self.superresolution(rgb_image, ws, noise_mode=synthesis_kwargs.get("noise_mode", "random"))
        return {"image": sr_image, "image_raw": rgb_image, "image_depth": depth_image}

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, neural_rendering_resolution=None,
                update_emas=False, cache_backbone=False, use_cached_backbone=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(ws, c, neural_rendering_resolution=neural_rendering_resolution,
                              update_emas=update_emas, **synthesis_kwargs)


class OSGDecoder(torch.nn.Module):
    """Features (B, N, C) and points (B, N, 3) -> density logits (B, N) and colour (B, N, 3) in [0, 1]; the
    density has a sphere of radius 0.45 units at (0, 0, 0.05) as its prior."""

    def __init__(self, n_features, options):
        super().__init__()
        self.net = torch.nn.Sequential(FullyConnectedLayer(n_features, 16), torch.nn.Softplus(),
                                       FullyConnectedLayer(16, 1 + options["decoder_output_dim"]))

    def forward(self, features, points, conditioning=None):
        x = self.net(features)
        radius = (points - points.new_tensor([0.0, 0.0, 0.05])).norm(dim=-1)
        sigma = x[..., 0] + 40 * (0.45 - radius)
        return sigma, torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
