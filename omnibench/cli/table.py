"""``omnibench table``: render result files (and baselines) as a paper-style table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_write_text

_EXT_FORMAT = {".md": "md", ".markdown": "md", ".tex": "latex", ".html": "html", ".htm": "html", ".csv": "csv"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "table",
        help="render result files as a Markdown/LaTeX/HTML/CSV table",
        description="Render result files (never a live run) as a table: one row per model, one column per "
        "metric (arrow = better direction), value ± half the 95%% interval, best per column in bold. "
        "Runs under different protocols, profiles or metric versions go into separate blocks.",
    )
    p.add_argument("runs", nargs="*", metavar="RUN.json", help="result files written by 'omnibench evaluate'")
    p.add_argument("--baselines", action="append", default=[], metavar="published|FILE",
                   help="add baseline rows: 'published' (shipped paper numbers) or a YAML/CSV file; repeatable")
    p.add_argument("--format", choices=("md", "latex", "html", "csv"), default=None,
                   help="output format (default: from --out's extension, else md)")
    p.add_argument("--out", default=None, metavar="FILE", help="write here (atomically) instead of stdout")
    p.add_argument("--merge", action="store_true",
                   help="require one ranked block; refuse (exit 2) when the inputs are not comparable")
    p.add_argument("--caption", default=None, help="table caption")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.tables import build_table, load_baselines, load_runs, render

    if not args.runs and not args.baselines:
        raise OmnibenchError("give at least one result file (RUN.json) or --baselines")
    fmt = args.format
    if fmt is None:
        fmt = _EXT_FORMAT.get(Path(args.out).suffix.lower(), "md") if args.out else "md"
    table = build_table(load_runs(args.runs), [load_baselines(b) for b in args.baselines], merge=args.merge)
    if args.caption:
        table.caption = args.caption
    text = render(table, fmt)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
