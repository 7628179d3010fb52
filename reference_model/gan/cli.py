"""``omnibench train gan`` (entry point ``omnibench.trainers``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omnibench.errors import OmnibenchError


def register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gan",
        help="train the Stage II geometry-guided tri-plane GAN",
        epilog="example: omnibench train gan --config tiny --data data/synth64 --sdf runs/sdf/W.pt --out runs/gan/tiny",
    )
    p.add_argument("--config", default="tiny", help="tiny (2 CPU cores) or ffhq512 (GPU)")
    p.add_argument("--data", required=True, help="EG3D-style dataset folder with FLAME labels")
    p.add_argument("--sdf", default=None,
                   help="Stage I checkpoint (omnibench train sdf); default: the shipped reference_model/checkpoints/sdf-tiny.pt")
    p.add_argument("--ablation", default="full", help="full, no-prior, no-enc, no-dynamic or eg3d")
    p.add_argument("--out", default="runs/gan/tiny", help="run folder (checkpoint.pt, log.jsonl, samples)")
    p.add_argument("--release", default=None, help="also export a release checkpoint (no D/optimisers) here")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--enc-aligned", action="store_true",
                   help="train E for L_enc on face crops aligned by the rendering camera (reads expression at 64 px)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from omnibench.assets import sha256_file as file_sha256
    from omnibench.heads import load_head_model
    from reference_model.gan.config import ABLATIONS, CONFIGS
    from reference_model.gan.data import load_training_set
    from reference_model.gan.train import Trainer, export_release
    from reference_model.sdf.checkpoint import load_sdf

    if args.config not in CONFIGS:
        raise OmnibenchError(f"unknown GAN config '{args.config}'; available: {', '.join(CONFIGS)}")
    if args.ablation not in ABLATIONS:
        raise OmnibenchError(f"unknown ablation '{args.ablation}'; available: {', '.join(ABLATIONS)}")
    out = Path(args.out)
    if (out / "checkpoint.pt").exists() and not args.resume:
        raise OmnibenchError(f"'{out}' already holds a run: pass --resume to continue it or choose another --out")
    if args.sdf is None:
        from reference_model.sdf.release import SHIPPED_SDF

        args.sdf = str(SHIPPED_SDF)
    cfg = CONFIGS[args.config].with_overrides(steps=args.steps, batch=args.batch, seed=args.seed,
                                             enc_aligned=True if args.enc_aligned else None, **ABLATIONS[args.ablation])
    sdf_ckpt_head = __import__("reference_model.sdf.checkpoint", fromlist=["read_sdf_checkpoint"]).read_sdf_checkpoint(args.sdf)
    head = load_head_model(sdf_ckpt_head["config"]["head"])
    sdf = load_sdf(args.sdf, head=head)
    meta = {"sha256": file_sha256(args.sdf), "config": sdf.cfg.to_dict(), "center": sdf.center.clone(),
            "radius": float(sdf.radius)}
    data = load_training_set(args.data)
    trainer = Trainer(cfg, data, sdf, head, meta, out, device=args.device)
    ckpt = trainer.run()
    result = {"checkpoint": str(ckpt), "step": trainer.step, "config": cfg.name, "ablation": args.ablation}
    if args.release:
        result["release"] = str(export_release(ckpt, Path(args.release)))
    print(json.dumps(result))
    return 0
