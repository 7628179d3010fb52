"""Stand-in EG3D-style checkouts and their pickles, assembled at test time (see eg3d_standin/README.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

STANDIN = Path(__file__).parent / "eg3d_standin"
CLASS_MODULE = {"eg3d": "training/triplane.py", "next3d": "training_avatar_texture/triplane_next3d.py",
                "omniavatar": "training/triplane.py", "stylegan2": "training/networks_stylegan2.py"}
SIDE_EFFECT = ('import os as _os\n'
               'if _os.environ.get("STANDIN_SIDE_EFFECT"):\n'
               '    open(_os.environ["STANDIN_SIDE_EFFECT"], "a").write("stored source executed\\n")\n')


def make_checkout(dest: Path, family: str = "eg3d", inject: str = "") -> Path:
    """Copy the stand-in checkout for ``family`` to ``dest``; ``inject`` is code put after the imports of the
    generator's module (the module whose source the pickle stores)."""
    shutil.copytree(STANDIN / "eg3d", dest, ignore=shutil.ignore_patterns("__pycache__"))
    if family in ("next3d", "omniavatar"):
        shutil.copytree(STANDIN / family, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    if inject:
        set_injection(dest, family, inject)
    return dest


def set_injection(checkout: Path, family: str, inject: str) -> None:
    """Put ``inject`` (or nothing) after the imports of the generator's module of ``checkout``."""
    path = checkout / CLASS_MODULE[family]
    text = path.read_text().replace(_marked(_current(path.read_text())), "")
    head, sep, tail = text.partition("\n\n\n")
    path.write_text(head + "\n" + _marked(inject) + sep + tail if inject else text)


def _marked(code: str) -> str:
    return f"# injected by the tests\n{code}# end of injection\n" if code else ""


def _current(text: str) -> str:
    start = text.find("# injected by the tests\n")
    if start < 0:
        return ""
    end = text.index("# end of injection\n", start)
    return text[start + len("# injected by the tests\n"):end]


def build_pickle(checkout: Path, out: Path, family: str = "eg3d", seed: int = 0, size: str = "small",
                 ballast_mb: int = 0) -> Path:
    """Run ``make_pickle.py`` in a subprocess (the checkout's modules never enter this process), in the checkout's
    folder as training runs are (Next3D's constructor reads files relative to it)."""
    subprocess.run([sys.executable, str(STANDIN / "make_pickle.py"), str(checkout), str(out), family, str(seed), size,
                    str(ballast_mb)], check=True, capture_output=True, text=True, cwd=checkout)
    return out


def forget_checkouts() -> None:
    """Drop every EG3D-style checkout module (and the modules persistence executed) from this process, and the
    checkouts from ``sys.path``: tests load several checkouts, which one process must otherwise refuse."""
    from omnibench.generators.eg3d.checkout import TOP_LEVEL

    for name in list(sys.modules):
        if name.split(".")[0] in TOP_LEVEL or name.startswith("_imported_module_"):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not (Path(p) / "torch_utils" / "persistence.py").is_file()]


REAL_BUILDER = '''
# A random-weight snapshot written the way a real checkout's train.py + training/training_loop.py write theirs:
# G and D built by class name from train.py's ffhq kwargs (small channels, few depth samples), the
# dataset_label_std buffer registered on G after construction, G_ema a deep copy, every module deep-copied, put in
# eval mode and pickled in {training_set_kwargs, G, D, G_ema, augment_pipe}.
import copy, pickle, sys
sys.path.insert(0, sys.argv[1])
import torch, dnnlib
rendering = dict(image_resolution=128, disparity_space_sampling=False, clamp_mode="softplus",
                 superresolution_module="training.superresolution.SuperresolutionHybrid2X", c_gen_conditioning_zero=False,
                 gpc_reg_prob=0.5, c_scale=1.0, superresolution_noise_mode="none", density_reg=0.25,
                 density_reg_p_dist=0.004, reg_type="l1", decoder_lr_mul=1.0, sr_antialias=True, depth_resolution=8,
                 depth_resolution_importance=8, ray_start=2.25, ray_end=3.3, box_warp=1, avg_camera_radius=2.7,
                 avg_camera_pivot=[0, 0, 0.2])
common = dict(c_dim=25, img_resolution=128, img_channels=3)
G_kwargs = dnnlib.EasyDict(class_name="training.triplane.TriPlaneGenerator", z_dim=512, w_dim=512,
                           mapping_kwargs=dnnlib.EasyDict(num_layers=2), channel_base=1024, channel_max=32,
                           fused_modconv_default="inference_only", rendering_kwargs=rendering, num_fp16_res=0,
                           sr_num_fp16_res=0, sr_kwargs=dnnlib.EasyDict(channel_base=1024, channel_max=32,
                                                                       fused_modconv_default="inference_only"),
                           conv_clamp=None)
D_kwargs = dnnlib.EasyDict(class_name="training.dual_discriminator.DualDiscriminator", block_kwargs=dnnlib.EasyDict(),
                           mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=4),
                           channel_base=1024, channel_max=32, disc_c_noise=0, num_fp16_res=0, conv_clamp=None)
torch.manual_seed(0)
G = dnnlib.util.construct_class_by_name(**G_kwargs, **common).train().requires_grad_(False)
G.register_buffer("dataset_label_std", torch.rand(25))
D = dnnlib.util.construct_class_by_name(**D_kwargs, **common).train().requires_grad_(False)
G_ema = copy.deepcopy(G).eval()
G.backbone.mapping.w_avg.copy_(torch.randn(512))
G_ema.backbone.mapping.w_avg.copy_(torch.randn(512))
G_ema.neural_rendering_resolution = G.neural_rendering_resolution = 64
G_ema.rendering_kwargs = G.rendering_kwargs.copy()
training_set_kwargs = dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset", path="ffhq.zip",
                                      use_labels=True, max_size=None, xflip=False, resolution=128, random_seed=0)
snapshot = dict(training_set_kwargs=dict(training_set_kwargs))
for name, module in [("G", G), ("D", D), ("G_ema", G_ema), ("augment_pipe", None)]:
    if module is not None:
        module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
    snapshot[name] = module
with open(sys.argv[2], "wb") as f:
    pickle.dump(snapshot, f)
'''


def build_real_pickle(repo: str, out: Path) -> Path:
    """A random-weight, small-channel EG3D snapshot written from a real checkout the way its training loop writes
    one (opt-in test only; runs in a subprocess, so the checkout's modules never enter this process)."""
    from omnibench.generators.eg3d.checkout import Checkout

    root = Checkout.locate(repo, "eg3d").root
    r = subprocess.run([sys.executable, "-c", REAL_BUILDER, str(root), str(out)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"building a snapshot with the checkout '{root}' failed:\n{r.stderr[-4000:]}")
    return out
