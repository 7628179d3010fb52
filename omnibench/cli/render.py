"""``omnibench render``: qualitative grids (identities x views, identities x expressions) and a turntable GIF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omnibench.errors import OmnibenchError


def _default_framing() -> str:
    from omnibench.protocol import PROTOCOLS

    return PROTOCOLS["quick"].camera.framing.name


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render grids of identities across camera views and expressions",
        description="Render a PNG with two labelled grids from a generator: identities (rows) across camera "
        "views, and across expressions (first column neutral). --gif adds a turntable GIF beside it.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint path or built-in generator name (noise, oracle, ...)")
    p.add_argument("--generator", default=None, help="generator registry name or module:Class that reads --ckpt")
    p.add_argument("--out", required=True, metavar="FILE.png", help="output PNG")
    p.add_argument("--gif", action="store_true", help="also write a turntable GIF (FILE.gif)")
    p.add_argument("--ids", type=int, default=4, help="number of identities (rows), default 4")
    p.add_argument("--views", type=int, default=5, help="number of camera views, default 5")
    p.add_argument("--max-yaw", type=float, default=35.0, help="largest |yaw| in degrees, default 35")
    p.add_argument("--expressions", type=int, default=5, help="number of expression columns, default 5")
    p.add_argument("--expression-sweep", action="store_true",
                   help="expression columns set one coefficient each to +1.2 (inside the protocols' prior; the "
                        "synthetic head's columns are jaw_drop, smile, pucker, ...) instead of random draws of std 1.5 "
                        "on ten coefficients at once")
    p.add_argument("--frames", type=int, default=24, help="turntable frames, default 24")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=0.7, help="truncation psi, default 0.7")
    p.add_argument("--framing", default=None, choices=("v1", "ffhq"),
                   help="camera framing (default: the generator's training framing if it records one, else the "
                        "default quick protocol's)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.generators.resolve import resolve_generator
    from omnibench.report.grids import GridSpec, figure, save_gif, save_png, turntable

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise OmnibenchError(f"--out must end in .png, got '{out}'")
    if args.views < 1 or args.ids < 1 or args.expressions < 1 or args.frames < 2:
        raise OmnibenchError("--ids, --views and --expressions must be >= 1 and --frames >= 2")
    yaws = (0.0,) if args.views == 1 else tuple(
        -args.max_yaw + 2 * args.max_yaw * i / (args.views - 1) for i in range(args.views)
    )
    gen = resolve_generator(args.ckpt, args.generator, args.device)[0]
    spec = GridSpec(n_ids=args.ids, yaws_deg=yaws, n_expressions=args.expressions, seed=args.seed,
                    expression_sweep=args.expression_sweep,
                    truncation_psi=args.truncation, framing=args.framing or getattr(gen, "framing", None) or _default_framing())
    save_png(figure(gen, spec, name=Path(args.ckpt).name), out)
    print(f"wrote {out}", file=sys.stderr)
    if args.gif:
        gif = out.with_suffix(".gif")
        save_gif(turntable(gen, spec, n_frames=args.frames, max_yaw_deg=args.max_yaw), gif)
        print(f"wrote {gif}", file=sys.stderr)
    return 0
