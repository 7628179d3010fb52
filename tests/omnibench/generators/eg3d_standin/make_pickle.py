"""``python make_pickle.py CHECKOUT OUT FAMILY [SEED [SIZE [BALLAST_MB]]]``: a ``network-snapshot`` style pickle
of the stand-in checkout's generator (``{G, D, G_ema, augment_pipe, training_set_kwargs}``, written with plain
``pickle`` the way EG3D's training loop does). FAMILY: ``eg3d``, ``next3d``, ``omniavatar``, or ``stylegan2`` (a
pickle of another family: a plain StyleGAN2-style generator). SIZE ``small`` (tests: 16 px rendering, 12 depth
samples, 32 px images) or ``large`` (benchmarks: 64 px, 48 samples, 128 px); BALLAST_MB adds that many MB of
buffers (200 tensors) to G and G_ema together, to time reading files as large as real snapshots."""

import copy
import pickle
import sys

import torch


def main(checkout: str, out: str, family: str, seed: int = 0, size: str = "small", ballast_mb: int = 0) -> None:
    sys.path.insert(0, checkout)
    import dnnlib

    torch.manual_seed(seed)
    rendering = {"image_resolution": 32, "disparity_space_sampling": False, "clamp_mode": "softplus",
                 "c_gen_conditioning_zero": False, "c_scale": 1.0, "superresolution_noise_mode": "none",
                 "depth_resolution": 12, "depth_resolution_importance": 12, "ray_start": 2.25, "ray_end": 3.3,
                 "box_warp": 1, "avg_camera_radius": 2.7, "avg_camera_pivot": [0, 0, 0.2]}
    large = size == "large"
    if large:
        rendering.update(image_resolution=128, depth_resolution=48, depth_resolution_importance=48)
    kwargs = dict(z_dim=16, c_dim=25, w_dim=16, img_resolution=128 if large else 32, img_channels=3, sr_num_fp16_res=0,
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
        G.neural_rendering_resolution = 64 if large else 16  # set after construction, as training does
    if family in ("eg3d", "next3d"):  # EG3D's and Next3D's training loops register it on G after construction
        G.register_buffer("dataset_label_std", torch.rand(25))
    per = ballast_mb * (1 << 20) // 4 // 200
    for i in range(100 if per else 0):  # 100 per network: G and G_ema
        G.register_buffer(f"ballast{i}", torch.randn(per))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    data = {"G": G, "D": torch.nn.Identity(), "G_ema": G_ema, "augment_pipe": None,
            "training_set_kwargs": dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset",
                                                   path="ffhq.zip", resolution=32)}
    with open(out, "wb") as f:
        pickle.dump(data, f)


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], a[3], int(a[4]) if len(a) > 4 else 0, a[5] if len(a) > 5 else "small",
         int(a[6]) if len(a) > 6 else 0)
