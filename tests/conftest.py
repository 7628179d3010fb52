"""Session-wide test settings: a private omnibench cache, and the synthetic head built once for the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _omnibench_cache(tmp_path_factory: pytest.TempPathFactory):
    """Point ``OMNIBENCH_CACHE`` (inherited by subprocesses) at a fresh temporary folder."""
    old = os.environ.get("OMNIBENCH_CACHE")
    path = tmp_path_factory.mktemp("omnibench-cache")
    os.environ["OMNIBENCH_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("OMNIBENCH_CACHE", None)
    else:
        os.environ["OMNIBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def synthetic_heads(_omnibench_cache: Path) -> Path:
    """The session cache's ``heads`` folder, holding the embedded synthetic head: the control prior of every
    generator without a head model of its own. Built once (a build writes ~140 MB and takes seconds); a private
    cache that links its ``heads`` here (tests/omnibench/conftest.py ``fresh_cache``) shares it and nothing else."""
    from omnibench.heads import load_head_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNIBENCH_CACHE", str(_omnibench_cache))
        load_head_model("synthetic")
    return _omnibench_cache / "heads"
