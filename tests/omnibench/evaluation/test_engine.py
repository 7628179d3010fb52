"""Engine behaviour with a tiny fake generator and fake metrics (see tests/omnibench/fakes.py); the CLI's
exit codes and messages for bad input are in tests/omnibench/cli/test_evaluate.py."""

import dataclasses
import shutil

import pytest

from omnibench.evaluation import GenerationError, evaluate
from omnibench.generators import GENERATORS
from omnibench.protocol import PROTOCOLS, SetSize
from omnibench.results import load_result
from tests.omnibench.fakes import GEN, METRICS, TINY, save_fake_checkpoint

pytestmark = pytest.mark.usefixtures("tiny_protocol")


def _values(result):
    return {k: (m["value"], m["n"], m["ci95"]) for k, m in result["metrics"].items()}


def _run(**kw):
    kw.setdefault("generator", GEN)
    kw.setdefault("metrics", METRICS)
    kw.setdefault("progress", False)
    kw.setdefault("protocol", "tiny")
    return evaluate("fake", **kw)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, synthetic_heads):
    """One run with the defaults (fake generator, METRICS, protocol tiny, batch 16) in a cache of its own, written
    to ``out``; tests only read it (``warm_cache`` hands out copies of its samples)."""
    root = tmp_path_factory.mktemp("reference-run")
    (root / "cache").mkdir()
    (root / "cache" / "heads").symlink_to(synthetic_heads, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROTOCOLS, "tiny", TINY)
        mp.setenv("OMNIBENCH_CACHE", str(root / "cache"))
        result = _run(batch_size=16, out=root / "r.json")
    return {"result": result, "out": root / "r.json", "samples": root / "cache" / "samples"}


@pytest.fixture
def warm_cache(reference_run, fresh_cache):
    """``warm_cache()``: a fresh cache (see ``fresh_cache``) holding a copy of the reference run's samples."""

    def new():
        d = fresh_cache()
        shutil.copytree(reference_run["samples"], d / "samples")
        return d

    return new


def test_result_file_has_provenance_and_validates(reference_run):
    r, out = reference_run["result"], reference_run["out"]
    assert load_result(out) == r
    for key in ("schema_version", "omnibench_version", "created", "git_sha", "checkpoint", "protocol", "backbones",
                "environment", "metrics", "timings"):
        assert key in r
    assert r["protocol"]["name"] == "tiny" and len(r["protocol"]["hash"]) == 64
    assert {"python", "torch", "device", "cpu"} <= set(r["environment"])
    m = r["metrics"]["mean-pixel"]
    assert m["n"] == 400 and m["ci95"][0] < m["value"] < m["ci95"][1] and m["higher_is_better"]
    assert r["metrics"]["group-spread@expr"]["variant"] == "expr"
    assert {"generate/main", "generate/views", "generate/expr", "metric/mean-pixel", "total"} <= set(r["timings"])


def test_batch_size_does_not_change_numbers(fresh_cache, reference_run):
    fresh_cache()
    a, b = _run(batch_size=1), reference_run["result"]  # batch 16
    assert _values(a) == _values(b)
    assert a["sampling"] == b["sampling"]


def test_second_run_reads_the_cache(warm_cache, reference_run):
    warm_cache()
    a = reference_run["result"]
    b = _run(metrics=["tests.omnibench.fakes:MeanPixel"])
    assert "generate/main" not in b["timings"]
    assert b["metrics"]["mean-pixel"] == {**a["metrics"]["mean-pixel"], "seconds": b["metrics"]["mean-pixel"]["seconds"]}


def test_interrupted_run_resumes_with_identical_values(fresh_cache, reference_run, monkeypatch, tmp_path):
    clean = reference_run["result"]  # batch 16, as below
    cache = fresh_cache()
    monkeypatch.setenv("FAKE_FAIL_AFTER_CALLS", "20")  # 8 calls per 128-sample shard: dies inside shard 2
    with pytest.raises(GenerationError, match=r"generator 'fake' failed on set 'main', samples 320-335: "
                                              r"RuntimeError: simulated crash"):
        _run(batch_size=16, out=tmp_path / "partial.json")
    assert not (tmp_path / "partial.json").exists()
    shards = sorted(cache.glob("samples/main-*/shard_*.pt"))
    assert len(shards) == 2
    mtimes = [s.stat().st_mtime_ns for s in shards]
    monkeypatch.delenv("FAKE_FAIL_AFTER_CALLS")
    resumed = _run(batch_size=16)
    assert [s.stat().st_mtime_ns for s in shards] == mtimes  # completed shards were reused
    assert _values(resumed) == _values(clean)


def test_checkpoint_path_autodetect_and_sha(fresh_cache, reference_run, tmp_path):
    fresh_cache()
    ck = tmp_path / "g.pt"
    save_fake_checkpoint(ck, gain=2.0)
    GENERATORS.register("fake-test", GEN, replace=True)
    try:
        r = evaluate(str(ck), metrics=METRICS[:1], progress=False, protocol="tiny")
    finally:
        GENERATORS._items.pop("fake-test", None)
    assert r["checkpoint"]["generator"] == "fake" and r["checkpoint"]["description"]["gain"] == 2.0
    assert len(r["checkpoint"]["sha256"]) == 64 and r["checkpoint"]["path"] == str(ck)
    base = reference_run["result"]  # the same generator class and protocol at gain 1
    assert base["metrics"]["mean-pixel"]["value"] != r["metrics"]["mean-pixel"]["value"]


def test_resize_policy(fresh_cache, tmp_path):
    fresh_cache()
    up = dataclasses.replace(TINY, name="tiny32", resolution=32, main=SetSize(10))
    from omnibench.evaluation import EvalContext
    from omnibench.generators.resolve import resolve_generator

    gen, block = resolve_generator("fake", GEN)
    s = EvalContext(up, gen, block, progress=False).samples("main")
    assert s.images.shape == (10, 3, 32, 32) and s.images.dtype.is_floating_point is False
    assert s.depth.shape == (10, 32, 32)
    strict = dataclasses.replace(up, name="tiny32s", resize_policy="none")
    from omnibench.errors import OmnibenchError

    with pytest.raises(OmnibenchError, match="resize_policy is 'none'"):
        EvalContext(strict, gen, block, progress=False).samples("main")


def test_named_checkpoint_options_and_top_level_kind(warm_cache, tmp_path):
    warm_cache()
    r = _run(metrics=METRICS[:1], options={"estimator": "regressor"})
    named = evaluate("shipped-gain3", generator=GEN, metrics=METRICS[:1], progress=False, protocol="tiny")
    assert named["checkpoint"]["description"]["gain"] == 3.0
    assert named["metrics"]["mean-pixel"]["value"] != r["metrics"]["mean-pixel"]["value"]
    assert r["options"] == {"estimator": "regressor"}
    import torch

    from omnibench.generators.base import read_checkpoint_kind

    torch.save({"kind": "omnibench.gan", "format": 1}, tmp_path / "g.pt")
    assert read_checkpoint_kind(tmp_path / "g.pt") == "omnibench.gan"
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    assert read_checkpoint_kind(tmp_path / "plain.pt") is None


def test_default_metric_set_never_hides_generator_errors(warm_cache, fresh_cache, monkeypatch):
    """With no --metrics, unavailable metrics are skipped, but NaN output is still fatal."""
    import omnibench.metric_api as api
    from omnibench.errors import OmnibenchError
    from omnibench.metric_api import METRICS as REG

    warm_cache()  # the fakes' samples are there already: the NaN run below needs a fresh cache
    api.load_metric_plugins()
    monkeypatch.setattr(REG, "_items", {})  # only the fakes: the real families would need assets and minutes
    REG.register("zz-mean-pixel", "tests.omnibench.fakes:MeanPixel", replace=True)
    REG.register("zz-needs-asset", "tests.omnibench.fakes:NeedsAsset", replace=True)
    try:
        r = evaluate("fake", generator=GEN, protocol="tiny", progress=False)
        assert "zz-needs-asset" in r["skipped"] and "imaginary-net" in r["skipped"]["zz-needs-asset"]
        assert r["metrics"]["zz-mean-pixel"]["n"] == 400
        fresh_cache()
        monkeypatch.setenv("FAKE_NAN", "1")
        with pytest.raises(OmnibenchError, match="NaN"):
            evaluate("fake", generator=GEN, protocol="tiny", progress=False)
    finally:
        REG._items.pop("zz-mean-pixel", None)
        REG._items.pop("zz-needs-asset", None)


def test_feature_cache_is_content_addressed(fresh_cache):
    import numpy as np

    from omnibench.evaluation import EvalContext
    from omnibench.generators.resolve import resolve_generator

    root = fresh_cache()
    gen, block = resolve_generator("fake", GEN)
    ctx = EvalContext(TINY, gen, block, progress=False)
    calls = []

    def compute():
        calls.append(1)
        return {"mu": np.arange(3.0), "sigma": np.eye(3)}

    a = ctx.feature_cache("real-stats", {"set": "abc", "net": "sha"}, compute)
    b = ctx.feature_cache("real-stats", {"net": "sha", "set": "abc"}, compute)
    c = ctx.feature_cache("real-stats", {"set": "abd", "net": "sha"}, compute)
    assert len(calls) == 2 and np.array_equal(a["sigma"], b["sigma"]) and np.array_equal(c["mu"], a["mu"])
    assert len(list((root / "features").glob("real-stats-*.npz"))) == 2
    assert not list((root / "features").glob("*.tmp*"))


def test_generator_renders_natively_at_protocol_resolution(fresh_cache):
    fresh_cache()
    p32 = dataclasses.replace(TINY, resolution=32, main=SetSize(20))
    r = evaluate("fake-flex", generator="tests.omnibench.fakes:FakeFlexible", metrics=METRICS[:1], progress=False,
                 protocol=p32)
    assert r["checkpoint"]["description"]["resolution"] == 32  # the protocol's size, no resize


def test_depth_sets(fresh_cache):
    from omnibench.evaluation import EvalContext
    from omnibench.generators.resolve import resolve_generator

    fresh_cache()
    p = dataclasses.replace(TINY, main=SetSize(10), depth_sets=("views",))
    gen, block = resolve_generator("fake", GEN)
    ctx = EvalContext(p, gen, block, progress=False)
    assert ctx.samples("main").depth is None and ctx.samples("main").mask is None
    assert ctx.samples("views").depth is not None


def test_named_checkpoint_of_an_installed_generator_resolves_without_generator_flag(fresh_cache, tmp_path, monkeypatch):
    """``--ckpt NAME`` finds a checkpoint a registered generator ships (as ``--ckpt tiny`` finds OmniAvatar's)."""
    from omnibench.errors import CheckpointError
    from omnibench.generators.resolve import resolve_generator
    from tests.omnibench.fakes import FakeGenerator

    shipped = tmp_path / "fake-shipped.pt"
    save_fake_checkpoint(shipped, gain=2.0)

    class Shipping(FakeGenerator):
        name = "fake-shipping"

        @classmethod
        def named_checkpoints(cls) -> dict[str, str]:
            return {"fake-shipped": str(shipped)}

    monkeypatch.setitem(GENERATORS._items, "fake-shipping", Shipping)
    gen, block = resolve_generator("fake-shipped")
    assert isinstance(gen, Shipping) and gen.gain == 2.0
    assert block["path"] == str(shipped) and len(block["sha256"]) == 64
    with pytest.raises(CheckpointError, match="fake-shipped"):  # a near miss suggests the shipped name
        resolve_generator("fake-shiped")


def test_label_names_the_row_and_an_empty_one_is_refused(warm_cache, tmp_path):
    from omnibench.errors import OmnibenchError

    warm_cache()
    r = _run(label="  Fake model  ", out=tmp_path / "l.json")
    assert r["checkpoint"]["label"] == "Fake model" and load_result(tmp_path / "l.json") == r
    with pytest.raises(OmnibenchError, match="--label is empty"):
        _run(label=" ")
