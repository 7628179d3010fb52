"""Joints, ``J_regressor``, skinning weights and kinematic tree (flame.md §5.7-5.8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from omnibench.errors import OmnibenchError
from omnibench.heads.synthetic.mesh import EYE_CENTRE_L, EYE_CENTRE_R, HeadMesh
from omnibench.heads.synthetic.regions import smoothstep

JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")
PARENTS = np.array([-1, 0, 1, 1, 1])
JOINT_TARGETS = np.array([
    [0.0, -0.130, -0.022],
    [0.0, -0.060, -0.020],
    [0.0, -0.005, -0.025],
    EYE_CENTRE_L,
    EYE_CENTRE_R,
])
UINT32_SENTINEL = 4294967295


@dataclass
class Rig:
    J_regressor: sp.csc_matrix  # (5, V) float64
    J: np.ndarray  # (5, 3)
    weights: np.ndarray  # (V, 5)
    kintree_table: np.ndarray  # (2, 5) int64


def _tetra_row(mesh: HeadMesh, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Four head vertices (sides above, front/back below) whose barycentric weights give ``target``."""
    az = mesh.azimuths
    j_left = int(np.argmin(np.abs(az - np.pi / 2)))
    j_right = int(np.flatnonzero(mesh.rows[0] == mesh.mirror_idx[mesh.rows[0, j_left]])[0])
    j_front = int(np.argmin(np.abs(az)))
    j_back = int(np.argmin(np.abs(np.abs(az) - np.pi)))
    ry = mesh.row_y
    above0 = int(np.flatnonzero(ry > target[1]).max())
    below0 = int(np.flatnonzero(ry <= target[1]).min())
    for k in range(max(above0 + 1, ry.size - below0)):
        up, lo = above0 - k, below0 + k
        if up < 0 or lo >= ry.size:
            break
        ids = np.array([mesh.rows[up, j_left], mesh.rows[up, j_right], mesh.rows[lo, j_front], mesh.rows[lo, j_back]])
        p = mesh.vertices[ids]
        m = np.vstack([p.T, np.ones(4)])
        w = np.linalg.solve(m, np.append(target, 1.0))
        if np.all(w >= 0):
            return ids, w
    raise OmnibenchError(f"synthflame: cannot enclose joint target {target} in a ring tetrahedron")


def build_rig(mesh: HeadMesh, kintree_sentinel: bool = True) -> Rig:
    """Joint regressor (sparse csc), rest joints, LBS weights and kintree table for ``mesh``."""
    n_v = mesh.n_vertices
    jr = np.zeros((5, n_v))
    for j in range(3):
        ids, w = _tetra_row(mesh, JOINT_TARGETS[j])
        jr[j, ids] = w
    for j, sl in ((3, mesh.left_eye), (4, mesh.right_eye)):
        cnt = sl.stop - sl.start
        jr[j, sl] = 1.0 / cnt
    J_regressor = sp.csc_matrix(jr)
    J = J_regressor @ mesh.vertices

    v = mesh.vertices
    y, z = v[:, 1], v[:, 2]
    aphi = np.abs(mesh.phi)
    head = np.zeros(n_v, bool)
    head[: mesh.n_head] = True
    s_n = smoothstep(-0.155, -0.110, y)
    wm = mesh.preset.mouth_width
    below = (mesh.vertex_row > mesh.slit_row) | (mesh.dup_of >= 0)
    l_band = below.astype(np.float64)
    l_smooth = 1.0 - smoothstep(-0.045, -0.022, y)
    b = smoothstep(wm, wm + 0.15, aphi)
    lip = (1.0 - b) * l_band + b * l_smooth
    m_j = lip * smoothstep(-0.050, -0.025, z) * smoothstep(-0.110, -0.090, y)
    w = np.zeros((n_v, 5))
    w[head, 0] = (1.0 - s_n)[head]
    w[head, 1] = (s_n * (1.0 - m_j))[head]
    w[head, 2] = (s_n * m_j)[head]
    w[mesh.left_eye, 3] = 1.0
    w[mesh.right_eye, 4] = 1.0
    root = UINT32_SENTINEL if kintree_sentinel else -1
    kintree = np.array([[root, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return Rig(J_regressor=J_regressor, J=J, weights=w, kintree_table=kintree)
