"""``omnibench compare``: the regression gate (exit 0 no regression, 1 regression, 2 bad input)."""

from __future__ import annotations

import argparse
import sys

from omnibench.fileio import atomic_write_text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare a result file against a baseline one (CI regression gate)",
        description="Compare CURRENT against BASELINE metric by metric, in each metric's better direction. "
        "Default tolerance: half the baseline's 95%% interval. Exit 0 when nothing regressed, 1 when "
        "something did, 2 on bad input (malformed files, different protocol/profile/metric version). "
        "Prints a Markdown summary on stdout.",
    )
    p.add_argument("--baseline", required=True, metavar="A.json", help="reference result file")
    p.add_argument("--current", required=True, metavar="B.json", help="result file to check")
    p.add_argument("--tolerances", default=None, metavar="FILE",
                   help="YAML/JSON: {default: {abs|rel|ci: x}, metrics: {NAME: x | {abs|rel|ci: x}}}")
    p.add_argument("--out", default=None, metavar="FILE.md", help="also write the Markdown summary here")
    p.add_argument("--json", default=None, metavar="FILE.json", help="also write a machine-readable summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.compare import compare_files, comparison_json

    cmp = compare_files(args.baseline, args.current, args.tolerances)
    text = cmp.markdown()
    sys.stdout.write(text)
    if args.out:
        atomic_write_text(args.out, text)
    if args.json:
        atomic_write_text(args.json, comparison_json(cmp))
    return cmp.exit_code
