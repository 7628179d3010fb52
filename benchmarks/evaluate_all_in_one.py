"""Cost of one ``evaluate`` with all metrics vs the same metrics run one by one (goal: >= 2x).

"One by one" runs each metric in its own evaluation with an empty cache, as separate per-metric tools
would: each regenerates the samples it needs and recomputes real-set statistics. The all-in-one run
generates each sample set once and shares it. Both sides use the same generator, protocol and metrics;
the script prints both times, the speed-up, and checks the metric values agree.

    python benchmarks/evaluate_all_in_one.py --ckpt oracle --protocol quick
    python benchmarks/evaluate_all_in_one.py --ckpt fake64 --generator tests.omnibench.fakes:FakeGenerator64 \\
        --metrics tests.omnibench.fakes:MeanPixel,tests.omnibench.fakes:GroupSpread,tests.omnibench.fakes:GroupSpread@expr
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _run(cache: Path, args: argparse.Namespace, metrics: list[str] | None) -> tuple[float, dict]:
    from omnibench.evaluation import evaluate

    os.environ["OMNIBENCH_CACHE"] = str(cache)
    t0 = time.perf_counter()
    r = evaluate(args.ckpt, generator=args.generator, protocol=args.protocol, metrics=metrics, real=args.real,
                 device=args.device, batch_size=args.batch_size, progress=False)
    return time.perf_counter() - t0, r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="oracle")
    ap.add_argument("--generator")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--metrics", help="comma list (default: every available metric)")
    ap.add_argument("--real")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    metrics = args.metrics.split(",") if args.metrics else None
    with tempfile.TemporaryDirectory(prefix="omnibench-bench-") as tmp:
        t_all, r_all = _run(Path(tmp) / "all", args, metrics)
        keys = list(r_all["metrics"])
        specs = metrics or keys
        t_each, values = 0.0, {}
        for i, spec in enumerate(specs):
            dt, r = _run(Path(tmp) / f"one{i}", args, [spec])
            t_each += dt
            values.update({k: v["value"] for k, v in r["metrics"].items()})
            print(f"  {spec:<50} alone {dt:8.2f} s", file=sys.stderr)
    same = all(values.get(k) == r_all["metrics"][k]["value"] for k in keys)
    report = {
        "ckpt": args.ckpt, "protocol": args.protocol, "metrics": keys,
        "all_in_one_s": round(t_all, 2), "one_by_one_s": round(t_each, 2),
        "speedup": round(t_each / t_all, 2), "goal": ">= 2x", "values_identical": same,
    }
    print(json.dumps(report, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
