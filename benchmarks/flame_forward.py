"""FLAME forward throughput on CPU vs the bound set by its blendshape matmul, measured in the same run.

The forward pass's unavoidable work is one GEMM ``(B, K + 36) @ (K + 36, 3V + 15)`` (shape + expression +
pose-corrective bases and the regressed joints, K = n_shape + n_expression); everything else (Rodrigues, joint chain, skinning,
landmarks) is overhead. We time that exact GEMM (same buffers, same dtype) and the full forward pass,
interleaved so that machine load affects both alike, and report ``ratio = t_gemm / t_forward`` (goal >= 0.5).

    python benchmarks/flame_forward.py [--batch 256] [--head synthetic:flame-count|PATH] [--threads N]

Without ``--head`` a random FLAME-sized model (V = 5023, F = 9976, 300 + 100 + 36 columns) is used, so
the benchmark needs no files.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from omnibench.heads import HeadModel, load_head_model
from omnibench.heads import landmarks as lm
from omnibench.heads.loader import FlameData


def random_flame(n_v: int = 5023, n_f: int = 9976, seed: int = 0) -> FlameData:
    """A FLAME-sized model with random arrays (timing only; the geometry is meaningless)."""
    rng = np.random.default_rng(seed)
    weights = rng.random((n_v, 5))
    jreg = rng.random((5, n_v))
    return FlameData(
        v_template=rng.normal(size=(n_v, 3)) * 0.1, faces=rng.integers(0, n_v, size=(n_f, 3)),
        shapedirs=rng.normal(size=(n_v, 3, 400)) * 1e-3, posedirs=rng.normal(size=(n_v, 3, 36)) * 1e-4,
        J_regressor=jreg / jreg.sum(1, keepdims=True), weights=weights / weights.sum(1, keepdims=True),
        parents=np.array([-1, 0, 1, 1, 1]), name="random-flame-sized",
        static_lmk=lm.Embedding(rng.integers(0, n_f, 51), np.full((51, 3), 1 / 3)),
        dynamic_lmk=lm.Embedding(rng.integers(0, n_f, (79, 17)), np.full((79, 17, 3), 1 / 3)),
        full_lmk=lm.Embedding(rng.integers(0, n_f, 68), np.full((68, 3), 1 / 3)),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--head", default=None, help="head spec for load_head_model (default: random FLAME-sized)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    model = load_head_model(args.head, dtype=dtype) if args.head else HeadModel(random_flame(), dtype=dtype)
    gen = torch.Generator().manual_seed(0)
    b = args.batch
    params = dict(shape=torch.randn(b, model.n_shape, generator=gen), expression=torch.randn(b, model.n_expression, generator=gen),
                  pose=0.2 * torch.randn(b, 15, generator=gen), translation=0.01 * torch.randn(b, 3, generator=gen))
    params = {k: v.to(dtype) for k, v in params.items()}
    feats = torch.randn(b, model.blend_basis.shape[0], generator=gen).to(dtype)
    flat_template = model.template_planes

    def gemm() -> None:
        torch.addmm(flat_template, feats, model.blend_basis)

    def forward() -> None:
        model(**params)

    t_gemm: list[float] = []
    t_fwd: list[float] = []
    with torch.inference_mode():
        for fn in (gemm, forward):  # warm-up
            fn()
        for _ in range(args.reps):
            for fn, acc in ((gemm, t_gemm), (forward, t_fwd)):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
    g, f = statistics.median(t_gemm), statistics.median(t_fwd)
    k, n3v = model.blend_basis.shape
    print(f"model: {model.name}  V={model.n_vertices}  basis {k}x{n3v}  batch={b}  dtype={args.dtype}  "
          f"threads={torch.get_num_threads()}  reps={args.reps}")
    print(f"blendshape GEMM bound:   {g * 1e3:8.2f} ms  ({2 * b * k * n3v / g / 1e9:6.1f} GFLOP/s, {b / g:9.0f} meshes/s)")
    print(f"full forward:            {f * 1e3:8.2f} ms  ({b / f:9.0f} meshes/s, incl. 68+68 landmarks)")
    print(f"ratio bound/forward:     {g / f:8.2%}  (median times; goal >= 50%)")
    print(f"ratio, best times:       {min(t_gemm) / min(t_fwd):8.2%}  (best {min(t_gemm) * 1e3:.2f} / {min(t_fwd) * 1e3:.2f} ms; "
          "robust to load from other processes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
