"""``python make_pickle.py CHECKOUT OUT FAMILY [SEED]``: a ``network-snapshot`` style pickle of the stand-in
checkout's generator (``{G, D, G_ema, augment_pipe, training_set_kwargs}``, written with plain ``pickle`` the
way EG3D's training loop does). FAMILY: ``eg3d``, ``next3d``, ``omniavatar``, or ``stylegan2`` (a pickle of
another family: a plain StyleGAN2-style generator)."""

import copy
import pickle
import sys

import torch


def main(checkout: str, out: str, family: str, seed: int = 0) -> None:
    sys.path.insert(0, checkout)
    import dnnlib

    torch.manual_seed(seed)
    rendering = {"image_resolution": 32, "disparity_space_sampling": False, "clamp_mode": "softplus",
                 "c_gen_conditioning_zero": False, "c_scale": 1.0, "superresolution_noise_mode": "none",
                 "depth_resolution": 12, "depth_resolution_importance": 12, "ray_start": 2.25, "ray_end": 3.3,
                 "box_warp": 1, "avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2]}
    kwargs = dict(z_dim=16, c_dim=25, w_dim=16, img_resolution=32, img_channels=3, sr_num_fp16_res=0,
                  mapping_kwargs=dnnlib.EasyDict(num_layers=2), rendering_kwargs=rendering,
                  sr_kwargs=dnnlib.EasyDict(sr_antialias=True))
    if family == "eg3d":
        from training.triplane import TriPlaneGenerator as G_class
    elif family == "next3d":
        from training_avatar_texture.triplane_next3d import TriPlaneGenerator as G_class
        kwargs["topology_path"] = "data/head_template.obj"
    elif family == "omniavatar":
        from training.triplane import TriPlaneGenerator as G_class
        rendering.update(im3dmm_path="pretrained/im3dmm.pth", feature_dim=206, det_sampling=False)
    elif family == "stylegan2":
        from training.networks_stylegan2 import Generator as G_class
        kwargs = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=8, img_channels=3)
    else:
        raise SystemExit(f"unknown family {family}")
    G = G_class(**kwargs).train().requires_grad_(False)
    mapping = G.backbone.mapping if hasattr(G, "backbone") else G.mapping
    mapping.w_avg.copy_(torch.randn_like(mapping.w_avg))
    if hasattr(G, "neural_rendering_resolution"):
        G.neural_rendering_resolution = 16  # set after construction, as training does
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    data = {"G": G, "D": torch.nn.Identity(), "G_ema": G_ema, "augment_pipe": None,
            "training_set_kwargs": dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset",
                                                   path="ffhq.zip", resolution=32)}
    with open(out, "wb") as f:
        pickle.dump(data, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
