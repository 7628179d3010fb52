"""The engine's context: the typed metric contract, memos, and the cross-process feature cache."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import numpy as np

from omnibench.evaluation import EvalContext
from omnibench.generators.noise import NoiseGenerator
from omnibench.memory_context import InMemoryContext
from omnibench.metric_api import MetricContext
from omnibench.protocol import get_protocol

CHECKPOINT = {"generator": "noise", "sha256": None, "path": "noise", "description": {}}


def _ctx(**kw) -> EvalContext:
    return EvalContext(get_protocol("quick"), NoiseGenerator(), CHECKPOINT, progress=False, **kw)


def contract_members() -> set[str]:
    """The members :class:`MetricContext` declares (attributes, methods, properties)."""
    names = set(MetricContext.__annotations__)
    names |= {n for n, v in vars(MetricContext).items() if callable(v) or isinstance(v, property)}
    return {n for n in names if not n.startswith("_")}


def test_engine_and_in_memory_contexts_satisfy_the_metric_contract():
    members = contract_members()
    assert {"samples", "sample_images", "sample_fingerprint", "head_model", "real_set", "memo", "feature_cache",
            "protocol", "options", "device", "batch_size", "seed", "progress", "generator_head"} <= members
    for ctx in (_ctx(), InMemoryContext({})):
        missing = [n for n in members if not _has_static(ctx, n)]
        assert not missing, f"{type(ctx).__name__} lacks {missing}"


def _has_static(obj, name: str) -> bool:
    """``name`` on ``obj`` without evaluating properties (``real_set`` would build the real set)."""
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


def test_device_is_normalised_once_and_generator_head_is_exposed():
    ctx = _ctx(device="cpu", batch_size=3)
    assert (ctx.device, ctx.batch_size, ctx.seed) == ("cpu", 3, 0)
    assert ctx.generator_head == NoiseGenerator.head_model
    assert _ctx(device="cuda:1").device == "cuda:1"  # torchrun's cuda:LOCAL_RANK passes through unchanged


def test_memo_computes_once_per_context_and_key():
    ctx, calls = _ctx(), []
    for _ in range(3):
        assert ctx.memo(("k", 1), lambda: calls.append(1) or len(calls)) == 1
    assert ctx.memo(("k", 2), lambda: 7) == 7 and len(calls) == 1
    assert _ctx().memo(("k", 1), lambda: 5) == 5  # another context: its own memo


def test_two_processes_compute_one_feature_cache_entry_once(tmp_path, monkeypatch):
    """Two evaluations on one cache: the second waits for the first and reuses its entry."""
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "computed"
    script = textwrap.dedent(f"""
        import time
        import numpy as np
        from omnibench.evaluation import EvalContext
        from omnibench.generators.noise import NoiseGenerator
        from omnibench.protocol import get_protocol
        ctx = EvalContext(get_protocol("quick"), NoiseGenerator(), {CHECKPOINT!r}, progress=False)
        def compute():
            with open({str(marker)!r}, "a") as f:
                f.write("x\\n")
            time.sleep(2.0)
            return {{"a": np.arange(4)}}
        print(ctx.feature_cache("test", {{"k": 1}}, compute)["a"].tolist())
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == ["[0, 1, 2, 3]"] * 2
    assert marker.read_text() == "x\n"  # computed by one process only
    files = list((tmp_path / "cache" / "features").glob("test-*.npz"))
    assert len(files) == 1 and np.load(files[0])["a"].tolist() == [0, 1, 2, 3]
