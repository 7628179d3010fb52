"""The metric contract: the contexts metrics receive satisfy :class:`omnibench.metric_api.MetricContext`.

``MetricContext`` is a static protocol (not ``runtime_checkable``: on Python < 3.12 ``isinstance`` would
evaluate ``real_set``), so conformance is checked member by member, without evaluating properties, and
each method's parameters against the protocol's.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from PIL import Image

from omnibench.errors import OmnibenchError
from omnibench.generators.base import Controls
from omnibench.memory_context import InMemoryContext, sample_set
from omnibench.metric_api import DEFAULT_BATCH_SIZE, MetricContext
from omnibench.protocol import get_protocol


def _contract() -> dict[str, object]:
    """The members :class:`MetricContext` declares: name -> the protocol's attribute (None for plain data)."""
    names = {n for n in MetricContext.__annotations__ if not n.startswith("_")}
    members: dict[str, object] = dict.fromkeys(names)
    for n, v in vars(MetricContext).items():
        if not n.startswith("_") and (callable(v) or isinstance(v, property)):
            members[n] = v
    return members


def assert_satisfies_contract(ctx: object) -> None:
    """Every member of the contract on ``ctx`` (found statically); methods take the protocol's parameters."""
    for name, declared in _contract().items():
        try:
            found = inspect.getattr_static(ctx, name)
        except AttributeError:
            raise AssertionError(f"{type(ctx).__name__} lacks '{name}'") from None
        if isinstance(declared, property):
            assert isinstance(found, property) or not callable(found), name
        elif callable(declared):
            assert callable(found), name
            want = list(inspect.signature(declared).parameters)
            got = list(inspect.signature(getattr(type(ctx), name)).parameters)
            assert got == want, f"{type(ctx).__name__}.{name}{tuple(got)} != MetricContext.{name}{tuple(want)}"


def _controls(n: int) -> Controls:
    return Controls(torch.zeros(n, 25), torch.zeros(n, 3), torch.zeros(n, 2), torch.zeros(n, 15))


@pytest.fixture()
def real_dir(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    return tmp_path


def test_in_memory_context_satisfies_the_protocol(real_dir):
    images = torch.arange(5 * 3 * 4 * 4, dtype=torch.int64).remainder(256).to(torch.uint8).reshape(5, 3, 4, 4)
    ctx = InMemoryContext({"main": sample_set("main", images, _controls(5))}, real=str(real_dir),
                          options={"estimator": "regressor"}, seed=4, device="cpu", batch_size=2)
    assert_satisfies_contract(ctx)
    assert_satisfies_contract(InMemoryContext({}))  # real_set is not evaluated (it would raise: no real set)
    assert (ctx.seed, ctx.protocol.seed, ctx.protocol.bootstrap) == (4, 4, get_protocol("quick").bootstrap)
    assert ctx.device == "cpu" and ctx.batch_size == 2 and ctx.progress is False and ctx.generator_head is None
    assert [len(b) for b in ctx.sample_images("main")] == [2, 2, 1]
    assert [len(b) for b in ctx.sample_images("main", batch_size=4)] == [4, 1]
    assert torch.equal(torch.cat(list(ctx.sample_images("main"))), images)
    assert ctx.sample_fingerprint("main") is None  # nothing stored: nothing cached across contexts
    assert len(ctx.real_set) == 3
    with pytest.raises(OmnibenchError, match="no 'views' sample set"):
        ctx.samples("views")
    with pytest.raises(OmnibenchError, match="no head model"):
        ctx.head_model()


def test_engine_context_satisfies_the_protocol(tmp_path, monkeypatch):
    from omnibench.evaluation.context import EvalContext
    from omnibench.generators.noise import NoiseGenerator

    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    checkpoint = {"generator": "noise", "sha256": None, "path": "noise", "description": {}}
    ctx = EvalContext(get_protocol("quick", seed=5), NoiseGenerator(), checkpoint, progress=False,
                      options={"identity_backbone": "dlib"})
    assert_satisfies_contract(ctx)  # without building the default real set
    assert not (tmp_path / "cache" / "datasets").exists()
    assert (ctx.seed, ctx.device, ctx.batch_size) == (5, "cpu", DEFAULT_BATCH_SIZE)
    assert ctx.generator_head == NoiseGenerator.head_model and ctx.options == {"identity_backbone": "dlib"}


def test_in_memory_context_defaults_memo_and_feature_cache():
    ctx = InMemoryContext({})
    assert ctx.batch_size == DEFAULT_BATCH_SIZE and ctx.protocol.name == "quick" and ctx.seed == ctx.protocol.seed
    with pytest.raises(OmnibenchError, match="--real"):
        ctx.real_set  # noqa: B018 - the property raises
    calls = []
    assert ctx.memo(("k", 1), lambda: calls.append(1) or "v") == "v"
    assert ctx.memo(("k", 1), lambda: calls.append(1) or "w") == "v" and len(calls) == 1
    arrays = ctx.feature_cache("ns", {"a": 1}, lambda: {"x": np.arange(3)})
    again = ctx.feature_cache("ns", {"a": 1}, lambda: {"x": np.zeros(3)})
    assert again is arrays
    assert InMemoryContext({}).memo(("k", 1), lambda: "fresh") == "fresh"  # one memo per context
    with pytest.raises(OmnibenchError, match="batch size"):
        InMemoryContext({}, batch_size=0)


def test_sample_set_helper_groups_consecutive_members():
    s = sample_set("views", torch.zeros(6, 3, 2, 2, dtype=torch.uint8), _controls(6), n_members=3)
    assert s.group.tolist() == [0, 0, 0, 1, 1, 1] and s.member.tolist() == [0, 1, 2, 0, 1, 2]
    assert (s.n_groups, s.n_members, len(s)) == (2, 3, 6) and s.z.shape == (6, 1)
