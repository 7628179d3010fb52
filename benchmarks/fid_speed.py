"""FID/KID speed: omnibench vs torch-fidelity alone on the same images, and a cached re-run.

    python benchmarks/fid_speed.py [--n 200] [--size 64] [--batch-size 50] [--device cpu]

Writes two folders of ``n`` random PNGs into a temporary directory and measures, in one process:
1. ``torch_fidelity.calculate_metrics`` (fid + kid, same Inception weights, its cache off);
2. ``omnibench`` ``compare_image_sets`` with an empty statistics cache (first run);
3. the same call again (statistics from the cache).
Goals: (2)/(1) <= 1.10 and (2)/(3) >= 10. Model construction is warmed up before timing. With
``--repeat R`` the three measurements alternate R times (the cache is emptied before each cold run)
and the minimum of each is reported, which damps the noise of a shared machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _write(folder: Path, n: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3))
    for i in range(n):
        noise = rng.normal(0, 40 + 20 * seed, (size, size, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="images per set")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="alternate the measurements R times, report minima")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["OMNIBENCH_CACHE"] = str(root / "cache")
        import torch
        import torch_fidelity

        from metrics import fid as ofid
        from metrics import inception

        _write(root / "a", args.n, args.size, 0)
        _write(root / "b", args.n, args.size, 1)
        weights = inception.resolve_inception_weights()  # conversion (once) is not part of the timing
        inception.inception_sha256()
        kid_size = min(1000, args.n)
        cuda = args.device == "cuda"

        def sync() -> None:
            if cuda:
                torch.cuda.synchronize()

        def run_tf() -> dict:
            return torch_fidelity.calculate_metrics(
                input1=str(root / "a"), input2=str(root / "b"), fid=True, kid=True, cuda=cuda,
                batch_size=args.batch_size, save_cpu_ram=True, verbose=False, cache=False,
                feature_extractor="inception-v3-compat", feature_extractor_weights_path=str(weights),
                kid_subset_size=kid_size, rng_seed=args.seed,
            )

        def run_ob() -> dict:
            return ofid.compare_image_sets(root / "a", root / "b", batch_size=args.batch_size, device=args.device,
                                           kid_subset_size=kid_size, seed=args.seed)

        def timed(fn):  # noqa: ANN001, ANN202
            sync()
            t0 = time.perf_counter()
            out = fn()
            sync()
            return time.perf_counter() - t0, out

        times: dict[str, list[float]] = {"tf": [], "first": [], "cached": []}
        for _ in range(args.repeat):
            for sub in ("stats", "imagesets"):  # 2. starts from an empty statistics cache
                shutil.rmtree(root / "cache" / sub, ignore_errors=True)
            inception._EXTRACTORS.clear()  # both sides build their network inside the timed call
            t, tf = timed(run_tf)  # 1. torch-fidelity alone
            times["tf"].append(t)
            t, first = timed(run_ob)  # 2. omnibench, empty statistics cache
            times["first"].append(t)
            assert first["sets"]["a"]["cache"] == "miss"
            t, cached = timed(run_ob)  # 3. omnibench, statistics from the cache
            times["cached"].append(t)
            assert cached["sets"]["a"]["cache"] == cached["sets"]["b"]["cache"] == "hit"
        t_tf, t_first, t_cached = (min(times[k]) for k in ("tf", "first", "cached"))

    fid_tf, kid_tf = tf["frechet_inception_distance"], tf["kernel_inception_distance_mean"]
    dev = torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {dev}; {args.n} + {args.n} images of {args.size}x{args.size}, batch {args.batch_size}, "
          f"min of {args.repeat} run(s)")
    print(f"torch-fidelity alone     : {t_tf:8.2f} s   FID {fid_tf:.6f}  KID {kid_tf:.6g}")
    print(f"omnibench (cold cache)   : {t_first:8.2f} s   FID {first['fid']:.6f}  KID {first['kid_mean']:.6g}")
    print(f"omnibench (cached stats) : {t_cached:8.2f} s   FID {cached['fid']:.6f}")
    r1, r2 = t_first / t_tf, t_first / t_cached
    print(f"omnibench / torch-fidelity = {r1:.3f}x  (goal <= 1.10)  {'OK' if r1 <= 1.10 else 'MISSED'}")
    print(f"cold / cached              = {r2:.1f}x   (goal >= 10)    {'OK' if r2 >= 10 else 'MISSED'}")
    print(f"|FID diff| = {abs(first['fid'] - fid_tf):.3g}, |KID diff| = {abs(first['kid_mean'] - kid_tf):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
