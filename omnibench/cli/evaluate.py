"""``omnibench evaluate``: score a generator under a named protocol; result JSON on stdout and in --out."""

from __future__ import annotations

import argparse
import os
import sys

EPILOG = """examples:
  omnibench evaluate --ckpt oracle --protocol quick --out results/oracle.json
  omnibench evaluate --ckpt noise --metrics fid,kid --protocol quick
  omnibench evaluate --ckpt runs/omniavatar.pt --protocol standard --real data/ffhq512 --device cuda
  omnibench evaluate --ckpt my.pkl --generator mylab.adapters:MyGenerator --metrics fid
  omnibench evaluate --ckpt ffhq512-128.pkl --option repo=~/src/eg3d --protocol quick@2 --device cuda
  omnibench evaluate --ckpt tiny.ts --protocol quick      # a file written by omnibench export
  torchrun --nproc_per_node 2 -m omnibench evaluate --ckpt oracle --protocol quick
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a generator checkpoint (or built-in generator) under a protocol",
        description="Generate each sample set once (cached, resumable), run the metrics, write a result file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, help="checkpoint path or built-in generator name (oracle, noise, ...)")
    p.add_argument("--generator", help="generator registry name or module:Class that reads --ckpt")
    p.add_argument("--protocol", default="quick", help="quick | standard | paper (default: quick)")
    p.add_argument("--metrics", help="comma list: name, name@variant or module:Class (default: all available)")
    p.add_argument("--real", help="real set: image folder, zip, EG3D dataset folder or statistics file "
                                  "(default: the cached synthetic dataset)")
    p.add_argument("--labels", help="dataset.json (or its folder) used as label bank by 'labels' protocols")
    p.add_argument("--out", help="result file to write (atomically); the JSON is also printed on stdout")
    p.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="generator/metric batch size; never changes numbers")
    p.add_argument("--seed", type=int, help="override the protocol seed (recorded; changes the protocol hash)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="metric or generator option, repeatable (e.g. estimator=landmark-fit, identity_backbone=arcface; "
                        "repo=PATH, trust_code=true for EG3D-family pickles: docs/real-checkpoints.md)")
    p.add_argument("--label", help="row label in tables (checkpoint.label); give runs of one model that differ only "
                                   "in training seed the same label and `omnibench table` averages them over seeds")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (also off when CI is set)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.evaluation import evaluate
    from omnibench.results import dumps_result

    metrics = [m for m in args.metrics.split(",") if m.strip()] if args.metrics is not None else None
    if metrics is not None and not metrics:
        from omnibench.errors import OmnibenchError

        raise OmnibenchError("--metrics is empty: give a comma list such as fid,kid")
    from omnibench.key_values import parse_options

    options = parse_options(args.option)
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))
    result = evaluate(
        args.ckpt,
        generator=args.generator,
        protocol=args.protocol,
        metrics=metrics,
        real=args.real,
        labels=args.labels,
        out=args.out,
        device=args.device,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.no_progress,
        options=options,
        label=args.label,
    )
    if result is not None:
        sys.stdout.write(dumps_result(result))
        if args.out:
            print(f"omnibench: wrote {args.out}", file=sys.stderr)
    return 0
