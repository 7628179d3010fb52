"""Stage II training and generation throughput (images/s) of a GAN config, plus, side by side in the same
run, the training step with W's autograd path forced (``ratio``: what W's inference path saves per step).

A training step is the whole ``Trainer.train_step``: G forward (W at every ray sample, tri-planes, dynamic
decoder, volume rendering, super-resolution), D on real and fake with R1, G's adversarial loss, ``L_prior``
and ``L_enc`` (a frozen, randomly initialised E: its cost does not depend on its weights), backward passes,
Adam and EMA. Images and labels are random tensors of the config's shape (timing only). ``tiny`` uses the
shipped W; ``ffhq512`` a randomly initialised W of the ``full`` Stage I config (same cost as a trained one).
Issue #7's GPU goal: ``ffhq512`` training >= 30 images/s at 512 x 512 on one H100.

Issue #20's before/after, side by side in the same run: the step with W as it was before (all points in one
pass, twelve ``sin``/``cos`` calls for the positional encoding) against today's (cache-sized chunks, four
calls), interleaved step by step so machine load affects both alike. ``--res 128`` trains at 128 x 128 output
(neural 64, tri-planes 64), the issue's second measurement.

    python benchmarks/gan_throughput.py [--config tiny|ffhq512] [--device cpu|cuda] [--batch B] [--steps 5]
                                        [--res 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from omnibench.cameras import orbit_camera
from omnibench.heads import load_head_model
from reference_model.gan.config import CONFIGS
from reference_model.gan.data import TrainingSet
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.train import Trainer
from reference_model.sdf.config import CONFIGS as SDF_CONFIGS
from reference_model.sdf.model import SemanticSDF


def random_training_set(n: int, res: int, n_shape: int, n_expression: int) -> TrainingSet:
    g = torch.Generator().manual_seed(0)
    return TrainingSet(images=torch.randint(0, 256, (n, 3, res, res), dtype=torch.uint8, generator=g),
                       camera=orbit_camera(0.3 * torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g)),
                       shape=torch.randn(n, n_shape, generator=g), expression=0.5 * torch.randn(n, n_expression, generator=g),
                       pose=torch.cat([torch.zeros(n, 6), 0.2 * torch.rand(n, 1, generator=g), torch.zeros(n, 8)], 1))


def build_sdf(config: str, head) -> SemanticSDF:
    if config == "tiny":
        from reference_model.sdf.checkpoint import load_sdf
        from reference_model.sdf.release import SHIPPED_SDF

        return load_sdf(SHIPPED_SDF, head=head)
    return SemanticSDF(SDF_CONFIGS["full"], torch.zeros(3), 0.2)


class ForcedAutogradPath:
    """Context manager: W's calls inside G run the plain layer-by-layer path (no parameter needs a gradient,
    so no graph is built), i.e. the code before the inference path existed."""

    def __init__(self, sdf: SemanticSDF) -> None:
        self.sdf = sdf

    def __enter__(self):
        def plain(x, cond):
            with torch.enable_grad():
                return SemanticSDF.forward_cond(self.sdf, x, cond)

        self.sdf._forward_inference = plain
        return self

    def __exit__(self, *exc):
        del self.sdf._forward_inference


class LegacyW:
    """Context manager: W as before issue #20's step work: one pass over all points, every octave of the
    positional encoding by its own ``sin``/``cos``."""

    def __init__(self, sdf: SemanticSDF) -> None:
        self.sdf = sdf

    def __enter__(self):
        import reference_model.sdf.model as sdf_model

        self.saved = sdf_model.INFERENCE_CHUNK_POINTS
        sdf_model.INFERENCE_CHUNK_POINTS = 1 << 40
        k = self.sdf.cfg.pe_frequencies

        def encode(u):
            feats = [u]
            for i in range(k):
                feats += [torch.sin((2.0**i) * u), torch.cos((2.0**i) * u)]
            return torch.cat(feats, dim=-1)

        self.sdf.encode = encode
        return self

    def __exit__(self, *exc):
        import reference_model.sdf.model as sdf_model

        sdf_model.INFERENCE_CHUNK_POINTS = self.saved
        del self.sdf.encode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="tiny", choices=sorted(CONFIGS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=None, help="default: the config's")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per variant (after one warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--no-compare", action="store_true", help="skip the before/after comparisons")
    ap.add_argument("--res", type=int, default=None, choices=(64, 128),
                    help="128: output 128 x 128 with neural rendering and tri-planes at 64 (default: the config's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    cfg = CONFIGS[args.config].with_overrides(batch=args.batch)
    if args.res == 128:
        cfg = cfg.with_overrides(image_res=128, neural_res=64, triplane_res=64)
    head = load_head_model("synthetic")
    sdf = build_sdf(args.config, head).to(dev)
    meta = {"sha256": "benchmark", "config": sdf.cfg.to_dict(), "center": sdf.center.cpu(), "radius": float(sdf.radius)}
    data = random_training_set(max(64, 2 * cfg.batch), cfg.image_res, cfg.n_shape, cfg.n_expression)
    E = ControlEncoder(cfg.n_expression).eval().requires_grad_(False)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, data, sdf, head.to(dev) if hasattr(head, "to") else head, meta, Path(tmp), device=args.device,
                          quiet=True, encoder=(E, {}))

        def sync():
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)

        def train_time() -> float:
            trainer.train_step()  # warm-up
            sync()
            ts = []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                trainer.train_step()
                sync()
                ts.append(time.perf_counter() - t0)
            return statistics.median(ts)

        def step_time() -> float:
            t0 = time.perf_counter()
            trainer.train_step()
            sync()
            return time.perf_counter() - t0

        t_plain = t_legacy = None
        if args.no_compare:
            t_train = train_time()
        else:
            trainer.train_step()  # warm-up (both variants share every buffer)
            now, legacy = [], []
            for _ in range(args.steps):  # interleaved: the same load for both
                now.append(step_time())
                with LegacyW(sdf):
                    legacy.append(step_time())
            t_train, t_legacy = statistics.median(now), statistics.median(legacy)
            with ForcedAutogradPath(sdf):
                t_plain = train_time()
        G = trainer.G_ema
        z = torch.randn(cfg.batch, cfg.z_dim, device=dev)
        b = {k: v.to(dev) for k, v in data.batch(torch.arange(cfg.batch)).items()}
        with torch.no_grad():
            G(z, b["camera"], b["shape"], b["expression"], b["pose"])
            sync()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                G(z, b["camera"], b["shape"], b["expression"], b["pose"])
            sync()
            t_gen = (time.perf_counter() - t0) / args.steps
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {torch.get_num_threads()} thread(s)"
    print(f"config {cfg.name}, {cfg.image_res}x{cfg.image_res} (neural {cfg.neural_res}), batch {cfg.batch}, {name}")
    print(f"training   {t_train:.3f} s/step  {cfg.batch / t_train:.2f} images/s")
    print(f"generation {t_gen:.3f} s/batch {cfg.batch / t_gen:.2f} images/s")
    if t_legacy is not None:
        print(f"training with W as before #20 (one pass, 12 sin/cos) {t_legacy:.3f} s/step: now {t_legacy / t_train:.2f}x faster")
    if t_plain is not None:
        print(f"training with W's autograd path forced {t_plain:.3f} s/step: ratio {t_plain / t_train:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
