"""Toy Next3D ``TriPlaneGenerator``: EG3D's, plus a FLAME mesh ``v`` (B, 5023 + 68, 3) in metres (vertices, then
the 68 landmarks in iBUG order) passed to ``synthesis``/``forward``; the mapping sees the 25 camera values."""

import torch
from torch_utils import persistence
from training.networks_stylegan2 import FullyConnectedLayer
from training.networks_stylegan2 import Generator as StyleGAN2Backbone
from training.superresolution import SuperresolutionToy
from training.triplane import PLANE_CHANNELS, PLANE_RES, OSGDecoder
from training.volumetric_rendering.ray_sampler import RaySampler
from training.volumetric_rendering.renderer import ImportanceRenderer

N_VERTICES, N_LANDMARKS = 5023, 68


@persistence.persistent_class
class TriPlaneGenerator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, topology_path, sr_num_fp16_res=0,
                 mapping_kwargs={}, rendering_kwargs={}, sr_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.topology_path = topology_path
        open(topology_path).close()  # Next3D's constructor reads it (and data/ffhq/*.png) relative to the cwd
        self.renderer = ImportanceRenderer()
        self.ray_sampler = RaySampler()
        self.texture_backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=PLANE_RES,
                                                  img_channels=PLANE_CHANNELS * 3, mapping_kwargs=mapping_kwargs)
        self.backbone = StyleGAN2Backbone(z_dim, c_dim, w_dim, img_resolution=PLANE_RES,
                                          img_channels=PLANE_CHANNELS * 3, mapping_kwargs=mapping_kwargs)
        self.mesh_code = FullyConnectedLayer(9, PLANE_CHANNELS * 3)
        self.superresolution = SuperresolutionToy(3, img_resolution, **sr_kwargs)
        self.decoder = OSGDecoder(PLANE_CHANNELS, {"decoder_output_dim": 3})
        self.neural_rendering_resolution = 32
        self.rendering_kwargs = rendering_kwargs
        self.uv_face_mask = torch.rand(1, 1, 8, 8)  # a plain tensor attribute, as Next3D's (read from a file there)

    def mapping(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        c = c[:, :25]  # remove expression labels
        if self.rendering_kwargs["c_gen_conditioning_zero"]:
            c = torch.zeros_like(c)
        return self.backbone.mapping(z, c * self.rendering_kwargs.get("c_scale", 0), truncation_psi=truncation_psi,
                                     truncation_cutoff=truncation_cutoff, update_emas=update_emas)

    def synthesis(self, ws, c, v, neural_rendering_resolution=None, update_emas=False, cache_backbone=False,
                  use_cached_backbone=False, **synthesis_kwargs):
        assert v.shape[1:] == (N_VERTICES + N_LANDMARKS, 3), v.shape
        cam2world, intrinsics = c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3)
        n = neural_rendering_resolution or self.neural_rendering_resolution
        origins, dirs = self.ray_sampler(cam2world, intrinsics, n)
        lmk = v[:, N_VERTICES:]
        mesh = torch.cat([v[:, :N_VERTICES].mean(1), lmk[:, 48:60].mean(1), lmk[:, 57] - lmk[:, 51]], 1)
        code = torch.tanh(self.mesh_code(mesh * 20)) * self.uv_face_mask.mean() * 2
        planes = self.backbone.synthesis(ws) + self.texture_backbone.synthesis(ws) * 0.5
        planes = planes + code[:, :, None, None]
        planes = planes.view(len(planes), 3, PLANE_CHANNELS, PLANE_RES, PLANE_RES)
        rgb, depth, _ = self.renderer(planes, self.decoder, origins, dirs, self.rendering_kwargs)
        rgb_image = rgb.permute(0, 2, 1).reshape(-1, 3, n, n)
        sr_image = self.superresolution(rgb_image, ws, noise_mode=synthesis_kwargs.get("noise_mode", "random"))
        return {"image": sr_image, "image_raw": rgb_image, "image_depth": depth.reshape(-1, 1, n, n)}

    def forward(self, z, c, v, truncation_psi=1, truncation_cutoff=None, neural_rendering_resolution=None,
                update_emas=False, cache_backbone=False, use_cached_backbone=False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, v, neural_rendering_resolution=neural_rendering_resolution, **synthesis_kwargs)
