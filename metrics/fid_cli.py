"""``omnibench fid A B``: FID and KID between two image sets, as JSON on stdout.

A and B are image folders, zips, EG3D-style dataset folders (``dataset.json``) or ``.npz``
statistics files (:func:`metrics.fid.compare_image_sets`). Entry point ``omnibench.tools: fid``: the
``metrics`` package contributes this sub-command, the omnibench CLI does not import it by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from omnibench.errors import OmnibenchError

EPILOG = """examples:
  omnibench fid real/ generated/
  omnibench fid ffhq512.zip samples.zip --batch-size 32 --device cuda
  omnibench fid ~/.cache/omnibench/stats/<key>.npz generated/ --kid-subset-size 100
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fid",
        help="FID/KID between two image sets (folders, zips, dataset folders, .npz statistics)",
        description="Compute FID and KID between two image sets with the TF Inception used by StyleGAN3/EG3D "
        "(torch-fidelity inception-v3-compat). Statistics of image sets are cached by content.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("set_a", metavar="A", help="first set: folder, .zip, dataset folder or .npz statistics")
    p.add_argument("set_b", metavar="B", help="second set")
    p.add_argument("--batch-size", type=int, default=64, help="images per Inception forward pass (default 64)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="device for Inception (default cpu)")
    p.add_argument("--kid-subset-size", type=int, default=None,
                   help="KID subset size (default min(1000, n_a, n_b))")
    p.add_argument("--seed", type=int, default=0, help="seed of KID's subset sampling (default 0)")
    p.add_argument("--weights", default=None,
                   help="torch-fidelity Inception weights file (default: resolved offline, see docs/fid.md)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write cached set statistics")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr (also off when CI is set)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise OmnibenchError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.kid_subset_size is not None and args.kid_subset_size < 2:
        raise OmnibenchError(f"--kid-subset-size must be >= 2, got {args.kid_subset_size}")
    from metrics.fid import compare_image_sets  # torch and the Inception: only once the arguments are good

    out = compare_image_sets(
        args.set_a,
        args.set_b,
        batch_size=args.batch_size,
        device=args.device,
        kid_subset_size=args.kid_subset_size,
        seed=args.seed,
        weights=args.weights,
        use_cache=not args.no_cache,
        progress=not args.no_progress and not os.environ.get("CI"),
    )
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
