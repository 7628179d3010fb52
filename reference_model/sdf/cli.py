"""CLI hooks registered through the ``omnibench.trainers`` / ``omnibench.tools`` entry points."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sdf",
        help="train the Stage I semantic SDF W",
        epilog="example: omnibench train sdf --config tiny --out runs/sdf/W.pt",
    )
    p.add_argument("--config", default="tiny", help="tiny (2 CPU cores) or full (paper scale, GPU)")
    p.add_argument("--head", default=None, help="head model: 'synthetic', 'synthetic:tiny' or a FLAME path")
    p.add_argument("--out", default="runs/sdf/W.pt", help="checkpoint path (rewritten every ckpt_every steps)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--steps", type=int, default=None, help="override the config's step count")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--mobile-fraction", type=float, default=None,
                   help="fraction of surface points drawn where expression moves the surface (default: config's, 0)")
    p.add_argument("--release", default=None, help="also export the final weights without optimiser state here")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from reference_model.sdf.train import config_from_name, train

    cfg = config_from_name(args.config).with_overrides(
        head=args.head, steps=args.steps, seed=args.seed, mobile_fraction=args.mobile_fraction
    )
    if not str(args.device).startswith("cuda"):
        # the data worker needs a core of its own: on 2 cores, two compute threads starved it (0.8 s/step)
        torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 1)))
    out = train(cfg, Path(args.out), device=args.device, resume=args.resume)
    result = {"checkpoint": str(out), "config": cfg.name, "steps": cfg.steps}
    if args.release and int(os.environ.get("RANK", "0")) == 0:
        from reference_model.sdf.checkpoint import export_release

        result["release"] = str(export_release(out, Path(args.release)))
    print(json.dumps(result))
    return 0


def register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-sdf", help="held-out accuracy of a Stage I SDF checkpoint")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--head", default=None, help="head model (default: the one named in the checkpoint)")
    p.add_argument("--meshes", type=int, default=16, help="held-out parameter sets")
    p.add_argument("--images", default=None, help="folder for the SDF slice and correspondence images")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.set_defaults(func=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from omnibench.fileio import atomic_write_text
    from omnibench.heads import load_head_model
    from reference_model.sdf.checkpoint import load_sdf, read_sdf_checkpoint
    from reference_model.sdf.evaluate import evaluate_sdf, write_images

    ckpt = read_sdf_checkpoint(args.ckpt)
    head = load_head_model(args.head or ckpt["config"]["head"])
    model = load_sdf(args.ckpt, head=head)
    res = {"checkpoint": args.ckpt, "step": ckpt["step"], "config": ckpt["config"]["name"], **evaluate_sdf(model, head, args.meshes)}
    if args.images:
        res["images"] = [str(p) for p in write_images(model, head, Path(args.images))]
    text = json.dumps(res, indent=2)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text, file=sys.stdout)
    return 0
