"""Identity backbones: ``arcface``, ``dlib``, ``synthetic`` (see :mod:`metrics.backbones.base`).

Backbones are named by a spec ``NAME`` or ``NAME:ARG`` (``arcface:antelopev2``,
``arcface:/path/to/w600k_r50.onnx``, ``synthetic:/path/weights.pt``) and created with
:func:`load_backbone`, which keeps one instance per spec and process.
"""

from __future__ import annotations

from typing import Any

from metrics.backbones.base import IdentityBackbone
from omnibench.errors import OmnibenchError

_INSTANCES: dict[str, IdentityBackbone] = {}


def _registry() -> Any:
    from omnibench.metric_api import BACKBONES, ESTIMATORS, METRICS, load_metric_plugins

    load_metric_plugins()
    if "arcface" not in BACKBONES:  # entry point not installed: register directly (idempotent)
        from metrics.registry import register_all

        register_all({"metrics": METRICS, "estimators": ESTIMATORS, "backbones": BACKBONES})
    return BACKBONES


def load_backbone(spec: str | IdentityBackbone) -> IdentityBackbone:
    """Instance for ``spec`` (``NAME`` or ``NAME:ARG``); passes backbone objects through."""
    if isinstance(spec, IdentityBackbone):
        return spec
    if not isinstance(spec, str) or not spec:
        raise OmnibenchError(f"identity backbone spec must be a non-empty string; got {spec!r}")
    if spec not in _INSTANCES:
        name, _, arg = spec.partition(":")
        cls = _registry().get(name)
        _INSTANCES[spec] = cls(arg) if arg else cls()
    return _INSTANCES[spec]


__all__ = ["IdentityBackbone", "load_backbone"]
