"""``omnibench train gan`` and ``omnibench train gan-encoder`` (entry point ``omnibench.trainers``)."""

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
    p.add_argument("--log-every", type=int, default=None, help="steps between log.jsonl lines (default: the config's)")
    p.add_argument("--enc-aligned", action="store_true",
                   help="train E for L_enc on face crops aligned by the rendering camera (reads expression at 64 px)")
    p.add_argument("--encoder", default=None,
                   help="freeze this pre-trained E (omnibench train gan-encoder) instead of training one on --data; "
                        "its layout sets --enc-aligned")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field after --config and --ablation (repeatable), e.g. --set w_prior_final=0.1 "
                        "--set prior_decay_start=1000 --set prior_decay_end=2000; pass the same on --resume")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_run)

    e = sub.add_parser(
        "gan-encoder",
        help="train the frozen control encoder E of L_enc once, for omnibench train gan --encoder",
        epilog="example: omnibench train gan-encoder --data data/wide-pairs-60k,data/ffhq-20k --finish-data "
               "data/ffhq-20k --heldout data/ffhq-heldout --aligned --steps 6000 --batch 64 --out runs/gan/E.pt",
    )
    e.add_argument("--config", default="tiny", help="GAN config whose expression width E must match")
    e.add_argument("--data", required=True, help="comma-separated dataset folders with FLAME labels")
    e.add_argument("--finish-data", default=None,
                   help="comma-separated folders the last --finish-fraction of the steps draw from only")
    e.add_argument("--finish-fraction", type=float, default=0.25)
    e.add_argument("--heldout", default=None, help="dataset folder scored after training (R^2, recorded in the file)")
    e.add_argument("--aligned", action="store_true", help="face crops aligned by the labelled cameras")
    e.add_argument("--sdf", default=None, help="Stage I checkpoint naming the head model (default: the shipped W)")
    e.add_argument("--steps", type=int, default=6000)
    e.add_argument("--batch", type=int, default=64)
    e.add_argument("--lr", type=float, default=1e-3)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--photometric", type=float, default=0.0,
                   help="strength of a random global colour change of every training image (0: none; 0.3: "
                        "brightness x0.7-1.3, channel gains x0.85-1.15, up to 30%% wash towards a grey)")
    e.add_argument("--init", default=None, help="fine-tune this encoder file (same head, layout and width) instead of "
                                                "starting from scratch; its sha256 is recorded in the recipe")
    e.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    e.add_argument("--device", default="cpu")
    e.add_argument("--out", required=True, help="encoder file to write")
    e.set_defaults(func=_run_encoder)


def parse_config_overrides(cfg, items: list[str]) -> dict:
    """``["key=value", ...]`` (split by :func:`omnibench.key_values.parse_options`) -> ``{key: value}`` for fields of
    ``cfg``; values are JSON (``0.1``, ``1000``, ``true``), else strings; ints become floats where the field holds a
    float. Unknown keys and malformed items are one error."""
    from dataclasses import fields

    from omnibench.key_values import parse_options

    known = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    out = {}
    for key, raw in parse_options(items, flag="--set").items():
        if key not in known:
            raise OmnibenchError(f"--set {key}: not a field of the config ({', '.join(sorted(known))})")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, int) and not isinstance(value, bool) and isinstance(known[key], float):
            value = float(value)
        out[key] = value
    return out


def _head_of_sdf(sdf_path: str | None):
    """(W path, head model W was trained for)."""
    from omnibench.heads import load_head_model
    from reference_model.sdf.checkpoint import read_sdf_checkpoint

    if sdf_path is None:
        from reference_model.sdf.release import SHIPPED_SDF

        sdf_path = str(SHIPPED_SDF)
    return sdf_path, load_head_model(read_sdf_checkpoint(sdf_path)["config"]["head"])


def _run_encoder(args: argparse.Namespace) -> int:
    import torch

    from reference_model.gan.config import CONFIGS
    from reference_model.gan.data import load_training_set
    from reference_model.gan.encoder_training import (
        EncoderRecipe,
        load_encoder,
        read_training_sets,
        save_encoder,
        score_encoder,
        train_encoder,
    )

    if args.config not in CONFIGS:
        raise OmnibenchError(f"unknown GAN config '{args.config}'; available: {', '.join(CONFIGS)}")
    if not 0.0 <= args.finish_fraction < 1.0:
        raise OmnibenchError(f"--finish-fraction must be in [0, 1), got {args.finish_fraction}")
    if not 0.0 <= args.photometric < 1.0:
        raise OmnibenchError(f"--photometric must be in [0, 1), got {args.photometric}")
    if args.threads:
        torch.set_num_threads(args.threads)
    _, head = _head_of_sdf(args.sdf)
    init, init_meta = load_encoder(args.init, head=head) if args.init else (None, {})
    data, data_meta = read_training_sets(args.data)
    finish, finish_meta = read_training_sets(args.finish_data) if args.finish_data else (None, [])
    recipe = EncoderRecipe(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                           finish_fraction=args.finish_fraction if finish is not None else 0.0,
                           photometric=args.photometric, init_sha256=init_meta.get("sha256", ""))
    E = train_encoder(CONFIGS[args.config].n_expression, args.aligned, data, recipe, head=head, finish=finish,
                      device=args.device, init=init).cpu()
    heldout = score_encoder(E, load_training_set(args.heldout)) if args.heldout else None
    out = save_encoder(args.out, E, head, recipe, data_meta, finish_meta, heldout)
    print(json.dumps({"encoder": str(out), "heldout": heldout}))
    return 0


def _run(args: argparse.Namespace) -> int:
    from omnibench.assets import sha256_file as file_sha256
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
    args.sdf, head = _head_of_sdf(args.sdf)
    encoder = None
    if args.encoder:
        from reference_model.gan.encoder_training import load_encoder

        encoder = load_encoder(args.encoder, head=head)
    aligned = encoder[0].aligned if encoder is not None else (True if args.enc_aligned else None)
    cfg = CONFIGS[args.config].with_overrides(steps=args.steps, batch=args.batch, seed=args.seed,
                                             log_every=args.log_every, enc_aligned=aligned, **ABLATIONS[args.ablation])
    cfg = cfg.with_overrides(**parse_config_overrides(cfg, args.set))
    sdf = load_sdf(args.sdf, head=head)
    meta = {"sha256": file_sha256(args.sdf), "config": sdf.cfg.to_dict(), "center": sdf.center.clone(),
            "radius": float(sdf.radius)}
    data = load_training_set(args.data)
    trainer = Trainer(cfg, data, sdf, head, meta, out, device=args.device, encoder=encoder)
    ckpt = trainer.run()
    result = {"checkpoint": str(ckpt), "step": trainer.step, "config": cfg.name, "ablation": args.ablation}
    if args.release:
        result["release"] = str(export_release(ckpt, Path(args.release)))
    print(json.dumps(result))
    return 0
