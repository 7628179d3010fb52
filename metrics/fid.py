"""FID and KID on Inception pool3 features, computed with torch-fidelity 0.4.0's own functions.

- Features: torch-fidelity's ``inception-v3-compat`` (:mod:`metrics.inception`), resize policy
  :data:`metrics.inception.RESIZE_POLICY`.
- FID: ``mu``/``sigma`` in float64 (torch-fidelity ``fid_features_to_statistics`` on float64 features),
  distance by ``fid_statistics_to_metric``.
- KID: ``kid_features_to_metric`` (polynomial kernel, 100 subsets of size ``min(1000, n_a, n_b)``,
  ``rng_seed`` = our seed).
- Statistics of image sets are cached by content under ``<cache_root>/stats/<key>.npz`` where the key
  hashes (set content hash, extractor name, weights sha256, resize policy, torch-fidelity version,
  :data:`CACHE_FORMAT_VERSION`). Cached files are valid ``.npz`` statistics inputs themselves.

Confidence intervals (both documented in ``docs/fid.md``):
- FID: ``value +- 1.96 * sd`` where ``sd`` is the standard deviation of FID over :data:`FID_BOOTSTRAP`
  seeded bootstrap resamples of the *generated* features (real statistics fixed).
- KID: ``kid_mean +- 1.96 * kid_std / sqrt(s_eff)``, ``s_eff = min(subsets, n // subset_size)``, the
  number of effectively independent subsets; None when ``s_eff < 2`` (subsets overlap too much for
  their spread to mean anything).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock

from metrics import inception
from omnibench.errors import OmnibenchError
from omnibench.imagesets import FeatureStats, ImageSet, open_image_set
from omnibench.metric_api import Metric, MetricContext, MetricResult

CACHE_FORMAT_VERSION = 2  # cache keys also carry inception.implementation_tag(): features never mix
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
# Part of the FID variant's definition, not a per-sample interval (those use ``ctx.protocol.bootstrap``,
# :mod:`metrics.intervals`): FID's ci95 is value +- 1.96 sd of FID over this many seeded bootstrap resamples
# of the generated features. Each resample costs an eigendecomposition, so the count stays small and fixed;
# changing it moves every FID interval (bump ``FID.version``).
FID_BOOTSTRAP = 20


# ----------------------------------------------------------------------------------------------------
# math (torch-fidelity)


def stats_from_features(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu (D,), sigma (D, D))`` in float64 from features ``(N, D)`` (N >= 2)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    f = np.asarray(features)
    if f.ndim != 2 or f.shape[0] < 2:
        raise OmnibenchError(f"FID needs at least 2 images a set, got features of shape {f.shape}")
    st = fid_features_to_statistics(torch.from_numpy(f.astype(np.float64)))
    return st["mu"], st["sigma"]


def fid_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance through torch-fidelity's ``fid_statistics_to_metric`` (float64 inputs)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    s1 = {"mu": np.asarray(mu1, np.float64), "sigma": np.asarray(sigma1, np.float64)}
    s2 = {"mu": np.asarray(mu2, np.float64), "sigma": np.asarray(sigma2, np.float64)}
    if s1["mu"].shape != s2["mu"].shape:
        raise OmnibenchError(f"feature sizes differ: {s1['mu'].shape[0]} vs {s2['mu'].shape[0]}")
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def kid_subset_size_for(n_a: int, n_b: int, requested: int | None = None) -> int:
    """``min(1000, n_a, n_b)`` by default; a requested size must fit both sets."""
    n = min(n_a, n_b)
    if requested is None:
        size = min(KID_MAX_SUBSET, n)
    else:
        if requested > n:
            raise OmnibenchError(
                f"--kid-subset-size {requested} exceeds the smaller set ({n} images); use at most {n}"
            )
        size = requested
    if size < 2:
        raise OmnibenchError(f"KID needs subsets of at least 2 images, got {size} (set sizes {n_a}, {n_b})")
    return size


def kid_from_features(
    features_a: np.ndarray, features_b: np.ndarray, subset_size: int, seed: int, subsets: int = KID_SUBSETS
) -> tuple[float, float]:
    """``(kid_mean, kid_std)`` through torch-fidelity's ``kid_features_to_metric`` (cubic polynomial kernel)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    out = kid_features_to_metric(
        torch.from_numpy(np.ascontiguousarray(features_a)),
        torch.from_numpy(np.ascontiguousarray(features_b)),
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        rng_seed=seed,
        verbose=False,
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def kid_ci95(mean: float, std: float, n: int, subset_size: int, subsets: int = KID_SUBSETS) -> tuple[float, float] | None:
    """``mean +- 1.96 std / sqrt(s_eff)`` with ``s_eff = min(subsets, n // subset_size)``; None if s_eff < 2."""
    s_eff = min(subsets, n // subset_size)
    if s_eff < 2:
        return None
    half = 1.96 * std / math.sqrt(s_eff)
    return mean - half, mean + half


def compute_fid_kid(
    features_a: np.ndarray | None,
    features_b: np.ndarray | None,
    kid_subset_size: int | None = None,
    seed: int = 0,
    *,
    stats_a: tuple[np.ndarray, np.ndarray] | None = None,
    stats_b: tuple[np.ndarray, np.ndarray] | None = None,
    kid: bool = True,
    kid_subsets: int = KID_SUBSETS,
) -> dict[str, Any]:
    """FID and KID between two feature sets ``(N, 2048)``.

    Precomputed ``(mu, sigma)`` may replace either feature array for FID; KID needs both feature
    arrays (``kid_mean``/``kid_std`` are None when one is missing or ``kid=False``).
    Returns ``{fid, kid_mean, kid_std, kid_subset_size, kid_subsets, n_a, n_b}``.
    """
    if stats_a is None:
        if features_a is None:
            raise OmnibenchError("set A has neither features nor statistics")
        stats_a = stats_from_features(features_a)
    if stats_b is None:
        if features_b is None:
            raise OmnibenchError("set B has neither features nor statistics")
        stats_b = stats_from_features(features_b)
    out: dict[str, Any] = {
        "fid": fid_from_stats(stats_a[0], stats_a[1], stats_b[0], stats_b[1]),
        "kid_mean": None,
        "kid_std": None,
        "kid_subset_size": None,
        "kid_subsets": None,
        "n_a": None if features_a is None else int(features_a.shape[0]),
        "n_b": None if features_b is None else int(features_b.shape[0]),
    }
    if kid and features_a is not None and features_b is not None:
        size = kid_subset_size_for(features_a.shape[0], features_b.shape[0], kid_subset_size)
        out["kid_mean"], out["kid_std"] = kid_from_features(features_a, features_b, size, seed, kid_subsets)
        out["kid_subset_size"], out["kid_subsets"] = size, kid_subsets
    return out


def _sqrtm_psd(sigma: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(sigma)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def fid_symmetric(mu_r: np.ndarray, sigma_r: np.ndarray, features: np.ndarray, device: str = "cpu") -> float:
    """FID via ``tr sqrt(S_r^1/2 S_g S_r^1/2)`` (symmetric eigenvalues); the formula the bootstrap uses."""
    return float(fid_bootstrap(mu_r, sigma_r, features, n_boot=0, device=device)[0])


def fid_bootstrap(
    mu_r: np.ndarray, sigma_r: np.ndarray, features: np.ndarray, n_boot: int = FID_BOOTSTRAP, seed: int = 0,
    device: str = "cpu",
) -> np.ndarray:
    """FID of ``n_boot`` seeded bootstrap resamples of the generated ``features`` against fixed real stats.

    ``n_boot == 0`` returns ``[FID on the features as given]``. Uses the symmetric form
    ``tr sqrt(A S_g A)``, ``A = sqrt(S_r)``, whose non-zero eigenvalues come from the smaller of the
    ``(N, N)`` Gram and ``(D, D)`` covariance matrices, in float64 on ``device``.
    """
    dev = torch.device(device)
    x = torch.from_numpy(np.asarray(features, np.float64)).to(dev)
    mu = torch.from_numpy(np.asarray(mu_r, np.float64)).to(dev)
    sr = torch.from_numpy(np.asarray(sigma_r, np.float64)).to(dev)
    a = _sqrtm_psd(sr)
    z = x @ a
    tr_r = torch.trace(sr)
    n, d = x.shape
    gen = torch.Generator().manual_seed(seed)
    rows = [torch.arange(n)] if n_boot == 0 else [torch.randint(0, n, (n,), generator=gen) for _ in range(n_boot)]
    out = []
    for idx in rows:
        idx = idx.to(dev)
        xb, zb = x[idx], z[idx]
        mb = xb.mean(0)
        xc, zc = xb - mb, zb - zb.mean(0)
        tr_g = (xc * xc).sum() / (n - 1)
        m = zc @ zc.T if n <= d else zc.T @ zc
        lam = torch.linalg.eigvalsh(m / (n - 1)).clamp_min(0)
        diff = mu - mb
        out.append(float(diff @ diff + tr_r + tr_g - 2 * lam.sqrt().sum()))
    return np.asarray(out, np.float64)


# ----------------------------------------------------------------------------------------------------
# cached statistics of image sets


@contextmanager
def _progress_bar(total: int, desc: str, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar on stderr driven by ``callback(n_done)``; yields None when disabled."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", file=sys.stderr, leave=False)
    try:
        yield lambda done: bar.update(done - bar.n)
    finally:
        bar.close()


def stats_cache_key(set_hash: str, weights_sha256: str) -> str:
    import torch_fidelity

    blob = {
        "set": set_hash,
        "extractor": inception.EXTRACTOR_NAME,
        "layer": inception.FEATURE_LAYER,
        "weights_sha256": weights_sha256,
        "resize_policy": inception.RESIZE_POLICY,
        "implementation": inception.implementation_tag(),
        "torch_fidelity": torch_fidelity.__version__,
        "format": CACHE_FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def stats_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else inception.cache_root()) / "stats"


def features_stats(features: np.ndarray, meta: dict[str, Any]) -> FeatureStats:
    mu, sigma = stats_from_features(features)
    return FeatureStats(mu=mu, sigma=sigma, features=features, n=int(features.shape[0]), meta=meta)


def _check_stats_provenance(stats: FeatureStats, path: Path, weights_sha: str) -> None:
    got = stats.meta.get("weights_sha256")
    if got is not None and got != weights_sha:
        raise OmnibenchError(
            f"statistics file '{path}' was computed with Inception weights {got[:12]}..., but the weights in "
            f"use are {weights_sha[:12]}...; recompute the statistics from images"
        )
    if stats.mu.shape[0] != inception.FEATURE_DIM:
        raise OmnibenchError(f"statistics file '{path}' has {stats.mu.shape[0]}-d features, expected 2048")


def image_set_stats(
    image_set: str | os.PathLike[str] | ImageSet,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    weights: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> tuple[FeatureStats, dict[str, Any]]:
    """Statistics of an image set (or statistics file), from the content-addressed cache when present.

    Returns ``(stats, info)`` with ``info = {set: describe(), cache: "hit"|"miss"|"file", cache_file}``.
    ``progress``: announce the one-off extraction and show a bar on stderr.
    """
    s = open_image_set(image_set)
    weights_sha = inception.inception_sha256(weights)
    info: dict[str, Any] = {"set": s.describe()}
    if s.is_stats:
        st = s.stats()
        _check_stats_provenance(st, s.path, weights_sha)
        info["cache"] = "file"
        return st, info
    path = stats_dir(cache_dir) / f"{stats_cache_key(s.content_hash, weights_sha)}.npz"
    info["cache_file"] = str(path)
    if not use_cache:
        info["cache"] = "miss"
        return _extract_stats(s, weights, weights_sha, batch_size, device, progress), info
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # a second process waits, then reads what the first one wrote
        if path.is_file():
            try:
                st = FeatureStats.load(path)
                if st.n == len(s) and st.features is not None:
                    info["cache"] = "hit"
                    return st, info
            except OmnibenchError:
                pass  # unreadable cache entry: recompute and overwrite
        if progress:
            print(f"omnibench: Inception statistics of '{s.path}' ({len(s)} images, one-off; cached in "
                  f"{path.parent})", file=sys.stderr)
        st = _extract_stats(s, weights, weights_sha, batch_size, device, progress)
        st.save(path)
    info["cache"] = "miss"
    return st, info


def _extract_stats(s: ImageSet, weights: str | os.PathLike[str] | None, weights_sha: str, batch_size: int,
                   device: str, progress: bool) -> FeatureStats:
    """Inception features of every image of ``s`` and their statistics, with the cache file's metadata."""
    with _progress_bar(len(s), "inception", progress) as bar:
        feats = inception.extract_features(s.iter_batches(batch_size), batch_size, device, weights=weights,
                                           progress=bar)
    meta = {
        "format": CACHE_FORMAT_VERSION,
        "extractor": inception.EXTRACTOR_NAME,
        "layer": inception.FEATURE_LAYER,
        "weights_sha256": weights_sha,
        "resize_policy": inception.RESIZE_POLICY,
        "set_hash": s.content_hash,
        "set_path": str(s.path),
        "device": device,
    }
    return features_stats(feats, meta)


def compare_image_sets(
    a: str | os.PathLike[str] | ImageSet,
    b: str | os.PathLike[str] | ImageSet,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    kid_subset_size: int | None = None,
    seed: int = 0,
    weights: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """FID/KID between two sets (folders, zips, dataset folders, ``.npz`` statistics); JSON-able dict."""
    inception.check_device(device)
    kw = {"batch_size": batch_size, "device": device, "weights": weights, "use_cache": use_cache, "progress": progress}
    sa, ia = image_set_stats(a, **kw)
    sb, ib = image_set_stats(b, **kw)
    out = compute_fid_kid(sa.features, sb.features, kid_subset_size, seed, stats_a=(sa.mu, sa.sigma),
                          stats_b=(sb.mu, sb.sigma))
    out["n_a"], out["n_b"] = sa.n, sb.n
    out["seed"] = seed
    out["feature_extractor"] = inception.extractor_info(weights)
    out["sets"] = {"a": ia, "b": ib}
    if out["kid_mean"] is None:
        out["kid_note"] = "KID needs raw features; a statistics file without 'features' gives FID only"
    return out


# ----------------------------------------------------------------------------------------------------
# metrics


def _set_size(ctx: MetricContext, set_name: str) -> int | None:
    """The protocol's size of ``set_name`` (for the progress bar only)."""
    try:
        return int(ctx.protocol.set_size(set_name).n)
    except OmnibenchError:  # not a protocol set name: no total
        return None


def generated_features(ctx: MetricContext, set_name: str = "main") -> np.ndarray:
    """Inception features of ``ctx.sample_images(set_name)``, once per context (``ctx.memo``: shared by FID and
    KID).

    When the context stores its samples (``ctx.sample_fingerprint(set_name)`` is not None) the features are
    also cached on disk (``ctx.feature_cache``), keyed by that fingerprint and the extractor (weights sha256,
    resize policy), so a later run on the same stored samples skips the extraction.
    """

    def compute() -> dict[str, np.ndarray]:
        n = _set_size(ctx, set_name)
        with _progress_bar(n or 0, f"inception {set_name}", ctx.progress and bool(n)) as bar:
            feats = inception.extract_features(ctx.sample_images(set_name), ctx.batch_size, ctx.device, progress=bar)
        return {"features": feats}

    def features() -> np.ndarray:
        fingerprint = ctx.sample_fingerprint(set_name)
        if fingerprint is None:
            return compute()["features"]
        key = {"samples": fingerprint, **inception.extractor_info(), "format": CACHE_FORMAT_VERSION}
        return np.asarray(ctx.feature_cache(f"inception-{set_name}", key, compute)["features"])

    return ctx.memo(("inception-features", set_name), features)


def real_stats(ctx: MetricContext) -> tuple[FeatureStats, dict[str, Any]]:
    """Statistics of ``ctx.real_set`` (images or a statistics file), once per context, cached on disk by
    content (:func:`image_set_stats`)."""
    return ctx.memo(("inception-real-stats",), lambda: image_set_stats(
        ctx.real_set, batch_size=ctx.batch_size, device=ctx.device, progress=ctx.progress))


def _common_details(info: dict[str, Any], n_real: int) -> dict[str, Any]:
    return {
        "n_real": n_real,
        "real_set": info["set"],
        "real_stats_cache": info.get("cache"),
        "resize_policy": inception.RESIZE_POLICY,
        "feature_extractor": inception.EXTRACTOR_NAME,
        "feature_layer": inception.FEATURE_LAYER,
    }


class FID(Metric):
    """Frechet Inception Distance (Heusel et al. 2017) between generated ``main`` samples and the real set.

    Lower is better. Value from torch-fidelity; ci95 = FID +- 1.96 sd over :data:`FID_BOOTSTRAP` (20)
    bootstrap resamples of the generated features (seed ``ctx.seed``).
    """

    name = "fid"
    version = 1
    higher_is_better = False
    variants = {"default": "FID, TF Inception pool3 (torch-fidelity inception-v3-compat), float64 stats"}
    default_variant = "default"
    requires = ("main", "real")

    @classmethod
    def check(cls, ctx: MetricContext, variant: str) -> None:
        inception.check_device(ctx.device)

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        device, seed = ctx.device, ctx.seed
        gen = generated_features(ctx)
        real, info = real_stats(ctx)
        value = fid_from_stats(*stats_from_features(gen), real.mu, real.sigma)
        boots = fid_bootstrap(real.mu, real.sigma, gen, FID_BOOTSTRAP, seed, device=device) if gen.shape[0] > 2 else None
        ci = None
        details = _common_details(info, real.n)
        if boots is not None:
            sd = float(np.std(boots, ddof=1))
            ci = (value - 1.96 * sd, value + 1.96 * sd)
            details.update(bootstrap_sd=sd, bootstrap_n=FID_BOOTSTRAP, bootstrap_seed=seed,
                           ci_method="normal approximation, sd over bootstrap resamples of generated features")
        return MetricResult(
            value=value, n=int(gen.shape[0]), ci95=ci, details=details,
            backbones={"inception": {"name": inception.EXTRACTOR_NAME, "sha256": inception.inception_sha256()}},
        )


class KID(Metric):
    """Kernel Inception Distance (Binkowski et al. 2018), torch-fidelity's subset estimator.

    Lower is better. 100 subsets of ``min(1000, n_gen, n_real)`` seeded by the protocol seed; value is
    the subset mean; ci95 = mean +- 1.96 std / sqrt(s_eff) (see module docstring).
    """

    name = "kid"
    version = 1
    higher_is_better = False
    variants = {"default": "KID, cubic polynomial kernel, 100 subsets of min(1000, n)"}
    default_variant = "default"
    requires = ("main", "real")

    @classmethod
    def check(cls, ctx: MetricContext, variant: str) -> None:
        inception.check_device(ctx.device)

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        seed = ctx.seed
        gen = generated_features(ctx)
        real, info = real_stats(ctx)
        if real.features is None:
            raise OmnibenchError(
                f"KID needs raw real features but '{info['set']['path']}' holds only mu/sigma; "
                "pass the real images (or a statistics file with 'features')"
            )
        size = kid_subset_size_for(gen.shape[0], real.features.shape[0])
        mean, std = kid_from_features(gen, real.features, size, seed)
        details = _common_details(info, real.n)
        details.update(kid_std=std, subset_size=size, subsets=KID_SUBSETS, seed=seed,
                       ci_method="mean +- 1.96 std/sqrt(min(subsets, n // subset_size))")
        return MetricResult(
            value=mean, n=int(gen.shape[0]),
            ci95=kid_ci95(mean, std, min(gen.shape[0], real.features.shape[0]), size),
            details=details,
            backbones={"inception": {"name": inception.EXTRACTOR_NAME, "sha256": inception.inception_sha256()}},
        )

