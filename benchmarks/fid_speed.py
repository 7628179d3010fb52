"""FID/KID speed: omnibench's fast Inception pass vs torch-fidelity's, side by side on the same images.

    python benchmarks/fid_speed.py [--n 200] [--size 64] [--batch-size 16] [--repeat 2] [--device cpu]
    python benchmarks/fid_speed.py --end-to-end [--n 500] [--size 64] [--batch-size 50] [--repeat 1]

Default: the Inception feature pass alone. Two sets of ``n`` random uint8 images (a base image per set plus
noise, the images the end-to-end mode writes) are held in memory, and ``metrics.inception.extract_features``
runs on both sets with ``impl="torch-fidelity"`` (torch-fidelity 0.4.0's own ``inception-v3-compat``) and
with the default ``impl="fast"``, same weights file, same batch size. Both networks are built and warmed
up (every batch shape) before timing. The two run batch by batch, alternating which goes first, so that both see the same
load on a shared machine; with ``--repeat R`` this is done R times and the minimum of each is compared. Prints ms/image for each, their
ratio (goal >= 2 on CPU), the largest per-image relative feature difference
(``max |fast - ref| / max |ref|``, goal <= 1e-5) and the relative difference of FID(a, b)
computed from each implementation's features with torch-fidelity's FID (goal <= 1e-4).

``--end-to-end``: the earlier comparison of whole runs on PNG folders: ``torch_fidelity.calculate_metrics``
(fid + kid, same weights, its cache off), omnibench ``compare_image_sets`` with an empty statistics cache,
and the same call again (cached statistics). Goals: cold / torch-fidelity <= 1.10, cold / cached >= 10.
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


def _images(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` uint8 (size, size, 3) images: a random base image of the set plus noise on each image."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size, size, 3))
    return np.stack([np.clip(base + rng.normal(0, 40 + 20 * seed, (size, size, 3)), 0, 255).astype(np.uint8)
                     for _ in range(n)])


def _write(folder: Path, n: int, size: int, seed: int) -> None:
    folder.mkdir(parents=True)
    for i, img in enumerate(_images(n, size, seed)):
        Image.fromarray(img).save(folder / f"{i:05d}.png")


def _load_avg() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average n/a"


def feature_pass(args: argparse.Namespace) -> int:
    import torch
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    from metrics import inception

    device = inception.check_device(args.device)
    cuda = device != "cpu"
    sets = [torch.from_numpy(_images(args.n, args.size, s)).permute(0, 3, 1, 2).contiguous() for s in (0, 1)]
    inception.resolve_inception_weights()  # conversion (once) is not part of the timing
    impls = {"torch-fidelity": inception.REFERENCE_IMPL, "fast": inception.FAST_IMPL}
    chunks = [(k, s[i : i + args.batch_size]) for k, s in enumerate(sets) for i in range(0, args.n, args.batch_size)]
    for impl in impls.values():  # build both networks and their oneDNN/cuDNN kernels (one per batch shape) first
        for n in sorted({len(c) for _, c in chunks}):
            inception.extract_features([sets[0][:n]], args.batch_size, device, impl=impl)

    def timed(impl: str, images: torch.Tensor) -> tuple[float, np.ndarray]:
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        f = inception.extract_features([images], args.batch_size, device, impl=impl)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, f

    print(f"before: {_load_avg()}", flush=True)
    times: dict[str, list[float]] = {k: [] for k in impls}
    feats: dict[str, list[np.ndarray]] = {}
    for r in range(args.repeat):
        total = dict.fromkeys(impls, 0.0)
        parts: dict[str, list[list[np.ndarray]]] = {k: [[], []] for k in impls}
        for j, (k, images) in enumerate(chunks):  # batch by batch, alternating which goes first
            for name in list(impls) if (j + r) % 2 == 0 else list(reversed(impls)):
                t, f = timed(impls[name], images)
                total[name] += t
                parts[name][k].append(f)
        for name in impls:
            times[name].append(total[name] * 1000 / (2 * args.n))
            feats[name] = [np.concatenate(p) for p in parts[name]]
        print(f"round {r + 1}: torch-fidelity {times['torch-fidelity'][-1]:7.1f} ms/image, "
              f"fast {times['fast'][-1]:7.1f} ms/image, "
              f"ratio {times['torch-fidelity'][-1] / times['fast'][-1]:.2f}", flush=True)
    print(f"after: {_load_avg()}")

    ref, fast = np.concatenate(feats["torch-fidelity"]), np.concatenate(feats["fast"])
    rel = float((np.abs(fast - ref).max(axis=1) / np.abs(ref).max(axis=1)).max())

    def fid(fs: list[np.ndarray]) -> float:
        st = [fid_features_to_statistics(torch.from_numpy(f.astype(np.float64))) for f in fs]
        return float(fid_statistics_to_metric(st[0], st[1], verbose=False)[KEY_METRIC_FID])

    fid_ref, fid_fast = fid(feats["torch-fidelity"]), fid(feats["fast"])
    fid_rel = abs(fid_fast - fid_ref) / abs(fid_ref)
    t_ref, t_fast = min(times["torch-fidelity"]), min(times["fast"])
    ratio = t_ref / t_fast
    dev = torch.cuda.get_device_name(device) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {dev}; {args.n} + {args.n} images of {args.size}x{args.size}, batch {args.batch_size}, "
          f"min of {args.repeat} round(s); fast = {inception.implementation_tag('fast')}")
    print(f"torch-fidelity inception-v3-compat : {t_ref:7.1f} ms/image")
    print(f"omnibench fast                     : {t_fast:7.1f} ms/image")
    print(f"torch-fidelity / fast = {ratio:.2f}x  (goal >= 2)    {'OK' if ratio >= 2 else 'MISSED'}")
    print(f"max relative feature difference = {rel:.2e}  (goal <= 1e-5)  {'OK' if rel <= 1e-5 else 'MISSED'}")
    print(f"FID torch-fidelity {fid_ref:.6f}, fast {fid_fast:.6f}: relative difference {fid_rel:.2e}  "
          f"(goal <= 1e-4)  {'OK' if fid_rel <= 1e-4 else 'MISSED'}")
    return 0


def end_to_end(args: argparse.Namespace) -> int:
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
        cuda = args.device != "cpu"

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=None, help="images per set (default: 200; 500 with --end-to-end)")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="images per call (default: 16, omnibench evaluate's default; 50 with --end-to-end)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=None,
                    help="alternate the measurements R times, report minima (default: 2; 1 with --end-to-end)")
    ap.add_argument("--end-to-end", action="store_true", help="time whole FID/KID runs on PNG folders instead")
    args = ap.parse_args()
    e2e = args.end_to_end
    args.n = args.n or (500 if e2e else 200)
    args.batch_size = args.batch_size or (50 if e2e else 16)
    args.repeat = args.repeat or (1 if e2e else 2)
    return end_to_end(args) if e2e else feature_pass(args)


if __name__ == "__main__":
    sys.exit(main())
