"""Sub-commands contributed by plug-ins through the ``omnibench.tools`` entry-point group.

Each entry point is named after the top-level sub-command it adds and is a function ``register(subparsers)``
that adds it: ``metrics`` contributes ``fid`` and ``estimators``, the reference model ``eval-sdf``, an
outside package whatever it declares. :func:`omnibench.cli.build_parser` adds the ones it lists in
:data:`omnibench.cli.SUBCOMMANDS` at their place in ``--help`` and every other one after the built-ins.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from importlib import metadata

GROUP = "omnibench.tools"


def installed() -> dict[str, metadata.EntryPoint]:
    """Every installed tool, by sub-command name, in name order."""
    return {ep.name: ep for ep in sorted(metadata.entry_points(group=GROUP), key=lambda e: e.name)}


def register(sub: argparse._SubParsersAction, names: Iterable[str] | None = None,
             tools: dict[str, metadata.EntryPoint] | None = None) -> None:
    """Add the tools ``names`` in that order (default: every installed one); a name not installed is skipped.

    ``tools``: the result of :func:`installed`, when the caller already has it.
    """
    tools = installed() if tools is None else tools
    for name in tools if names is None else names:
        if name in tools:
            tools[name].load()(sub)
