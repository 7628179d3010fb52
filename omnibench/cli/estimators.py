"""``omnibench estimators ls|train|eval``: FLAME estimators behind AED/ASD/APD.

* ``train`` trains the ``regressor`` for a head model (rendering oracle images with known controls into
  the cache) or for a labelled EG3D-style dataset (``--data DIR``), and writes ``--out FILE`` plus a
  ``FILE.json`` sidecar pinning its sha256, the head model, held-out errors and the command.
* ``eval`` prints (JSON) an estimator's errors on held-out labelled images.

Estimators are reached through the ``omnibench.metrics`` plug-in registry (never imported by name).
"""

from __future__ import annotations

import argparse
import json
import sys


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
    t.add_argument("--seed", type=int, default=1000, help="data seed of the rendered training images (default 1000)")
    t.add_argument("--heldout", type=int, default=256, help="held-out renders (data seed 2000) to report errors on; 0 = none")
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
    e.add_argument("--weights", default=None, help="regressor weights (default: looked up by head sha256)")
    e.add_argument("--data", default=None, help="EG3D-style dataset folder (default: render --n oracle images)")
    e.add_argument("--n", type=int, default=256)
    e.add_argument("--res", type=int, default=64, help="render resolution when --data is not given")
    e.add_argument("--seed", type=int, default=2000, help="data seed of rendered held-out images (default 2000)")
    e.add_argument("--limit", type=int, default=0, help="use only the first N images")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--device", default="cpu")
    e.add_argument("--workers", type=int, default=1)
    e.set_defaults(func=run_eval)
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])


def _commands():
    from omnibench.metric_api import ESTIMATORS, load_metric_plugins

    load_metric_plugins()
    return ESTIMATORS.get("regressor").commands()


def run_ls(args: argparse.Namespace) -> int:
    from omnibench.errors import OmnibenchError
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
    out = _commands().train_main(args)
    print(json.dumps(out, indent=2, sort_keys=True, default=str))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    out = _commands().eval_main(args)
    print(json.dumps(out, indent=2, sort_keys=True, default=str))
    return 0
