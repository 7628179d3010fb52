"""``omnibench control-response``: how strongly and how locally a generator's images respond to expression,
shape and jaw (:mod:`omnibench.control_response`); JSON on stdout and in ``--out``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omnibench.errors import OmnibenchError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "control-response",
        help="how strongly and how locally a generator's images respond to expression, shape and jaw",
        epilog="example: omnibench control-response --ckpt tiny --reference oracle --n 32 --out runs/tiny-response.json",
    )
    p.add_argument("--ckpt", required=True, help="any generator omnibench evaluate takes (name or checkpoint)")
    p.add_argument("--generator", default=None, help="generator registry name or module:Class, as for evaluate")
    p.add_argument("--reference", default=None, help="also measure this generator on the same controls (e.g. oracle)")
    p.add_argument("--protocol", default="quick", help="protocol whose main-set samples are used")
    p.add_argument("--n", type=int, default=32, help="samples (the first N of the main set)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from omnibench.control_response import control_response
    from omnibench.data.control_prior import SAMPLER_VERSION, sample_controls
    from omnibench.evaluation.draws import HeadPrior, draw_samples
    from omnibench.fileio import atomic_write_text
    from omnibench.generators.resolve import resolve_generator
    from omnibench.heads import load_head_model
    from omnibench.protocol import get_protocol

    if args.n < 2:
        raise OmnibenchError(f"--n must be at least 2 (correlations), got {args.n}")
    protocol = get_protocol(args.protocol)
    gen = resolve_generator(args.ckpt, args.generator, device=args.device)[0]
    ref = resolve_generator(args.reference, device=args.device)[0] if args.reference else None
    head = load_head_model(gen.head_model or "synthetic")
    source = HeadPrior(head, sample_controls, SAMPLER_VERSION, protocol.camera.framing)
    spec = draw_samples(protocol, "main", range(args.n), gen.z_dim, source)
    ref_z = draw_samples(protocol, "main", range(args.n), ref.z_dim, source).z if ref is not None else None
    res = {"ckpt": args.ckpt, "reference": args.reference, "protocol": protocol.name, "set": "main",
           **control_response(gen, spec.z, spec.controls, args.batch, reference=ref, reference_z=ref_z)}
    text = json.dumps(res, indent=2)
    if args.out:
        atomic_write_text(Path(args.out), text + "\n")
    print(text)
    return 0
