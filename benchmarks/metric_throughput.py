"""Throughput of each metric of ``omnibench evaluate`` in images per second, generation timed apart.

    OMNIBENCH_CACHE=$(mktemp -d) python benchmarks/metric_throughput.py --ckpt oracle --protocol quick
    python benchmarks/metric_throughput.py --metrics id-views,aed,geometry --json throughput.json

1. One ``evaluate`` run fills the shared sample cache (``$OMNIBENCH_CACHE``) with every sample set the
   chosen metrics need, and builds/opens the default real set when fid or kid is chosen; its ``timings``
   (``generate/<set>``, ``build/real``) give the generation (sampling) time, printed once. Sets already
   in the cache are not regenerated (shown as cached): point ``OMNIBENCH_CACHE`` at an empty folder to
   time generation too.
2. Each metric then runs alone, in its own ``evaluate`` call, on the cached samples; its time is the
   result's ``timings["metric/<key>"]`` (the engine's wall time of the metric, generation excluded; it
   includes loading the metric's networks and reading the cached samples).
   Each call gets its own cache root whose entries link to the shared one except ``features/`` and
   ``stats/``, so nothing computed by one metric is reused by another: fid and kid each pay the Inception
   pass over the generated and the real images, and asd/apd pay the FLAME estimator pass (in one
   ``evaluate`` with all metrics, kid reuses fid's features and asd/apd reuse aed's estimates).

``--estimators regressor,landmark-fit,photo-fit,deca,emoca,smirk`` instead times each FLAME estimator's
``estimate`` side by side on the same ``--n`` oracle renders (``--res`` px, the protocol's framing, batches of
``--batch-size``): images/s per estimator in one run. ``deca``/``emoca``/``smirk`` run on randomly initialised
weights written to a temporary folder in their formats (speed does not depend on the values; their real
weights are the user's), ``smirk`` only when timm is installed. ``--whole-mesh`` adds a row per fitting estimator
(``landmark-fit``, ``photo-fit``) whose fitter poses the whole mesh, as before
:meth:`omnibench.heads.HeadModel.landmark_subset`, timed on the same images in the same run.

Images = what the metric reads: the sizes of the sample sets in its ``requires`` (quick: main 500,
views 24 x 3 = 72, expr 24 x 3 = 72) plus the real set for fid/kid (quick: 500 + 500). images/s =
images / metric seconds; the last column names the networks the metric used (aed/asd/apd are far
slower with the ``landmark-fit`` estimator than with the ``regressor``). One-off asset preparation (the
FID Inception weights conversion) is done before timing. Numbers depend on the machine's load; the torch
thread count is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnibench.metric_api import Metric, MetricResult  # noqa: E402
from omnibench.protocol import SET_NAMES  # noqa: E402

PRIVATE = ("features", "stats")  # derived caches each metric must compute itself


class _Touch(Metric):
    """Benchmark helper: generates one sample set into the cache (variant = set name); value = its size."""

    name = "touch"
    variants = {s: f"generate the {s} set" for s in SET_NAMES}
    default_variant = "main"
    requires = ()

    def compute(self, ctx: Any, variant: str) -> MetricResult:
        n = ctx.ensure_set(variant).n
        return MetricResult(value=float(n), n=int(n))


class _TouchReal(Metric):
    """Benchmark helper: the engine builds (when needed) and opens the real set before any metric runs."""

    name = "touch-real"
    requires = ("real",)

    def compute(self, ctx: Any, variant: str) -> MetricResult:
        return MetricResult(value=None, n=0)


@contextlib.contextmanager
def _cache_root(path: Path) -> Iterator[None]:
    old = os.environ.get("OMNIBENCH_CACHE")
    os.environ["OMNIBENCH_CACHE"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("OMNIBENCH_CACHE", None)
        else:
            os.environ["OMNIBENCH_CACHE"] = old


def _private_root(shared: Path, root: Path) -> Path:
    """A cache root sharing samples, datasets and converted weights with ``shared`` but no derived caches."""
    root.mkdir(parents=True)
    for entry in shared.iterdir():
        if entry.name not in PRIVATE and not entry.name.startswith("."):
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return root


def _rate(images: int, seconds: float) -> float | None:
    return images / seconds if seconds > 0 else None


def _fmt_rate(r: float | None) -> str:
    return "-" if r is None else f"{r:.1f}" if r >= 1 else f"{r:.3g}"


def format_table(rows: list[dict], skipped: dict[str, str], first: str = "metric", last: str = "backbones") -> str:
    """Aligned ``metric  images  seconds  images/s  backbones`` lines, then the skipped metrics."""
    w = max([len(first)] + [len(row["metric"]) for row in rows] + [len(k) for k in skipped])
    lines = [f"{first:<{w}}  {'images':>7}  {'seconds':>9}  {'images/s':>9}  {last}"]
    for row in rows:
        lines.append(f"{row['metric']:<{w}}  {row['images']:>7}  {row['seconds']:>9.2f}  "
                     f"{_fmt_rate(row['images_per_s']):>9}  {', '.join(row.get('backbones') or []) or '-'}")
    lines += [f"{key:<{w}}  skipped: {why}" for key, why in skipped.items()]
    return "\n".join(lines)


def _random_weights(name: str, folder: Path) -> str | None:
    """A randomly initialised weights file in ``name``'s format (speed only), or None for shipped/fitted ones."""
    import torch

    if name == "deca":
        from metrics.estimators.deca import ResnetCoder

        torch.save({"E_flame": ResnetCoder(236).state_dict()}, folder / "deca_model.tar")
        return str(folder / "deca_model.tar")
    if name == "emoca":
        from metrics.estimators.deca import ResnetCoder

        state = {f"deca.E_flame.{k}": v for k, v in ResnetCoder(236).state_dict().items()}
        state.update({f"deca.E_expression.{k}": v for k, v in ResnetCoder(53).state_dict().items()})
        ckpt = folder / "emoca" / "detail" / "checkpoints" / "last.ckpt"
        ckpt.parent.mkdir(parents=True)
        torch.save({"state_dict": state}, ckpt)
        return str(folder / "emoca")
    if name == "smirk":
        from metrics.estimators.smirk import SmirkNet

        torch.save({f"smirk_encoder.{k}": v for k, v in SmirkNet().state_dict().items()}, folder / "SMIRK_em1.pt")
        return str(folder / "SMIRK_em1.pt")
    return None


def estimator_main(args: argparse.Namespace) -> int:
    """``--estimators``: images/s of each estimator's ``estimate`` on the same oracle renders."""
    import time

    import torch

    from metrics.estimators import load_estimator, resolve_estimator_class
    from omnibench.data.control_prior import sample_controls, sample_latents
    from omnibench.errors import OmnibenchError
    from omnibench.generators.oracle import OracleGenerator
    from omnibench.heads import load_head_model
    from omnibench.protocol import get_protocol

    proto = get_protocol(args.protocol)
    head = load_head_model("synthetic")
    controls = sample_controls(args.n, proto.seed, head, framing=proto.camera.framing)
    gen = OracleGenerator(head="synthetic", resolution=args.res)
    images = gen.synthesize(sample_latents(args.n, proto.seed, gen.z_dim), controls.fit_layout(gen.flame_layout)).image_uint8()
    rows, skipped = [], {}
    with tempfile.TemporaryDirectory(prefix="omnibench-estimators-") as tmp:
        for name in [e.strip() for e in args.estimators.split(",") if e.strip()]:
            try:
                opts: dict[str, Any] = {}
                weights = _random_weights(name, Path(tmp))
                if weights:
                    opts["weights"] = weights
                if resolve_estimator_class(name).uses_framing:
                    opts["framing"] = proto.camera.framing.name
                est = load_estimator(name, head, device=args.device, **opts)
                est.estimate(images[:1])  # warm-up: detector and network loading are not timed
            except (OmnibenchError, ImportError) as exc:
                skipped[name] = str(exc)
                continue
            fitter = getattr(est, "fitter", None)
            variants = [(name, None)]
            if args.whole_mesh and fitter is not None and fitter.head is not head:
                variants.append((f"{name} (whole mesh)", head))  # the fitter as before HeadModel.landmark_subset
            for label, mesh in variants:
                if mesh is not None:
                    fitter.head = mesh
                t0 = time.perf_counter()
                found = 0
                for i in range(0, args.n, args.batch_size):
                    found += int(est.estimate(images[i : i + args.batch_size]).detected.sum())
                sec = time.perf_counter() - t0
                rows.append({"metric": label, "images": args.n, "seconds": round(sec, 3),
                             "images_per_s": _rate(args.n, sec),
                             "backbones": [f"{found}/{args.n} detected"] + (["random weights"] if weights else [])})
                print(f"  {label:<24} {args.n:>6} images {sec:9.2f} s", file=sys.stderr)
    print(f"estimator throughput (oracle renders at {args.res} px, protocol {proto.name}, {args.device}, batch "
          f"{args.batch_size}, torch threads {torch.get_num_threads()})")
    print(format_table(rows, skipped, first="estimator", last="notes"))
    if args.json:
        Path(args.json).write_text(json.dumps({"estimators": rows, "skipped": skipped, "n": args.n, "res": args.res},
                                              indent=2) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="oracle", help="checkpoint path or built-in generator (default: oracle)")
    ap.add_argument("--generator", help="registry name or module:Class reading --ckpt")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--metrics", help="comma list of name[@variant] (default: every installed metric)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=16, help="generator/metric batch size (evaluate's default)")
    ap.add_argument("--json", metavar="OUT", help="also write the table as JSON to OUT")
    ap.add_argument("--estimators", help="comma list of FLAME estimators to time side by side instead of the metrics")
    ap.add_argument("--n", type=int, default=16, help="--estimators: oracle renders to estimate (default 16)")
    ap.add_argument("--res", type=int, default=128, help="--estimators: render resolution (default 128)")
    ap.add_argument("--whole-mesh", action="store_true",
                    help="--estimators: also time the fitting estimators posing the whole mesh (no landmark subset)")
    args = ap.parse_args()
    if args.estimators:
        return estimator_main(args)

    import torch

    from omnibench.assets import cache_root
    from omnibench.errors import OmnibenchError
    from omnibench.evaluation import evaluate
    from omnibench.evaluation.provenance import environment
    from omnibench.metric_api import resolve_metrics
    from omnibench.protocol import get_protocol

    proto = get_protocol(args.protocol)
    explicit = args.metrics is not None
    specs = [s.strip() for s in args.metrics.split(",") if s.strip()] if explicit else None
    runs: list[tuple[str, str, type[Metric]]] = []  # (result key, spec given to evaluate, class)
    try:
        if specs is None:
            chosen, skipped = resolve_metrics(None)
            runs = [(key, key, cls) for key, cls, _ in chosen]
        else:
            skipped = {}
            for spec in specs:
                key, cls, _ = resolve_metrics([spec])[0][0]
                if key not in [k for k, _, _ in runs]:
                    runs.append((key, spec, cls))
    except OmnibenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    common = {"generator": args.generator, "protocol": proto, "device": args.device,
              "batch_size": args.batch_size, "progress": False}
    shared = cache_root()

    # 1. generation: one evaluate run that only fills the sample cache (and the default real set)
    sets = [s for s in SET_NAMES if any(s in cls.requires for _, _, cls in runs)]
    needs_real = any("real" in cls.requires for _, _, cls in runs)
    touch = [f"{__name__}:_Touch@{s}" for s in sets] + ([f"{__name__}:_TouchReal"] if needs_real else [])
    if needs_real:
        from metrics import inception

        with contextlib.suppress(OmnibenchError):  # a missing asset fails (or skips) fid/kid below
            inception.resolve_inception_weights()  # one-off conversion into the shared cache, not timed
    with _cache_root(shared):
        pop = evaluate(args.ckpt, metrics=touch, **common) if touch else {"timings": {}, "checkpoint": {}}
    tim = pop["timings"]
    made = [s for s in sets if tim.get(f"generate/{s}", 0.0) > 0]  # the others were already cached
    n_gen = sum(proto.set_size(s).n for s in made)
    gen_s = sum(tim[f"generate/{s}"] for s in made)
    n_real = int((pop.get("real") or {}).get("n") or proto.real_n or 0)
    generation = {"sets": {s: proto.set_size(s).n for s in made}, "images": n_gen, "seconds": round(gen_s, 3),
                  "images_per_s": _rate(n_gen, gen_s), "cached_sets": [s for s in sets if s not in made]}
    if needs_real:
        build_s = tim.get("build/real", 0.0)
        generation["real_set"] = {"images": n_real, "seconds": round(build_s, 3), "cached": build_s == 0.0}

    # 2. each metric alone on the cached samples, its own derived caches
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="omnibench-throughput-") as tmp:
        for i, (key, spec, cls) in enumerate(runs):
            root = _private_root(shared, Path(tmp) / f"m{i}")
            try:
                with _cache_root(root):
                    r = evaluate(args.ckpt, metrics=[spec], **common)
            except OmnibenchError as exc:
                if explicit:
                    print(f"error: {key}: {exc}", file=sys.stderr)
                    return 2
                skipped[key] = str(exc)
                print(f"  {key}: skipped ({exc})", file=sys.stderr)
                continue
            t = r["timings"]
            regen = sum(v for k, v in t.items() if k.startswith(("generate/", "build/")))
            if regen > 0:
                print(f"  warning: {key} regenerated samples ({regen:.1f} s, excluded from its time)", file=sys.stderr)
            seconds = float(t[f"metric/{key}"])
            real_n = int((r.get("real") or {}).get("n") or n_real)
            images = sum(proto.set_size(s).n for s in cls.requires if s in SET_NAMES)
            images += real_n if "real" in cls.requires else 0
            rows.append({"metric": key, "images": images, "seconds": round(seconds, 3),
                         "images_per_s": _rate(images, seconds), "value": r["metrics"][key]["value"],
                         "backbones": sorted(r.get("backbones") or {})})
            print(f"  {key:<12} {images:>6} images {seconds:9.2f} s", file=sys.stderr)

    env = pop.get("environment") or environment(args.device)
    where = f"{args.ckpt}, protocol {proto.name}, {args.device}, batch {args.batch_size}, " \
            f"torch threads {env.get('torch_threads')}, {env.get('cpu_count')} CPUs"
    print(f"metric throughput ({where})")
    if made:
        parts = ", ".join(f"{s} {n}" for s, n in generation["sets"].items())
        print(f"sampling: {n_gen} images ({parts}) in {gen_s:.2f} s = {_fmt_rate(generation['images_per_s'])} images/s")
    if generation["cached_sets"]:
        print(f"sampling: {', '.join(generation['cached_sets'])} already cached (not timed)")
    if needs_real:
        rs = generation["real_set"]
        print(f"real set: {n_real} images, " + ("cached" if rs["cached"] else f"built in {rs['seconds']:.2f} s"))
    print(format_table(rows, skipped))
    if args.json:
        report = {"ckpt": args.ckpt, "generator": pop["checkpoint"].get("generator"), "protocol": proto.name,
                  "protocol_hash": proto.hash, "device": args.device, "batch_size": args.batch_size,
                  "torch_threads": torch.get_num_threads(), "cpu_count": env.get("cpu_count"),
                  "generation": generation, "metrics": rows, "skipped": skipped}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
