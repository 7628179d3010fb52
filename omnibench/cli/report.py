"""``omnibench report``: one self-contained HTML page (table, plots, grids, provenance)."""

from __future__ import annotations

import argparse
import sys

from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_write_text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report from result files",
        description="Write one HTML page with images embedded: the table (from the result files), one plot "
        "per metric, qualitative grids rendered from each run's checkpoint, and the provenance of each run.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN.json", help="result files written by 'omnibench evaluate'")
    p.add_argument("--out", required=True, metavar="report.html")
    p.add_argument("--baselines", action="append", default=[], metavar="published|FILE",
                   help="add baseline rows to the table; repeatable")
    p.add_argument("--no-grids", action="store_true", help="do not render qualitative grids from checkpoints")
    p.add_argument("--images", nargs="*", default=[], metavar="IMG",
                   help="extra images to embed (e.g. from 'omnibench render'): .png, .gif, .jpg")
    p.add_argument("--ids", type=int, default=3, help="identities per grid, default 3")
    p.add_argument("--seed", type=int, default=0, help="seed of the grids' identities and expressions")
    p.add_argument("--title", default="omnibench report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.report import build_report

    if not args.out.lower().endswith((".html", ".htm")):
        raise OmnibenchError(f"--out must end in .html, got '{args.out}'")
    text = build_report(args.runs, args.baselines, grids=not args.no_grids, images=args.images,
                        title=args.title, n_ids=args.ids, seed=args.seed)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
