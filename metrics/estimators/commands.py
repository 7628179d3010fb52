"""Implementations behind ``omnibench estimators train|eval`` (the CLI reaches them through the
estimator registry, never by importing ``metrics``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from metrics.estimators import load_estimator
from metrics.estimators.regressor import load_checkpoint, save_checkpoint
from metrics.estimators.training import (
    TrainConfig,
    heldout_errors,
    read_dataset,
    read_datasets,
    regressor_estimate_fn,
    render_dataset,
    train_aligned,
    train_regressor,
)
from omnibench.errors import OmnibenchError

DEFAULT_TRAIN_SEED = 1000  # data seeds of training renders; held-out renders use DEFAULT_HELDOUT_SEED
DEFAULT_HELDOUT_SEED = 2000


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _data(head: str, data: str | None, n: int, res: int, seed: int, workers: int, render_res: int | None = None,
          crop: float = 1.0, prior: str = "ffhq") -> Any:
    if data:
        return read_datasets(data, res=res, crop=crop)
    t0 = time.time()
    path = render_dataset(head, n, render_res or res, seed, workers=workers, progress=True, prior=prior)
    _log(f"training data: {path} ({time.time() - t0:.0f}s)")
    return read_dataset(path, res=res, crop=crop)


def train_main(args: Any) -> dict[str, Any]:
    """``omnibench estimators train``: returns the sidecar written next to ``--out``."""
    from omnibench.heads import load_head_model

    if args.res % 16:
        raise OmnibenchError(f"--res must be a multiple of 16, got {args.res}")
    head_spec = args.head
    if not 0.1 <= args.crop <= 1.0:
        raise OmnibenchError(f"--crop must be in [0.1, 1], got {args.crop}")
    data = _data(head_spec, args.data, args.n, args.res, args.seed, args.workers, args.render_res, args.crop,
                 args.prior)
    head = load_head_model(head_spec)
    trained_sha = data.head.get("sha256")
    if args.data and trained_sha and trained_sha != head.sha256:
        raise OmnibenchError(f"dataset '{args.data}' was labelled with head model sha256 {trained_sha}, "
                             f"but --head {head_spec} has {head.sha256}")
    n_shape = min(args.n_shape, data.controls.shape.shape[1], int(head.n_shape))
    n_expr = min(args.n_expression, data.controls.expression.shape[1], int(head.n_expression))
    try:
        widths = tuple(int(w) for w in str(args.widths).split(","))
    except ValueError:
        raise OmnibenchError(f"--widths must be comma-separated integers, got '{args.widths}'") from None
    if len(widths) != 4 or min(widths) < 1:
        raise OmnibenchError(f"--widths needs four positive channel counts, got '{args.widths}'")
    if args.pair_weight < 0:
        raise OmnibenchError(f"--pair-weight must be >= 0, got {args.pair_weight}")
    if args.shift < 0 or not 0.0 <= args.dropout < 1.0:
        raise OmnibenchError(f"--shift must be >= 0 and --dropout in [0, 1), got {args.shift} and {args.dropout}")
    if args.aligned_steps < 0 or args.aligned_size % 8 or args.aligned_size < 8:
        raise OmnibenchError(f"--aligned-steps must be >= 0 and --aligned-size a positive multiple of 8, got "
                             f"{args.aligned_steps} and {args.aligned_size}")
    if not 0.0 < args.finish_fraction < 1.0 or args.camera_noise < 0:
        raise OmnibenchError(f"--finish-fraction must be in (0, 1) and --camera-noise >= 0, got {args.finish_fraction} "
                             f"and {args.camera_noise}")
    if args.finish_data and not args.aligned_steps:
        raise OmnibenchError("--finish-data applies to the aligned stage: give --aligned-steps > 0")
    finish = None
    if args.finish_data:
        finish = read_datasets(args.finish_data, res=args.res)
        if finish.head.get("sha256") != data.head.get("sha256"):
            raise OmnibenchError("--finish-data was labelled with another head model than --data")
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, res=args.res, seed=args.train_seed,
                      threads=args.threads, crop=args.crop, shift=args.shift, dropout=args.dropout, widths=widths,
                      pair_weight=args.pair_weight, aligned_steps=args.aligned_steps, aligned_size=args.aligned_size,
                      camera_noise_deg=args.camera_noise, finish_fraction=args.finish_fraction)
    t0 = time.time()
    net, config, mean, std, history = train_regressor(data, n_shape, n_expr, cfg, log=_log)
    if cfg.aligned_steps:
        history += train_aligned(net, config, mean, std, data, head, cfg, finish=finish, log=_log)
    train_s = time.time() - t0
    held = None
    if args.heldout > 0:  # rendered by the oracle of --head (a --data set was checked to use that head)
        # held-out images are read uncropped at render resolution: the estimator crops them itself
        held_path = render_dataset(head_spec, args.heldout, args.render_res or args.res, DEFAULT_HELDOUT_SEED,
                                   workers=args.workers, progress=True)
        held_data = read_dataset(held_path)
        held = heldout_errors(regressor_estimate_fn(net, config, mean, std, head), held_data)
    sidecar = {
        "head": {"name": head.name, "sha256": head.sha256, "spec": head_spec},
        "data": data.source,
        "finish_data": finish.source if finish is not None else None,
        "train_seconds": round(train_s, 1),
        "final_loss": history[-1]["loss"] if history else None,
        "heldout": held,
        "command": "omnibench estimators train " + " ".join(args.argv_tail),
        "torch": torch.__version__,
    }
    digest = save_checkpoint(Path(args.out), net, config, mean, std, sidecar)
    sidecar["sha256"] = digest
    return sidecar


def eval_main(args: Any) -> dict[str, Any]:
    """``omnibench estimators eval``: errors of an estimator on held-out labelled images."""
    from omnibench.heads import load_head_model

    head = load_head_model(args.head)
    options = {"weights": args.weights} if args.weights else {}
    est = load_estimator(args.estimator, head, device=args.device, **options)
    data = read_dataset(args.data) if args.data else read_dataset(
        render_dataset(args.head, args.n, args.res, args.seed, workers=args.workers, progress=True))
    if args.limit:
        data.images, data.controls = data.images[: args.limit], data.controls.index(slice(0, args.limit))
    t0 = time.time()
    errors = heldout_errors(est.estimate, data, batch_size=args.batch_size)
    errors["seconds_per_image"] = (time.time() - t0) / max(1, data.images.shape[0])
    return {"estimator": est.describe(), "data": data.source, "errors": errors}


def check_weights(path: str) -> dict[str, Any]:
    """Verify a weights file against its sidecar; returns the sidecar."""
    return load_checkpoint(Path(path))[4]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)
