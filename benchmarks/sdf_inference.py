"""Frozen W inside Stage II: the inference path of ``SemanticSDF.forward_cond`` vs its autograd path.

A tiny GAN step evaluates W at 8 images x 32 x 32 rays x (12 + 12) samples = 196 608 points under
``torch.no_grad`` (W is frozen). Without autograd W folds its conditioning into the first and skip layers
once per image and evaluates the softplus in place with exp2/log2 (``softplus_inplace``). Both paths run
interleaved on the same points (shipped ``sdf-tiny.pt``, random points in the GAN's 0.4 m box, random
controls), so machine load affects both alike; reported: median seconds per call, ``ratio =
t_autograd_path / t_inference`` (goal >= 1.5) and the largest difference in ``s`` and ``xbar`` (metres).

    python benchmarks/sdf_inference.py [--points 196608] [--batch 8] [--reps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from reference_model.sdf.checkpoint import load_sdf
from reference_model.sdf.release import SHIPPED_SDF


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=196_608, help="points per call, all images together")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (a tiny GAN run uses one)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as OmniAvatarG does
    from omnibench.heads import load_head_model
    from reference_model.sdf.checkpoint import read_sdf_checkpoint

    W = load_sdf(SHIPPED_SDF, head=load_head_model(read_sdf_checkpoint(SHIPPED_SDF)["config"]["head"]))
    W.eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(0)
    x = 0.4 * (torch.rand(args.batch, args.points // args.batch, 3, generator=gen) - 0.5)
    cond = 0.3 * torch.randn(args.batch, W.n_cond, generator=gen)

    def autograd_path():
        with torch.enable_grad():  # no parameter requires grad: the plain layer-by-layer path, no graph
            return W.forward_cond(x, cond)

    def inference_path():
        with torch.no_grad():
            return W.forward_cond(x, cond)

    (s_a, xb_a), (s_i, xb_i) = autograd_path(), inference_path()
    times: dict[str, list[float]] = {"autograd": [], "inference": []}
    for _ in range(args.reps):
        for name, fn in (("autograd", autograd_path), ("inference", inference_path)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    t_a, t_i = statistics.median(times["autograd"]), statistics.median(times["inference"])
    print(f"W at {x.shape[0] * x.shape[1]} points, {args.threads} thread(s)")
    print(f"autograd path  {t_a:.3f} s")
    print(f"inference path {t_i:.3f} s")
    print(f"ratio {t_a / t_i:.2f} (goal >= 1.5)")
    print(f"max |ds| {float((s_a - s_i).abs().max()):.2e} m, max |dxbar| {float((xb_a - xb_i).abs().max()):.2e} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
