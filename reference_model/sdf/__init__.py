"""OmniAvatar Stage I: the deformable semantic SDF ``W(x | p) = (s, xbar)``.

``from reference_model.sdf import SemanticSDF, load_sdf``; train with ``omnibench train sdf``.
"""

from reference_model.sdf.checkpoint import load_sdf, save_sdf
from reference_model.sdf.config import CONFIGS, SDFConfig
from reference_model.sdf.model import SemanticSDF

__all__ = ["CONFIGS", "SDFConfig", "SemanticSDF", "load_sdf", "save_sdf"]
