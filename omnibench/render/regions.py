"""Where the parts of a head are: anchors and soft region weights on a template mesh.

The shader paints in *canonical* coordinates (the template position of the surface point, interpolated
with the hit's barycentrics), so the painted features follow the mesh under shape, expression and pose.
Regions come from the head model's vertex masks (FLAME key names: ``lips``, ``eye_region``,
``left_eyeball``, ``right_eyeball``, ``scalp``, ``face``, ``neck``, ...) when present; otherwise
from geometric rules on the template's bounding box with the proportions of a FLAME-like head
(eyes at 64 % of the height, 3.1 cm either side of the midline, mouth at 42 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from omnibench.errors import OmnibenchError

SOFT_REGIONS = ("lips", "eye_region", "face", "scalp", "neck", "forehead", "nose")


def vertex_adjacency(n_vertices: int, faces: np.ndarray) -> sp.csr_matrix:
    """Row-normalised adjacency (self loops included) ``(V, V)``: one step of neighbour averaging."""
    f = faces.astype(np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0], np.arange(n_vertices)])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2], np.arange(n_vertices)])
    a = sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n_vertices, n_vertices))
    a.data[:] = 1.0  # duplicate edges count once
    deg = np.asarray(a.sum(axis=1)).ravel()
    return sp.diags(1.0 / deg) @ a


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, incidence: sp.csr_matrix | None = None) -> np.ndarray:
    """Area-weighted vertex normals ``(V, 3)`` (unit length; zero for unused vertices)."""
    tri = vertices[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    if incidence is None:
        incidence = face_incidence(vertices.shape[0], faces)
    vn = incidence @ fn
    norm = np.linalg.norm(vn, axis=-1, keepdims=True)
    return vn / np.maximum(norm, 1e-20)


def face_incidence(n_vertices: int, faces: np.ndarray) -> sp.csr_matrix:
    """Sparse ``(V, F)`` vertex-face incidence (1 where the vertex is a corner of the face)."""
    f = faces.astype(np.int64)
    rows = f.ravel()
    cols = np.repeat(np.arange(f.shape[0]), 3)
    return sp.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n_vertices, f.shape[0]))


def _as_index(mask: object, n_vertices: int, name: str) -> np.ndarray:
    arr = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if arr.dtype == bool:
        if arr.shape != (n_vertices,):
            raise OmnibenchError(f"boolean mask '{name}' has shape {arr.shape}, expected ({n_vertices},)")
        arr = np.flatnonzero(arr)
    arr = arr.astype(np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= n_vertices):
        raise OmnibenchError(f"mask '{name}' has vertex indices outside [0, {n_vertices})")
    return arr


@dataclass
class HeadRegions:
    """Anchors and per-vertex soft region weights of a head template (metres, head frame).

    ``eyeball`` is 0 for skin, 1 for the left (+x) and 2 for the right (-x) eyeball vertices.
    ``weights[name]`` are soft weights in [0, 1] (mask indicators smoothed over the mesh graph);
    absent masks are absent keys. ``eye_centres`` is ``(2, 3)`` [left (+x), right (-x)].
    """

    template: np.ndarray
    faces: np.ndarray
    eyeball: np.ndarray
    weights: dict[str, np.ndarray]
    eye_centres: np.ndarray
    eye_radius: float
    mouth_centre: np.ndarray
    mouth_half_width: float
    head_centre: np.ndarray
    head_top: float
    scale: float  # inter-ocular distance / 0.062 m (1 for a FLAME-sized head)
    has_eyeballs: bool
    from_masks: bool
    _incidence: sp.csr_matrix | None = field(default=None, repr=False)

    @property
    def incidence(self) -> sp.csr_matrix:
        if self._incidence is None:
            self._incidence = face_incidence(self.template.shape[0], self.faces)
        return self._incidence

    @property
    def skin_faces(self) -> np.ndarray:
        """Boolean ``(F,)``: faces that are not part of an eyeball."""
        return self.eyeball[self.faces].max(axis=1) == 0

    @classmethod
    def from_model(cls, model: object) -> HeadRegions:
        """Regions of a head model (``model.template``, ``model.faces``, optional ``model.masks``)."""
        template = getattr(model, "template", None)
        faces = getattr(model, "faces", None)
        if template is None or faces is None:
            raise OmnibenchError("head model must expose .template (V, 3) and .faces (F, 3)")
        masks = getattr(model, "masks", None) or {}
        to_np = lambda t: np.asarray(t.detach().cpu().numpy() if hasattr(t, "detach") else t)  # noqa: E731
        return cls.from_mesh(to_np(template), to_np(faces), masks)

    @classmethod
    def from_mesh(cls, template: np.ndarray, faces: np.ndarray, masks: Mapping[str, object] | None = None) -> HeadRegions:
        """Regions from a template mesh and optional FLAME-style vertex masks (index arrays or booleans)."""
        t = np.asarray(template, dtype=np.float64)
        f = np.asarray(faces).astype(np.int64)
        if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] < 4 or f.ndim != 2 or f.shape[1] != 3 or f.shape[0] < 1:
            raise OmnibenchError(f"expected a template (V, 3) and faces (F, 3), got {t.shape} and {f.shape}")
        if f.min() < 0 or f.max() >= t.shape[0]:
            raise OmnibenchError("face indices out of range of the template")
        n = t.shape[0]
        masks = {k: _as_index(v, n, k) for k, v in (masks or {}).items()}
        eyeball = np.zeros(n, np.int8)
        has_eyeballs = "left_eyeball" in masks and "right_eyeball" in masks
        if has_eyeballs:
            eyeball[masks["left_eyeball"]] = 1
            eyeball[masks["right_eyeball"]] = 2
        skin = eyeball == 0
        head = t[skin]
        lo, hi = head.min(axis=0), head.max(axis=0)
        size = hi - lo
        # Anchors --------------------------------------------------------------------------------
        if has_eyeballs:
            eye_c = np.stack([t[masks["left_eyeball"]].mean(0), t[masks["right_eyeball"]].mean(0)])
            eye_r = float(np.mean([np.linalg.norm(t[masks[k]] - c, axis=1).mean()
                                   for k, c in zip(("left_eyeball", "right_eyeball"), eye_c)]))
        else:
            ey = lo[1] + 0.64 * size[1]
            ex = 0.18 * size[0]
            ez = _front_z(head, np.array([ex, ey])) - 0.3 * 0.0125 * size[1] / 0.30
            eye_c = np.array([[ex, ey, ez], [-ex, ey, ez]])
            eye_r = 0.0125 * size[1] / 0.30
        scale = float(np.linalg.norm(eye_c[0] - eye_c[1]) / 0.062)
        if "lips" in masks and masks["lips"].size:
            lips = t[masks["lips"]]
            my = float(np.median(lips[:, 1]))
            half_w = float(0.75 * (lips[:, 0].max() - lips[:, 0].min()) / 2)
            mx = float(lips[:, 0].mean())
        else:
            my = float(eye_c[:, 1].mean() - 0.063 * scale)
            half_w, mx = 0.025 * scale, 0.0
        mz = _front_z(head, np.array([mx, my]))
        centre = np.array([0.5 * (lo[0] + hi[0]), eye_c[:, 1].mean() - 0.02 * scale, lo[2] + 0.45 * size[2]])
        # Soft weights ---------------------------------------------------------------------------
        adj = vertex_adjacency(n, f)
        weights: dict[str, np.ndarray] = {}
        for name in SOFT_REGIONS:
            if name in masks:
                w = np.zeros(n)
                w[masks[name]] = 1.0
                for _ in range(2):
                    w = adj @ w
                w[~skin] = 0.0
                weights[name] = w
        return cls(
            template=t, faces=f, eyeball=eyeball, weights=weights, eye_centres=eye_c, eye_radius=eye_r,
            mouth_centre=np.array([mx, my, mz]), mouth_half_width=half_w, head_centre=centre,
            head_top=float(hi[1]), scale=scale, has_eyeballs=has_eyeballs, from_masks=bool(masks),
        )


def _front_z(points: np.ndarray, xy: np.ndarray) -> float:
    """z of the front-most template point near the vertical line through ``xy`` (x, y)."""
    d = np.linalg.norm(points[:, :2] - xy[None], axis=1)
    near = d < max(np.sort(d)[min(8, d.size - 1)], 1e-6)
    return float(points[near, 2].max())
