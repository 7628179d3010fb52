"""``omnibench`` command line: one module per subcommand, wired lazily.

Each module in :data:`SUBCOMMANDS` defines ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the parser default. Plug-ins add sub-commands through the ``omnibench.tools``
entry-point group (:mod:`omnibench.cli.plugins`; ``fid`` and ``estimators`` come from ``metrics``,
``eval-sdf`` from the reference model), so this package never imports ``metrics`` or ``reference_model``.
Machine output (JSON) goes to stdout; logs and progress to stderr. :class:`omnibench.errors.OmnibenchError`
becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from omnibench import __version__
from omnibench.cli import plugins
from omnibench.errors import OmnibenchError

PLUGIN = plugins.__name__

# subcommand -> module that registers it (several subcommands may share a module), in --help order.
# PLUGIN: a plug-in's tool (entry point of that name in ``omnibench.tools``), listed to fix its place in --help
# (absent when the plug-in is not installed); tools of other plug-ins come after these.
SUBCOMMANDS: dict[str, str] = {
    "evaluate": "omnibench.cli.evaluate",
    "fid": PLUGIN,
    "doctor": "omnibench.cli.doctor",
    "ls": "omnibench.cli.ls",
    "cache": "omnibench.cli.cache",
    "heads": "omnibench.cli.heads",
    "data": "omnibench.cli.data",
    "estimators": PLUGIN,
    "table": "omnibench.cli.table",
    "compare": "omnibench.cli.compare",
    "render": "omnibench.cli.render",
    "export": "omnibench.cli.export",
    "report": "omnibench.cli.report",
    "train": "omnibench.cli.train",
    "control-response": "omnibench.cli.control_response",
    "eval-sdf": PLUGIN,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnibench",
        description="Evaluate and benchmark controllable 3D head generators.",
    )
    parser.add_argument("--version", action="version", version=f"omnibench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    tools = plugins.installed()
    seen: set[str] = set()
    for name, module_name in SUBCOMMANDS.items():
        if module_name == PLUGIN:
            plugins.register(sub, [name], tools)
            continue
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
    plugins.register(sub, [name for name in tools if name not in SUBCOMMANDS], tools)
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
