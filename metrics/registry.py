"""Entry point ``omnibench.metrics``: registers every metric family, estimator and backbone.

Each family module adds its lazy ``"module:Class"`` entries here; nothing heavy is imported.
"""

from __future__ import annotations

from typing import Any

# The built-in FLAME estimators (:mod:`metrics.estimators`): name -> lazy ``module:Class``.
BUILTIN_ESTIMATORS = {
    "regressor": "metrics.estimators.regressor:RegressorEstimator",
    "landmark-fit": "metrics.estimators.landmark_fit:LandmarkFitEstimator",
    "photo-fit": "metrics.estimators.photo_fit:PhotoFitEstimator",
    "deca": "metrics.estimators.deca:DecaEstimator",
    "emoca": "metrics.estimators.emoca:EmocaEstimator",
    "smirk": "metrics.estimators.smirk:SmirkEstimator",
}


def register_estimators(registry: Any) -> None:
    """Add the built-in estimators (lazy ``module:Class`` strings) to ``registry``."""
    for name, spec in BUILTIN_ESTIMATORS.items():
        registry.register(name, spec, replace=True)


def register_all(registries: dict[str, Any]) -> None:
    metrics = registries["metrics"]
    metrics.register("fid", "metrics.fid:FID", replace=True)
    metrics.register("kid", "metrics.fid:KID", replace=True)

    # identity + multi-view
    backbones = registries["backbones"]
    backbones.register("arcface", "metrics.backbones.arcface:ArcFaceBackbone", replace=True)
    backbones.register("dlib", "metrics.backbones.dlib_backbone:DlibBackbone", replace=True)
    backbones.register("synthetic", "metrics.backbones.synthetic:SyntheticBackbone", replace=True)
    metrics.register("id-views", "metrics.identity:IdViews", replace=True)
    metrics.register("id-expr", "metrics.identity:IdExpr", replace=True)
    metrics.register("mv-reproj", "metrics.multiview:MvReproj", replace=True)
    metrics.register("geometry", "metrics.multiview:Geometry", replace=True)
    # end identity + multi-view

    # control accuracy
    metrics.register("aed", "metrics.control:AED", replace=True)
    metrics.register("asd", "metrics.control:ASD", replace=True)
    metrics.register("apd", "metrics.control:APD", replace=True)
    metrics.register("akd", "metrics.akd:AKD", replace=True)
    if "estimators" in registries:
        register_estimators(registries["estimators"])
