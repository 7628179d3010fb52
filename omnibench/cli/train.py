"""``omnibench train MODEL ...``: trainers plug in through the ``omnibench.trainers`` entry-point group.

Each entry point is a function ``register(subparsers)`` adding one ``train`` sub-command (``sdf``, ``gan``).
"""

from __future__ import annotations

import argparse
from importlib import metadata


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a reference model component (sdf, gan)")
    inner = p.add_subparsers(dest="model", metavar="MODEL")
    for ep in sorted(metadata.entry_points(group="omnibench.trainers"), key=lambda e: e.name):
        ep.load()(inner)
