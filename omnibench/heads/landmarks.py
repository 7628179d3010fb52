"""Landmark embeddings on a FLAME-topology mesh: file parsing and the (batched, torch) embedding math.

A landmark is a point on a triangle: ``lmk = sum_k b_k * v[f[face, k]]`` (barycentric weights ``b`` >= 0,
summing to 1). The iBUG-68 set is the 17-point jaw contour (chosen per sample from a 79-row yaw table,
the *dynamic* contour) followed by 51 *static* points (iBUG 17..67); the "full 68" set has a static contour.

Dynamic-contour convention (pinned, DECA's; see docs/head-model.md):

* ``R_rel = R_global @ R_neck`` (the neck kinematic chain [1, 0], NECK_IDX = 1);
* ``yaw = atan2(-R_rel[2, 0], sqrt(R_rel[0, 0]**2 + R_rel[1, 0]**2))`` in degrees (the y Euler angle;
  positive = nose turned toward +x);
* row = ``round(min(yaw, 39))`` for yaw >= 0 (after rounding), ``39 - a`` for ``-39 <= a < 0``, 78 below.

Row ``a`` of the table is the silhouette of a head yawed by ``+a`` degrees seen from +z (flame.md §1.6), so
DECA's ``+yaw`` indexing is the geometrically consistent one; FLAME_PyTorch/smplx use ``-yaw``
(available via ``yaw_sign=-1``) and smplx also drops the neck from the chain (``neck_in_chain=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnibench.errors import OmnibenchError

N_CONTOUR = 17
N_STATIC = 51
N_DYNAMIC_ROWS = 79
MAX_YAW_ROW = 39


@dataclass(frozen=True)
class Embedding:
    """Static embedding: ``face_idx`` (L,) int64 and ``bary`` (L, 3) float64 (or (R, L) / (R, L, 3) for tables)."""

    face_idx: np.ndarray
    bary: np.ndarray

    def normalized(self) -> Embedding:
        """Barycentrics renormalised to sum to 1 in float64 (DECA stores float32 weights)."""
        return Embedding(self.face_idx, self.bary / self.bary.sum(axis=-1, keepdims=True))

    def validate(self, n_faces: int, shape: tuple[int, ...], what: str) -> Embedding:
        if self.face_idx.shape != shape or self.bary.shape != (*shape, 3):
            raise OmnibenchError(
                f"{what}: expected face indices {shape} and barycentrics {(*shape, 3)}, got "
                f"{self.face_idx.shape} and {self.bary.shape}"
            )
        if self.face_idx.size and (self.face_idx.min() < 0 or self.face_idx.max() >= n_faces):
            raise OmnibenchError(f"{what}: face index out of range [0, {n_faces}) - wrong mesh for this file?")
        if not np.all(np.isfinite(self.bary)) or np.any(np.abs(self.bary.sum(axis=-1) - 1) > 1e-3):
            raise OmnibenchError(f"{what}: barycentric coordinates must be finite and sum to 1")
        return self.normalized()


def _as_array(value: Any, dtype: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, list | tuple):
        value = np.array([v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v) for v in value])
    return np.asarray(value).astype(dtype)


def _need(obj: Any, keys: tuple[str, ...], what: str) -> None:
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise OmnibenchError(f"{what}: expected a dict with keys {list(keys)}, found {have}")


def parse_ringnet(obj: Any, what: str) -> Embedding:
    """RingNet/smplx/TF_FLAME layout: ``{'lmk_face_idx', 'lmk_b_coords'}`` (static) or lists of rows (dynamic)."""
    _need(obj, ("lmk_face_idx", "lmk_b_coords"), what)
    return Embedding(_as_array(obj["lmk_face_idx"], np.int64), _as_array(obj["lmk_b_coords"], np.float64))


def parse_deca(obj: Any, what: str) -> tuple[Embedding, Embedding, Embedding]:
    """DECA/MICA ``landmark_embedding.npy`` dict -> (static 51, dynamic (79,17), full 68).

    Accepts torch tensors (as DECA writes the dynamic entries) or ndarrays.
    """
    keys = ("static_lmk_faces_idx", "static_lmk_bary_coords", "dynamic_lmk_faces_idx",
            "dynamic_lmk_bary_coords", "full_lmk_faces_idx", "full_lmk_bary_coords")
    _need(obj, keys, what)
    static = Embedding(_as_array(obj[keys[0]], np.int64), _as_array(obj[keys[1]], np.float64))
    dynamic = Embedding(_as_array(obj[keys[2]], np.int64), _as_array(obj[keys[3]], np.float64))
    full = Embedding(_as_array(obj[keys[4]], np.int64).reshape(-1), _as_array(obj[keys[5]], np.float64).reshape(-1, 3))
    return static, dynamic, full


# ----------------------------------------------------------------------------------------------- torch math


def barycentric_points(vertices: torch.Tensor, faces: torch.Tensor, face_idx: torch.Tensor,
                       bary: torch.Tensor) -> torch.Tensor:
    """Points on the mesh.

    vertices (B, V, 3); faces (F, 3) int64; face_idx (L,) or (B, L) int64; bary (L, 3) or (B, L, 3).
    Returns (B, L, 3) in the units of ``vertices``.
    """
    batch, n_v = vertices.shape[:2]
    tri = faces[face_idx]  # (L, 3) or (B, L, 3) vertex ids
    if tri.dim() == 2:
        corners = vertices.index_select(1, tri.reshape(-1)).view(batch, *tri.shape, 3)  # (B, L, 3, 3)
    else:
        flat = tri + (torch.arange(batch, device=tri.device) * n_v)[:, None, None]
        corners = vertices.reshape(batch * n_v, 3).index_select(0, flat.reshape(-1)).view(*tri.shape, 3)
    return (corners * bary.to(vertices.dtype).unsqueeze(-1)).sum(dim=-2)


def yaw_degrees(rot: torch.Tensor) -> torch.Tensor:
    """y Euler angle of rotation matrices (..., 3, 3) in degrees: ``atan2(-R[2,0], hypot(R[0,0], R[1,0]))``."""
    sy = torch.sqrt(rot[..., 0, 0] ** 2 + rot[..., 1, 0] ** 2)
    return torch.rad2deg(torch.atan2(-rot[..., 2, 0], sy))


def contour_row(yaw_deg: torch.Tensor) -> torch.Tensor:
    """Dynamic-contour table row for a yaw in degrees (DECA's rule): 0..39 for >= 0, 39 - a for < 0, 78 below -39."""
    a = torch.round(torch.clamp(yaw_deg, max=float(MAX_YAW_ROW))).long()
    neg = torch.where(a < -MAX_YAW_ROW, torch.full_like(a, 2 * MAX_YAW_ROW), MAX_YAW_ROW - a)
    return torch.where(a < 0, neg, a)
