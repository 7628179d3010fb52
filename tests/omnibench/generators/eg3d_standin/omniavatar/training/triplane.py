"""Toy OmniAvatar ``TriPlaneGenerator``: EG3D's, with ``c`` = 25 camera values + ``feature_dim`` (206) FLAME
values ``[shape 100 | expression 100 | 3 | jaw 3]``; the mapping sees ``c[..., :c_dim]``, the decoder the FLAME
values (perturbed by ``decoder.pose_perturb_magtinude``), and ``rendering_kwargs['det_sampling']`` switches the
depth jitter off."""

import torch
from torch_utils import persistence
from training.im3dmm_network import IGRModel
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
        self.renderer = ImportanceRenderer(det_sampling_supported=True)
        self.ray_sampler = RaySampler()
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=PLANE_RES,
                                          img_channels=PLANE_CHANNELS * 3, mapping_kwargs=mapping_kwargs)
        self.superresolution = SuperresolutionToy(3, img_resolution, **sr_kwargs)
        self.decoder = FlameDecoder(PLANE_CHANNELS, rendering_kwargs["feature_dim"])
        self.neural_rendering_resolution = 32
        self.rendering_kwargs = rendering_kwargs

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        c = c[..., :self.c_dim]
        if self.rendering_kwargs["c_gen_conditioning_zero"]:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0), truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def synthesis(self, ws, c, neural_rendering_resolution=None, update_emas=False, cache_backbone=False,
                  use_cached_backbone=False, **synthesis_kwargs):
        cam2world, intrinsics = c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3)
        flame = c[..., -self.rendering_kwargs["feature_dim"]:]
        n = neural_rendering_resolution or self.neural_rendering_resolution
        origins, dirs = self.ray_sampler(cam2world, intrinsics, n)
        planes = self.backbone.synthesis(ws).view(len(ws), 3, PLANE_CHANNELS, PLANE_RES, PLANE_RES)
        rgb, depth, opacity = self.renderer(planes, self.decoder, origins, dirs, self.rendering_kwargs, flame)
        rgb_image = rgb.permute(0, 2, 1).reshape(-1, 3, n, n)
        sr_image = self.superresolution(rgb_image, ws, noise_mode=synthesis_kwargs.get("noise_mode", "random"))
        mask = opacity.reshape(-1, 1, n, n) * (1 + 2 * 0.001) - 0.001
        return {"image": sr_image, "image_raw": rgb_image, "image_depth": depth.reshape(-1, 1, n, n), "image_mask": mask}

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, neural_rendering_resolution=None,
                update_emas=False, cache_backbone=False, use_cached_backbone=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, neural_rendering_resolution=neural_rendering_resolution, **synthesis_kwargs)


class FlameDecoder(torch.nn.Module):
    def __init__(self, n_features, feature_dim):
        super().__init__()
        self.im3dmm = IGRModel(feature_dim, n_features)
        self.net = torch.nn.Sequential(FullyConnectedLayer(n_features, 16), torch.nn.Softplus(),
                                       FullyConnectedLayer(16, 4))
        self.pose_perturb_magtinude = 0.1  # (sic) the name OmniAvatar's script switches off

    def forward(self, features, points, flame):
        code = flame.clone()
        code[:, -106:] = code[:, -106:] + torch.randn_like(code[:, -106:]) * self.pose_perturb_magtinude
        x = self.net(features + self.im3dmm(code * 3)[:, None])
        radius = (points - points.new_tensor([0.0, 0.0, 0.05])).norm(dim=-1)
        return x[..., 0] + 40 * (0.45 - radius), torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001
