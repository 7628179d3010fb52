"""Renderer throughput: images/s of the oracle (head forward + hair shell + Embree + shading) on CPU.

Usage: ``PYTHONPATH=. python benchmarks/render_speed.py [--head synthetic] [--n64 200] [--n256 20]
[--supersample 2] [--threads 1]``. Prints one line per resolution with wall-clock and CPU-time rates
(CPU time is the fairer number on a shared machine) and a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--head", default="synthetic")
    p.add_argument("--n64", type=int, default=200)
    p.add_argument("--n256", type=int, default=20)
    p.add_argument("--supersample", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the renderer itself is single-threaded numpy)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from omnibench.data.synth import sample_controls, sample_latents
    from omnibench.generators.oracle import OracleGenerator

    summary = {}
    for res, n in ((64, args.n64), (256, args.n256)):
        g = OracleGenerator(head=args.head, resolution=res, supersample=args.supersample)
        c = sample_controls(n, 0, g.model)
        z = sample_latents(n, 0, g.z_dim)
        g.synthesize(z[:1], c.index(slice(0, 1)))  # warm-up
        w0, c0 = time.perf_counter(), time.process_time()
        for i in range(0, n, 16):
            g.synthesize(z[i : i + 16], c.index(slice(i, i + 16)))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        summary[res] = {"images_per_s_wall": n / wall, "images_per_s_cpu": n / cpu, "n": n}
        print(f"render {res:>3}px (supersample {args.supersample}x{args.supersample}, head {args.head}): "
              f"{n / wall:7.1f} images/s wall, {n / cpu:7.1f} images/s per CPU-second ({n} images)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
