"""Fixtures of the engine tests (tests/omnibench/evaluation, tests/omnibench/cli): the fakes' tiny protocol and
private caches."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnibench.protocol import PROTOCOLS
from tests.omnibench.fakes import TINY


@pytest.fixture
def tiny_protocol(monkeypatch):
    """Register :data:`tests.omnibench.fakes.TINY` as protocol ``tiny`` for one test."""
    monkeypatch.setitem(PROTOCOLS, "tiny", TINY)


@pytest.fixture
def fresh_cache(monkeypatch, tmp_path, synthetic_heads):
    """``fresh_cache()`` points ``OMNIBENCH_CACHE`` at a new cache folder and returns it: runs must not share
    samples, features or datasets unless a test wants them to. Its ``heads`` (the head models the control prior
    loads, no samples) links to the session's (``synthetic_heads``, tests/conftest.py)."""
    counter = iter(range(100))

    def new() -> Path:
        d = tmp_path / f"cache{next(counter)}"
        d.mkdir()
        (d / "heads").symlink_to(synthetic_heads, target_is_directory=True)
        monkeypatch.setenv("OMNIBENCH_CACHE", str(d))
        return d

    return new
