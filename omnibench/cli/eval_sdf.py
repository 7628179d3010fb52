"""Tools contributed by plug-ins through the ``omnibench.tools`` entry-point group (e.g. ``eval-sdf``).

Each entry point is a function ``register(subparsers)`` adding one top-level sub-command.
"""

from __future__ import annotations

import argparse
from importlib import metadata


def register(sub: argparse._SubParsersAction) -> None:
    for ep in sorted(metadata.entry_points(group="omnibench.tools"), key=lambda e: e.name):
        ep.load()(sub)
