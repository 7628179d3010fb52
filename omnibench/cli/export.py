"""``omnibench export``: write a generator (``--ckpt``) as a TorchScript or ONNX file omnibench runs directly."""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  omnibench export --ckpt tiny --format torchscript --out tiny.ts
  omnibench export --ckpt tiny --format onnx --out tiny.onnx
  omnibench evaluate --ckpt tiny.ts --protocol quick     # the torchscript generator reads it
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a generator to a TorchScript or ONNX file with omnibench's generator signature",
        description="Trace the generator's synthesize(z, camera, shape, expression, pose) and write it with a "
        "metadata block (z_dim, resolution, FLAME layout, controls honoured); `omnibench evaluate --ckpt FILE` "
        "then scores the file through the torchscript / onnx generators (docs/real-checkpoints.md).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, help="checkpoint path, shipped name (tiny) or built-in generator")
    p.add_argument("--generator", help="generator registry name or module:Class that reads --ckpt")
    p.add_argument("--format", required=True, choices=("torchscript", "onnx"))
    p.add_argument("--out", required=True, help="file to write (atomically)")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi baked into the file (default 1.0, "
                                                                    "the protocols' value)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="generator option, repeatable")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from omnibench.errors import OmnibenchError
    from omnibench.export import export_generator
    from omnibench.generators.resolve import resolve_generator
    from omnibench.key_values import parse_options

    options = parse_options(args.option)
    if Path(args.out).is_dir():
        raise OmnibenchError(f"--out '{args.out}' is a folder; give a file name such as tiny.ts")
    gen, info = resolve_generator(args.ckpt, args.generator, "cpu", options)
    source = {"generator": info["generator"], "path": info["path"], "sha256": info["sha256"]}
    meta = export_generator(gen, args.format, args.out, args.truncation, source)
    print(f"omnibench: wrote {args.out} ({args.format}, z_dim {meta.z_dim}, {meta.resolution} px, outputs "
          f"{', '.join(meta.outputs)})", file=sys.stderr)
    return 0
