"""What a result file records besides the numbers: code version, environment, metric entries, real set.

:func:`metric_entry` turns a :class:`MetricResult` into the result file's per-metric block (adding the
protocol's bootstrap interval when the metric returned per-sample values); :func:`git_sha` and
:func:`environment` describe the code and machine; :func:`real_block` the real set.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibench.errors import OmnibenchError
from omnibench.imagesets import ImageSet
from omnibench.metric_api import Metric, MetricResult, bootstrap_ci
from omnibench.protocol import Protocol
from omnibench.results import json_safe


def metric_entry(cls: type[Metric], variant: str, res: MetricResult, protocol: Protocol, seconds: float) -> dict:
    """The result file's block of one metric (see docs/result-schema.md); JSON-safe."""
    if not isinstance(res, MetricResult):
        raise OmnibenchError(f"metric '{cls.name}' returned {type(res).__name__}, expected MetricResult")
    details = dict(res.details)
    per_sample = details.pop("per_sample", None)
    ci = res.ci95
    if ci is None and per_sample is not None:
        ci = bootstrap_ci(np.asarray(per_sample), n_boot=protocol.bootstrap, seed=protocol.seed)
    entry: dict[str, Any] = {
        "value": None if res.value is None else float(res.value),
        "higher_is_better": bool(cls.higher_is_better),
        "n": int(res.n),
        "ci95": [float(ci[0]), float(ci[1])] if ci is not None else None,
        "version": int(cls.version),
        "variant": variant,
        "failures": int(res.failures),
        "details": details,
        "seconds": round(seconds, 4),
    }
    unit = res.unit or cls.unit
    if unit:
        entry["unit"] = unit
    return json_safe(entry)


def not_applicable_entry(cls: type[Metric], variant: str, reason: str) -> dict:
    """The result file's block of a metric not applicable to the generator: ``value`` null, ``n`` 0 and
    ``not_applicable`` = ``reason`` (which control the generator ignores)."""
    entry: dict[str, Any] = {
        "value": None, "higher_is_better": bool(cls.higher_is_better), "n": 0, "ci95": None,
        "version": int(cls.version), "variant": variant, "failures": 0, "not_applicable": reason,
    }
    if cls.unit:
        entry["unit"] = cls.unit
    return entry


def git_sha() -> str | None:
    """Commit of the omnibench source tree (``-dirty`` when tracked files changed), None outside git."""
    src = Path(__file__).resolve().parents[2]
    try:
        r = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = r.stdout.strip()
    if r.returncode != 0 or not sha:
        return None
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def environment(device: str, world_size: int = 1) -> dict[str, Any]:
    """Versions, machine and device of this run."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env


def real_block(path: Path, real: ImageSet) -> dict[str, Any]:
    """``{"path", "hash", "n"}`` of the real set (``hash``: its content hash)."""
    return {"path": str(path), "hash": real.content_hash, "n": len(real)}
