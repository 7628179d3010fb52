"""``omnibench data``: synthetic datasets (``synth``), integrity checks (``verify``), contact sheets (``sheet``)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="synthetic EG3D-style datasets", description=__doc__)
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    s = sub.add_parser("synth", help="render a synthetic dataset with the oracle generator")
    s.add_argument("--out", required=True, help="output folder (created atomically; must not exist or be empty)")
    s.add_argument("--n", type=int, required=True, help="number of images")
    s.add_argument("--res", type=int, default=64, help="image resolution in pixels (default 64)")
    s.add_argument("--head", default="synthetic", help="head model: 'synthetic', 'synthetic:PRESET' or a FLAME path")
    s.add_argument("--seed", type=int, default=0, help="seed; sample i depends only on (seed, i)")
    s.add_argument("--workers", type=int, default=1, help="worker processes (output does not depend on it)")
    s.add_argument("--supersample", type=int, default=2, help="anti-aliasing samples per pixel side (default 2)")
    s.add_argument("--force", action="store_true", help="replace a non-empty --out")
    s.add_argument("--prior", default="ffhq", choices=("ffhq", "wide", "wide-pairs"),
                   help="control distribution: ffhq (the protocols', default), wide (every sample expressive) or "
                        "wide-pairs (wide, in pairs differing only in expression and jaw)")
    s.add_argument("--framing", default="v1", choices=("v1", "ffhq"),
                   help="where the cameras sit: v1 (1.6 m, the whole head; protocols v1, default) or ffhq (EG3D's "
                        "FFHQ cameras in metres; protocols v2)")
    s.set_defaults(func=_synth)
    v = sub.add_parser("verify", help="check a dataset's files against its manifest")
    v.add_argument("dir")
    v.set_defaults(func=_verify)
    c = sub.add_parser("sheet", help="write a contact sheet PNG of a dataset's first images")
    c.add_argument("dir")
    c.add_argument("--out", required=True, help="PNG path")
    c.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    c.add_argument("--cols", type=int, default=8)
    c.set_defaults(func=_sheet)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _synth(args: argparse.Namespace) -> int:
    from omnibench.data.synth import synthesize_dataset

    manifest = synthesize_dataset(args.out, n=args.n, resolution=args.res, head=args.head, seed=args.seed,
                                  workers=args.workers, supersample=args.supersample, force=args.force,
                                  command=_command(args), progress=True, prior=args.prior,
                                  framing=args.framing)
    print(json.dumps({"out": args.out, "n": manifest["n"], "content_hash": manifest["content_hash"]}))
    return 0


def _command(args: argparse.Namespace) -> list[str]:
    """The canonical command line that reproduces this dataset (workers included for the record)."""
    cmd = ["omnibench", "data", "synth", "--out", str(args.out), "--n", str(args.n), "--res", str(args.res),
           "--head", args.head, "--seed", str(args.seed), "--workers", str(args.workers),
           "--supersample", str(args.supersample)] + (["--prior", args.prior] if args.prior != "ffhq" else [])
    cmd += ["--framing", args.framing] if args.framing != "v1" else []
    return cmd + (["--force"] if args.force else [])


def _verify(args: argparse.Namespace) -> int:
    from omnibench.data.dataset import HeadDataset

    ds = HeadDataset(args.dir, verify=True)
    print(json.dumps({"dir": args.dir, "n": len(ds), "ok": True}))
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from omnibench.data.dataset import HeadDataset
    from omnibench.data.sheet import contact_sheet

    ds = HeadDataset(args.dir)
    contact_sheet(ds, args.out, n=args.n, cols=args.cols)
    print(json.dumps({"out": args.out}))
    return 0
