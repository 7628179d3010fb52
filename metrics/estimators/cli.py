"""``omnibench estimators ls|train|eval``: FLAME estimators behind AED/ASD/APD.

* ``train`` trains the ``regressor`` for a head model (rendering oracle images with known controls into
  the cache) or for a labelled EG3D-style dataset (``--data DIR``), and writes ``--out FILE`` plus a
  ``FILE.json`` sidecar pinning its sha256, the head model, held-out errors and the command.
* ``eval`` prints (JSON) an estimator's errors on held-out labelled images.
* ``ls`` lists the estimators of the registry (:data:`omnibench.metric_api.ESTIMATORS`, plug-ins included).

Entry point ``omnibench.tools: estimators``: the ``metrics`` package contributes this sub-command, the
omnibench CLI does not import it by name. Parsing stays light: training and evaluation import what they
need when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from omnibench.errors import OmnibenchError

DEFAULT_TRAIN_SEED = 1000  # data seed of the training renders
DEFAULT_HELDOUT_SEED = 2000  # data seed of the held-out renders (train --heldout, eval)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimators", help="train / evaluate / list the FLAME estimators used by AED, ASD and APD",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n"
                              "  omnibench estimators train --head synthetic --out regressor.pt\n"
                              "  omnibench estimators train --head /path/to/flame --data DIR --out regressor.pt\n"
                              "  omnibench estimators eval --estimator regressor --head synthetic --n 256")
    s = p.add_subparsers(dest="estimators_command", metavar="ACTION")

    ls = s.add_parser("ls", help="list registered estimators")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_ls)

    t = s.add_parser("train", help="train the regressor estimator for a head model or labelled dataset")
    t.add_argument("--head", default="synthetic", help="head model: synthetic, synthetic:<preset>, or a FLAME path")
    t.add_argument("--data", default=None, help="EG3D-style dataset folder(s) with FLAME labels, comma-separated to train on their union (default: render oracle images)")
    t.add_argument("--out", required=True, help="output weights file (.pt); a .pt.json sidecar is written next to it")
    t.add_argument("--steps", type=int, default=6000, help="optimiser steps (default 6000)")
    t.add_argument("--res", type=int, default=64, help="network input resolution, multiple of 16 (default 64)")
    t.add_argument("--render-res", type=int, default=None, help="resolution of the rendered training images (default --res)")
    t.add_argument("--crop", type=float, default=1.0, help="central fraction of each image the network sees (default 1)")
    t.add_argument("--n", type=int, default=4000, help="rendered training images when --data is not given (default 4000)")
    t.add_argument("--prior", default="ffhq", choices=("ffhq", "wide", "wide-pairs"),
                   help="control distribution of the rendered training images: ffhq (default, the protocols'), "
                        "wide (every sample expressive) or wide-pairs (wide, in pairs differing only in expression "
                        "and jaw; for --pair-weight); held-out errors are always measured under ffhq")
    t.add_argument("--framing", default="v1", choices=("v1", "ffhq"),
                   help="camera framing of the rendered images (v1: protocols v1, default; ffhq: protocols v2); "
                        "a --data set must have been rendered with it")
    t.add_argument("--seed", type=int, default=DEFAULT_TRAIN_SEED,
                   help=f"data seed of the rendered training images (default {DEFAULT_TRAIN_SEED})")
    t.add_argument("--heldout", type=int, default=256,
                   help=f"held-out renders (data seed {DEFAULT_HELDOUT_SEED}) to report errors on; 0 = none")
    t.add_argument("--n-shape", type=int, default=100, help="shape coefficients predicted (default 100)")
    t.add_argument("--n-expression", type=int, default=50, help="expression coefficients predicted (default 50)")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--shift", type=int, default=3, help="augmentation: random shifts of up to N px (default 3)")
    t.add_argument("--dropout", type=float, default=0.3, help="dropout of the MLP head (default 0.3)")
    t.add_argument("--widths", default="16,32,64,96", help="channels of the four conv blocks (default 16,32,64,96)")
    t.add_argument("--pair-weight", type=float, default=0.0,
                   help="weight of the pair-consistency loss on wide-pairs data (prediction differences within a "
                        "pair = label differences); default 0 (off)")
    t.add_argument("--aligned-steps", type=int, default=6000,
                   help="steps of the face-aligned stage that re-reads shape, expression and jaw on a frontalised "
                        "face crop (default 6000; 0 = one-stage weights)")
    t.add_argument("--aligned-size", type=int, default=32, help="side of the frontalised face crop in px (default 32)")
    t.add_argument("--camera-noise", type=float, default=2.0,
                   help="std (deg) of the yaw/pitch jitter of the training crops' cameras (default 2)")
    t.add_argument("--finish-data", default=None,
                   help="dataset folder(s) the aligned stage trains on alone for its last --finish-fraction of steps "
                        "(e.g. FFHQ-like renders, so estimates are calibrated to the protocols' control prior)")
    t.add_argument("--finish-fraction", type=float, default=0.25, help="see --finish-data (default 0.25)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--train-seed", type=int, default=0, help="initialisation / batching seed")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (weights are bit-identical for equal threads)")
    t.add_argument("--workers", type=int, default=1, help="rendering processes")
    t.set_defaults(func=run_train)

    e = s.add_parser("eval", help="errors of an estimator on held-out labelled images (JSON on stdout)")
    e.add_argument("--estimator", default="regressor", help="registry name or module:Class")
    e.add_argument("--head", default="synthetic")
    e.add_argument("--weights", default=None, help="the estimator's weights (regressor default: looked up by head sha256; "
                   "deca/emoca/smirk: your deca_model.tar, EMOCA model folder or .ckpt, SMIRK_em1.pt)")
    e.add_argument("--data", default=None, help="EG3D-style dataset folder (default: render --n oracle images)")
    e.add_argument("--n", type=int, default=256)
    e.add_argument("--res", type=int, default=64, help="render resolution when --data is not given")
    e.add_argument("--seed", type=int, default=DEFAULT_HELDOUT_SEED,
                   help=f"data seed of rendered held-out images (default {DEFAULT_HELDOUT_SEED})")
    e.add_argument("--framing", default="v1", choices=("v1", "ffhq"),
                   help="camera framing of rendered held-out images (and of the regressor weights looked up)")
    e.add_argument("--limit", type=int, default=0, help="use only the first N images")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", default="cpu")
    e.add_argument("--workers", type=int, default=1)
    e.set_defaults(func=run_eval)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def run_ls(args: argparse.Namespace) -> int:
    from omnibench.metric_api import ESTIMATORS, load_metric_plugins

    load_metric_plugins()
    rows = []
    for name in ESTIMATORS.names():
        try:
            cls = ESTIMATORS.get(name)
            rows.append({"name": name, "version": cls.version, "doc": (cls.__doc__ or "").strip().split("\n")[0]})
        except OmnibenchError as exc:
            rows.append({"name": name, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:14s} v{r.get('version', '?')}  {r.get('doc', r.get('error', ''))}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    args.argv_tail = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else []
    out = train_main(args)
    print(json.dumps(out, indent=2, sort_keys=True, default=str))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    out = eval_main(args)
    print(json.dumps(out, indent=2, sort_keys=True, default=str))
    return 0


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _data(head: str, data: str | None, n: int, res: int, seed: int, workers: int, render_res: int | None = None,
          crop: float = 1.0, prior: str = "ffhq", framing: str = "v1") -> Any:
    from metrics.estimators.training import read_dataset, read_datasets, render_dataset

    if data:
        return read_datasets(data, res=res, crop=crop)
    t0 = time.time()
    path = render_dataset(head, n, render_res or res, seed, workers=workers, progress=True, prior=prior,
                          framing=framing)
    _log(f"training data: {path} ({time.time() - t0:.0f}s)")
    return read_dataset(path, res=res, crop=crop)


def train_main(args: Any) -> dict[str, Any]:
    """``omnibench estimators train``: returns the sidecar written next to ``--out``."""
    import torch

    from metrics.estimators.regressor import save_checkpoint
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
    from omnibench.heads import load_head_model

    if args.res % 16:
        raise OmnibenchError(f"--res must be a multiple of 16, got {args.res}")
    head_spec = args.head
    if not 0.1 <= args.crop <= 1.0:
        raise OmnibenchError(f"--crop must be in [0.1, 1], got {args.crop}")
    data = _data(head_spec, args.data, args.n, args.res, args.seed, args.workers, args.render_res, args.crop,
                 args.prior, args.framing)
    if args.data and data.framing.name != args.framing:
        raise OmnibenchError(f"--data was rendered with camera framing '{data.framing.name}', not --framing "
                             f"{args.framing}")
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
        if finish.framing != data.framing:
            raise OmnibenchError("--finish-data was rendered with another camera framing than --data")
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
                                   workers=args.workers, progress=True, framing=args.framing)
        held_data = read_dataset(held_path)
        held = heldout_errors(regressor_estimate_fn(net, config, mean, std, head), held_data)
    sidecar = {
        "head": {"name": head.name, "sha256": head.sha256, "spec": head_spec},
        **({} if data.framing.name == "v1" else {"framing": data.framing.to_dict()}),
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
    from metrics.estimators import load_estimator
    from metrics.estimators.training import heldout_errors, read_dataset, render_dataset
    from omnibench.heads import load_head_model

    head = load_head_model(args.head)
    from metrics.estimators import resolve_estimator_class

    data = read_dataset(args.data) if args.data else None
    options: dict[str, Any] = {"weights": args.weights} if args.weights else {}
    if resolve_estimator_class(args.estimator).uses_framing:
        options["framing"] = data.framing.name if data is not None else args.framing
    est = load_estimator(args.estimator, head, device=args.device, **options)  # bad weights fail before rendering
    if data is None:
        data = read_dataset(render_dataset(args.head, args.n, args.res, args.seed, workers=args.workers, progress=True,
                                           framing=args.framing))
    if args.limit:
        data.images, data.controls = data.images[: args.limit], data.controls.index(slice(0, args.limit))
    t0 = time.time()
    errors = heldout_errors(est.estimate, data, batch_size=args.batch_size)
    errors["seconds_per_image"] = (time.time() - t0) / max(1, data.images.shape[0])
    return {"estimator": est.describe(), "data": data.source, "errors": errors}
