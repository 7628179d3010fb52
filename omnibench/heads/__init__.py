"""Head models in the FLAME layout: loading (real FLAME or the synthetic stand-in) and the torch forward pass.

>>> from omnibench.heads import load_head_model
>>> model = load_head_model("synthetic")                 # or "synthetic:tiny", "flame", a file or folder
>>> out = model(shape=beta, expression=psi, pose=theta)  # (B, <=300), (B, <=100), (B, 15) axis-angle
>>> out.vertices, out.landmarks, model.faces             # (B, V, 3) m, (B, 68, 3) m, (F, 3) int64

See docs/head-model.md for shapes, units and conventions.
"""

from omnibench.heads.flame import (
    JOINT_NAMES,
    HeadModel,
    HeadOutput,
    axis_angle_to_matrix,
    deca_pose_to_flame15,
    load_head_model,
)
from omnibench.heads.loader import FlameData, find_model_file, load_flame_data

__all__ = [
    "JOINT_NAMES",
    "FlameData",
    "HeadModel",
    "HeadOutput",
    "axis_angle_to_matrix",
    "deca_pose_to_flame15",
    "find_model_file",
    "load_flame_data",
    "load_head_model",
]
