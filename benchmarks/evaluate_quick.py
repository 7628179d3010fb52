"""Wall time of one ``omnibench evaluate`` with the real set's statistics cached and an empty sample cache,
torch-fidelity's Inception (the path before issue #19) and omnibench's fast one side by side (goal <= 150 s on
2 CPU cores for ``--ckpt tiny --protocol quick``).

Each timed run is a fresh ``python -m omnibench evaluate`` process (imports, network build, generation, every
metric, result file), as a user runs it. The cache is a private root: the real set, weights, head models and
estimators are linked from the user's cache (``omnibench.assets.cache_root()``); the real set's Inception
statistics are computed for each implementation before the timing (untimed); ``samples/`` and ``features/``
are emptied before every timed run. The runs interleave (reference, fast, reference, fast, ...) so load on a
shared machine hits both alike. Prints each run's phases (the result file's ``timings``), the ratio, and
whether the two implementations' FID agree within 1e-4 relative and every other metric is identical.

    python benchmarks/evaluate_quick.py --ckpt tiny --protocol quick --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMPLS = ("torch-fidelity", "fast")
LINKED = ("datasets", "weights", "heads", "estimators", "imagesets")  # what the timed runs may find cached
EMPTIED = ("samples", "features")  # what the timed runs must compute

_WARM = """
import sys, torch
from omnibench import distributed as D
from omnibench.evaluation.context import EvalContext
from omnibench.generators.resolve import resolve_generator
from omnibench.protocol import get_protocol
from metrics.fid import real_stats
proto = get_protocol(sys.argv[1], None)
gen, block = resolve_generator(sys.argv[2], None, torch.device("cpu"), {})
ctx = EvalContext(proto, gen, block, device=torch.device("cpu"), batch_size=32, real=None, labels=None,
                  progress=False, dist_info=D.init_from_env("cpu"), options={})
print(real_stats(ctx)[1]["cache"])
"""


def _env(cache: Path, impl: str, threads: int | None) -> dict[str, str]:
    env = {**os.environ, "OMNIBENCH_CACHE": str(cache), "OMNIBENCH_INCEPTION_IMPL": impl, "CI": "true"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _prepare(cache: Path) -> None:
    from omnibench.assets import cache_root

    user = cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (user / name).mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(user / name, target_is_directory=True)


def _timed(cache: Path, impl: str, args: argparse.Namespace, out: Path) -> tuple[float, dict]:
    for name in EMPTIED:
        shutil.rmtree(cache / name, ignore_errors=True)
    cmd = [sys.executable, "-m", "omnibench", "evaluate", "--ckpt", args.ckpt, "--protocol", args.protocol,
           "--batch-size", str(args.batch_size), "--no-progress", "--out", str(out)]
    if args.metrics:
        cmd += ["--metrics", args.metrics]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=_env(cache, impl, args.threads), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="tiny")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--metrics", help="comma list (default: every available metric, as evaluate does)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per implementation (interleaved)")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the timed runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="omnibench-evalbench-") as tmp:
        cache = Path(tmp) / "cache"
        _prepare(cache)
        for impl in IMPLS:  # the real statistics of each implementation, untimed
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", _WARM, args.protocol, args.ckpt], cwd=ROOT,
                               env=_env(cache, impl, args.threads), check=True, capture_output=True, text=True)
            print(f"real statistics ({impl}): {r.stdout.strip()} in {time.perf_counter() - t0:.1f} s (untimed)",
                  file=sys.stderr)
        times: dict[str, list[float]] = {i: [] for i in IMPLS}
        results: dict[str, dict] = {}
        for rep in range(args.repeat):
            for impl in IMPLS:
                dt, res = _timed(cache, impl, args, Path(tmp) / f"{impl}-{rep}.json")
                times[impl].append(dt)
                results[impl] = res
                phases = ", ".join(f"{k} {v:.1f}" for k, v in res["timings"].items() if k != "total")
                print(f"{impl:<15} run {rep}: {dt:7.1f} s wall ({phases})", file=sys.stderr)
    ref, fast = (results[i]["metrics"] for i in IMPLS)
    fid_rel = {k: abs(fast[k]["value"] - ref[k]["value"]) / max(abs(ref[k]["value"]), 1e-12)
               for k in ref if k.split("@")[0] in ("fid", "kid") and ref[k]["value"] is not None}
    others_same = all(fast[k]["value"] == ref[k]["value"] for k in ref if k.split("@")[0] not in ("fid", "kid"))
    best = {i: min(t) for i, t in times.items()}
    report = {
        "ckpt": args.ckpt, "protocol": args.protocol, "metrics": list(ref), "batch_size": args.batch_size,
        "threads": args.threads or os.cpu_count(), "wall_s": {i: [round(t, 2) for t in v] for i, v in times.items()},
        "speedup": round(best["torch-fidelity"] / best["fast"], 3),
        "fast_at_most_150_s": best["fast"] <= 150.0,
        "fid_kid_relative_difference": {k: float(f"{v:.3g}") for k, v in fid_rel.items()},
        "fid_within_1e-4": all(v <= 1e-4 for k, v in fid_rel.items() if k.startswith("fid")),
        "other_metrics_identical": others_same,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
