"""``omnibench`` command line: one module per subcommand, wired lazily.

Each module in :data:`SUBCOMMANDS` defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the parser default. Machine output (JSON) goes to stdout; logs and progress to
stderr. :class:`omnibench.errors.OmnibenchError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from omnibench import __version__
from omnibench.errors import OmnibenchError

# subcommand -> module that registers it (several subcommands may share a module)
SUBCOMMANDS: dict[str, str] = {
    "evaluate": "omnibench.cli.evaluate",
    "fid": "omnibench.cli.fid",
    "doctor": "omnibench.cli.doctor",
    "ls": "omnibench.cli.ls",
    "cache": "omnibench.cli.cache",
    "heads": "omnibench.cli.heads",
    "data": "omnibench.cli.data",
    "estimators": "omnibench.cli.estimators",
    "table": "omnibench.cli.table",
    "compare": "omnibench.cli.compare",
    "render": "omnibench.cli.render",
    "report": "omnibench.cli.report",
    "train": "omnibench.cli.train",
    "eval-sdf": "omnibench.cli.eval_sdf",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnibench",
        description="Evaluate and benchmark controllable 3D head generators.",
    )
    parser.add_argument("--version", action="version", version=f"omnibench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        if module_name in seen:
            continue
        seen.add(module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # subcommand not shipped in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except OmnibenchError as exc:
        print(f"omnibench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("omnibench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last-resort: keep the one-line contract unless debugging
        if os.environ.get("OMNIBENCH_DEBUG"):
            raise
        print(f"omnibench: internal error: {type(exc).__name__}: {exc} (set OMNIBENCH_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
