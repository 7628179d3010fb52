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
    """Run ``make_pickle.py`` in a subprocess (the checkout's modules never enter this process)."""
    subprocess.run([sys.executable, str(STANDIN / "make_pickle.py"), str(checkout), str(out), family, str(seed), size,
                    str(ballast_mb)], check=True, capture_output=True, text=True)
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
import copy, pickle, sys
sys.path.insert(0, sys.argv[1])
import torch, dnnlib
from training.triplane import TriPlaneGenerator
rendering = dict(image_resolution=128, disparity_space_sampling=False, clamp_mode="softplus",
                 superresolution_module="training.superresolution.SuperresolutionHybrid2X", c_gen_conditioning_zero=False,
                 gpc_reg_prob=0.5, c_scale=1.0, superresolution_noise_mode="none", density_reg=0.25,
                 density_reg_p_dist=0.004, reg_type="l1", decoder_lr_mul=1.0, sr_antialias=True, depth_resolution=8,
                 depth_resolution_importance=8, ray_start=2.25, ray_end=3.3, box_warp=1, avg_camera_radius=2.7,
                 avg_camera_pivot=[0, 0, 0.2])
torch.manual_seed(0)
G = TriPlaneGenerator(z_dim=512, c_dim=25, w_dim=512, img_resolution=128, img_channels=3, sr_num_fp16_res=0,
                      mapping_kwargs=dnnlib.EasyDict(num_layers=2), rendering_kwargs=rendering,
                      sr_kwargs=dnnlib.EasyDict(channel_base=1024, channel_max=32, fused_modconv_default="inference_only"),
                      channel_base=1024, channel_max=32, conv_clamp=None).eval().requires_grad_(False)
G.neural_rendering_resolution = 64
pickle.dump({"G": G, "D": torch.nn.Identity(), "G_ema": copy.deepcopy(G), "augment_pipe": None,
             "training_set_kwargs": None}, open(sys.argv[2], "wb"))
'''


def build_real_pickle(repo: str, out: Path) -> Path:
    """A random-weight, small-channel EG3D generator built from a real checkout (opt-in test only)."""
    from omnibench.generators.eg3d.checkout import Checkout

    root = Checkout.locate(repo, "eg3d").root
    subprocess.run([sys.executable, "-c", REAL_BUILDER, str(root), str(out)], check=True, capture_output=True, text=True)
    return out
