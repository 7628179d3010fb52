"""Session-wide test settings: a private omnibench cache."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _omnibench_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``OMNIBENCH_CACHE`` (inherited by subprocesses) at a fresh temporary folder."""
    old = os.environ.get("OMNIBENCH_CACHE")
    os.environ["OMNIBENCH_CACHE"] = str(tmp_path_factory.mktemp("omnibench-cache"))
    yield
    if old is None:
        os.environ.pop("OMNIBENCH_CACHE", None)
    else:
        os.environ["OMNIBENCH_CACHE"] = old
