"""Fixtures for the head-model tests (helpers live in ``toyflame.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from toyflame import build_toy_flame, write_toy_dir


@pytest.fixture(scope="session")
def toy_dir(tmp_path_factory) -> Path:
    return write_toy_dir(tmp_path_factory.mktemp("toyflame"))


@pytest.fixture(scope="session")
def toy_arrays(toy_dir):
    model, side = build_toy_flame(0)
    return model, side


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache root and no ambient $OMNIBENCH_FLAME."""
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OMNIBENCH_FLAME", raising=False)
