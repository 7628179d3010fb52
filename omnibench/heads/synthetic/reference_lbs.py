"""Independent float64 reference of the FLAME forward pass (flame.md §2.1), for generator validation.

Deliberately plain numpy and unbatched so it shares nothing with the project's production forward pass
(``omnibench.heads.flame``); tests may use it as an oracle for that implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

EXPR_OFFSET = 300


def rodrigues(r: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) -> rotation matrix (3,3): R = I + sin t [k]x + (1 - cos t)[k]x^2; exact I at 0."""
    r = np.asarray(r, dtype=np.float64)
    theta = float(np.linalg.norm(r))
    if theta == 0.0:
        return np.eye(3)
    k = r / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def parents_from_kintree(kintree: np.ndarray) -> np.ndarray:
    """Row 0 of the kintree table with parents[0] forced to -1 (SMPL-family sentinel 2**32-1)."""
    parents = np.asarray(kintree)[0].astype(np.int64).copy()
    parents[0] = -1
    return parents


@dataclass
class LBSOutput:
    vertices: np.ndarray  # (V, 3)
    joints: np.ndarray  # (5, 3) posed
    rest_joints: np.ndarray  # (5, 3)
    v_shaped: np.ndarray  # (V, 3)


def reference_lbs(model: Mapping[str, object], shape: np.ndarray | None = None, expression: np.ndarray | None = None,
                  pose: np.ndarray | None = None, translation: np.ndarray | None = None) -> LBSOutput:
    """One forward pass in float64.

    ``model``: FLAME-layout dict (``v_template``, ``shapedirs`` (V,3,400), ``posedirs`` (V,3,36),
    ``J_regressor`` (5,V) dense or sparse, ``weights`` (V,5), ``kintree_table``). ``shape`` (<=300,),
    ``expression`` (<=100,) use columns 0.. and 300..; ``pose`` (15,) axis-angle [global|neck|jaw|leye|reye];
    ``translation`` (3,) added last. Units: metres, radians.
    """
    v_t = np.asarray(model["v_template"], dtype=np.float64)
    sd = np.asarray(model["shapedirs"], dtype=np.float64)
    pd = np.asarray(model["posedirs"], dtype=np.float64)
    jr = model["J_regressor"]
    jr = jr.toarray() if sp.issparse(jr) else np.asarray(jr, dtype=np.float64)
    w = np.asarray(model["weights"], dtype=np.float64)
    parents = parents_from_kintree(np.asarray(model["kintree_table"]))
    n_v = v_t.shape[0]
    n_j = parents.size

    v_shaped = v_t.copy()
    if shape is not None and len(shape):
        b = np.asarray(shape, dtype=np.float64)
        v_shaped = v_shaped + np.einsum("vkl,l->vk", sd[:, :, : b.size], b)
    if expression is not None and len(expression):
        e = np.asarray(expression, dtype=np.float64)
        v_shaped = v_shaped + np.einsum("vkl,l->vk", sd[:, :, EXPR_OFFSET: EXPR_OFFSET + e.size], e)
    joints = jr @ v_shaped

    theta = np.zeros((n_j, 3)) if pose is None else np.asarray(pose, dtype=np.float64).reshape(n_j, 3)
    rots = np.stack([rodrigues(t) for t in theta])
    feat = (rots[1:] - np.eye(3)).reshape(-1)  # row-major (R_j - I), joints 1..4
    p_mat = pd.reshape(n_v * 3, -1).T  # (36, 3V), vertex-major
    v_posed = v_shaped + (feat @ p_mat).reshape(n_v, 3)

    g = np.zeros((n_j, 4, 4))
    for j in range(n_j):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] if parents[j] < 0 else joints[j] - joints[parents[j]]
        g[j] = local if parents[j] < 0 else g[parents[j]] @ local
    a = g.copy()
    for j in range(n_j):
        a[j, :3, 3] = g[j, :3, 3] - g[j, :3, :3] @ joints[j]
    t = np.einsum("vj,jab->vab", w, a)
    verts = np.einsum("vab,vb->va", t[:, :3, :3], v_posed) + t[:, :3, 3]
    posed_joints = g[:, :3, 3].copy()
    if translation is not None:
        verts = verts + np.asarray(translation, dtype=np.float64)
        posed_joints = posed_joints + np.asarray(translation, dtype=np.float64)
    return LBSOutput(vertices=verts, joints=posed_joints, rest_joints=joints, v_shaped=v_shaped)
