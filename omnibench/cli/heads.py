"""``omnibench heads ...``: head-model utilities.

``omnibench heads make-synthetic --preset tiny|small|flame-count --seed S --out DIR [--columns N]`` writes
the synthflame file set (synthetic, not FLAME) and prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _make_synthetic(args: argparse.Namespace) -> int:
    from omnibench.heads.synthetic import make_synthetic_head

    t0 = time.perf_counter()
    out = make_synthetic_head(args.preset, args.seed, Path(args.out) if args.out else None, columns=args.columns,
                              f_dtype=args.f_dtype, kintree_sentinel=not args.kintree_minus_one)
    manifest = json.loads((out / "manifest.json").read_text())
    summary = {
        "path": str(out),
        "generator": manifest["generator"],
        "generator_version": manifest["generator_version"],
        "preset": manifest["preset"],
        "seed": manifest["seed"],
        "vertices": manifest["counts"]["vertices"],
        "faces": manifest["counts"]["faces"],
        "shapedirs_columns": manifest["counts"]["shapedirs_columns"],
        "valid_flame_layout": manifest["flags"]["valid_flame_layout"],
        "statement": manifest["statement"],
    }
    print(json.dumps(summary))
    print(f"synthflame {args.preset} seed {args.seed} -> {out} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("heads", help="head-model utilities (synthetic FLAME-format head)")
    sub = p.add_subparsers(dest="heads_command", metavar="HEADS_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    m = sub.add_parser(
        "make-synthetic",
        help="write the synthflame head (synthetic, not FLAME) in the FLAME file layout",
        description="Write a deterministic synthetic head in exactly the FLAME file layout (generic_model.pkl, "
                    "chumpy variant, smplx/DECA/RingNet side files, masks, eyelids, manifest). It is not FLAME.",
    )
    m.add_argument("--preset", default="small", choices=["tiny", "small", "flame-count"],
                   help="mesh resolution (default: small; flame-count has V=5023, F=9976)")
    m.add_argument("--seed", type=int, default=0, help="random seed of the bases (default 0)")
    m.add_argument("--out", default=None,
                   help="output folder (default: <cache>/heads/synthflame-<preset>-s<seed>-v<version>)")
    m.add_argument("--columns", type=int, default=400,
                   help="shapedirs columns to write; anything but 400 makes a deliberately INVALID file for loader tests")
    m.add_argument("--f-dtype", default="uint32", choices=["uint32", "int64"], help="dtype of the faces array 'f'")
    m.add_argument("--kintree-minus-one", action="store_true",
                   help="store -1 as the root parent instead of the SMPL-family sentinel 4294967295")
    m.set_defaults(func=_make_synthetic)
