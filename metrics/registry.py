"""Entry point ``omnibench.metrics``: registers every metric family, estimator and backbone.

Each family module adds its lazy ``"module:Class"`` entries here; nothing heavy is imported.
"""

from __future__ import annotations

from typing import Any


def register_all(registries: dict[str, Any]) -> None:
    metrics = registries["metrics"]
    metrics.register("fid", "metrics.fid:FID", replace=True)
    metrics.register("kid", "metrics.fid:KID", replace=True)
