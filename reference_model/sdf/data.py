"""Stage I training data: FLAME parameter sets, surface / off-surface points, signed distances,
and ground-truth canonical correspondences.

* Parameter set ``i`` derives from ``(seed, i)`` alone; the points of mesh slot ``j`` at step ``t``
  from ``(seed, t, j)`` alone, so data do not depend on worker or process count.
* On-surface points: area-weighted triangle, uniform barycentrics; normal = the deformed triangle's
  normal; canonical target ``xbar*`` = the same triangle and barycentrics on the canonical mesh (the head
  model's template: neutral shape, expression and pose).
* Off-surface points: half near the surface (surface point + isotropic Gaussian offset of ``near_std``
  metres), half uniform in the mesh's bounding box padded by ``volume_pad``.
* Holes are capped first (:func:`boundary_loops`, :func:`cap_faces`): FLAME is open at the neck and at
  the mouth slit, so each boundary loop is closed by a fan of triangles to the loop's centroid (a flat
  neck cap and a membrane across the lips that follows the jaw). Without caps the sign flips across the
  open mouth where the distance is not small, a discontinuity no MLP can represent. The capped surface
  is what W represents: its zero level set, normals and correspondences (a cap point maps to the same
  fan triangle and barycentrics on the capped template). Eyeballs are separate closed meshes.
* The head is the *union* of closed solids: the capped skin and each eyeball (separate closed meshes that
  poke through the skin). Signed distance = the minimum over components of libigl's exact point-mesh
  distance with the sign from the *generalised winding number* (negative inside). A single winding
  number over all components would make the eyeball surfaces inside the skin zero-distance surfaces with
  no sign change, which an SDF cannot represent (the first two tiny runs, with one winding number over
  everything, grew a cavity around the eyes and reached 97.5 % and 97.0 % sign accuracy). Surface samples are drawn on the union's boundary only: a point of one
  component that lies inside another is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import igl
import numpy as np
import torch

from omnibench.generators.base import POSE_DIM
from omnibench.heads.synthetic.mesh import boundary_loops  # noqa: F401 - part of this module's API
from reference_model.sdf.config import SDFConfig


@dataclass
class SDFBatch:
    """Points of ``M`` meshes. ``params`` (M, P) conditioning vectors; tensors per mesh ``m``."""

    params: torch.Tensor  # (M, P) float32
    surface: torch.Tensor  # (M, N, 3)
    normals: torch.Tensor  # (M, N, 3) unit
    canonical: torch.Tensor  # (M, N, 3) xbar* of the surface points
    off: torch.Tensor  # (M, F, 3)
    off_sdf: torch.Tensor  # (M, F) signed distance (metres, negative inside)


def keyed_rng(*key: int) -> np.random.Generator:
    """A numpy generator determined by an integer key (seed, namespace, ...), independent of call order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


class ParamSampler:
    """FLAME parameter set ``i`` of a config: shape and expression Gaussian, jaw and neck pose in ranges."""

    def __init__(self, cfg: SDFConfig) -> None:
        self.cfg = cfg

    def sample(self, indices: np.ndarray, namespace: int = 0) -> dict[str, torch.Tensor]:
        c = self.cfg
        shape, expr, pose = [], [], []
        for i in np.asarray(indices).reshape(-1):
            r = keyed_rng(c.seed, namespace, 7919, int(i))
            shape.append(r.normal(0.0, c.shape_std, c.n_shape))
            expr.append(r.normal(0.0, c.expression_std, c.n_expression))
            p = np.zeros(POSE_DIM)
            p[3:6] = r.normal(0.0, c.neck_std, 3)
            p[6] = r.uniform(0.0, c.jaw_open_max)
            p[7:9] = r.normal(0.0, c.jaw_side_std, 2)
            pose.append(p)
        f32 = torch.float32
        return {
            "shape": torch.tensor(np.array(shape), dtype=f32),
            "expression": torch.tensor(np.array(expr), dtype=f32),
            "pose": torch.tensor(np.array(pose), dtype=f32),
        }


def conditioning(shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor, cfg: SDFConfig) -> torch.Tensor:
    """The vector ``p`` W is conditioned on: ``[shape[:n_shape], expression[:n_expression], neck 3, jaw 3]``."""

    def fit(t: torch.Tensor, n: int) -> torch.Tensor:
        return t[:, :n] if t.shape[1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[1]))

    return torch.cat([fit(shape, cfg.n_shape), fit(expression, cfg.n_expression), pose[:, 3:9]], dim=1)


def sample_surface(
    verts: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator, face_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted surface samples (times ``face_weight (F,)`` if given): (face ids (n,), barycentrics (n, 3),
    points (n, 3))."""
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    w = area if face_weight is None else area * face_weight
    fid = rng.choice(len(faces), size=n, p=w / w.sum())
    u, v = rng.random(n), rng.random(n)
    su = np.sqrt(u)
    bary = np.stack([1 - su, su * (1 - v), su * v], axis=1)
    pts = np.einsum("nk,nkd->nd", bary, tri[fid])
    return fid, bary, pts


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def signed_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed distance (metres, negative inside by generalised winding number)."""
    s = igl.signed_distance(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(verts, dtype=np.float64),
        np.ascontiguousarray(faces, dtype=np.int64),
        sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER,
    )[0]
    return s


def cap_faces(faces: np.ndarray, loops: list[np.ndarray], n_vertices: int) -> np.ndarray:
    """``faces`` plus a fan per loop to a new centroid vertex (index ``n_vertices + k`` for loop ``k``),
    wound opposite to the boundary edges so the capped surface is consistently oriented."""
    caps = [np.stack([np.roll(loop, -1), loop, np.full_like(loop, n_vertices + k)], 1) for k, loop in enumerate(loops)]
    return np.concatenate([faces, *caps]) if caps else faces


def with_cap_centroids(verts: np.ndarray, loops: list[np.ndarray]) -> np.ndarray:
    """``verts (..., V, 3)`` plus one centroid per loop ``(..., V + L, 3)``."""
    cents = [verts[..., loop, :].mean(-2, keepdims=True) for loop in loops]
    return np.concatenate([verts, *cents], axis=-2)


def face_components(faces: np.ndarray, n_vertices: int) -> list[np.ndarray]:
    """Face indices of each connected component (components ordered by their first face)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    adj = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, label = connected_components(adj, directed=False)
    face_label = label[faces[:, 0]]
    order = list(dict.fromkeys(face_label.tolist()))
    return [np.flatnonzero(face_label == c) for c in order]


class SDFDataSource:
    """Generates :class:`SDFBatch` es from a head model (``omnibench.heads`` API) and a config."""

    def __init__(self, head, cfg: SDFConfig) -> None:
        self.head = head
        self.cfg = cfg
        self.params = ParamSampler(cfg)
        open_faces = np.asarray(head.faces.cpu().numpy(), dtype=np.int64)
        with torch.no_grad():
            z = torch.zeros(1, 1)
            rest = head(shape=z, expression=z, pose=torch.zeros(1, POSE_DIM)).vertices[0].double().numpy()
        self.loops = boundary_loops(open_faces)
        self.faces = cap_faces(open_faces, self.loops, rest.shape[0])
        self.components = face_components(self.faces, rest.shape[0] + len(self.loops))
        self._face_component = np.zeros(len(self.faces), dtype=np.int64)
        for k, comp in enumerate(self.components):
            self._face_component[comp] = k
        self.canonical = with_cap_centroids(rest, self.loops)
        self.face_mobility = self._face_mobility(rest) if cfg.mobile_fraction > 0 else None

    def _face_mobility(self, rest: np.ndarray) -> np.ndarray:
        """``(F,)`` per capped face: the mean over its corners of ``sqrt(sum_k |S(e_k) - S(0)|^2)`` (metres), the
        displacement each unit expression coefficient ``k < n_expression`` causes at neutral shape and pose."""
        k = self.cfg.n_expression
        with torch.no_grad():
            e = torch.eye(k)
            v = self.head(shape=torch.zeros(k, 1), expression=e, pose=torch.zeros(k, POSE_DIM)).vertices
        d = v.double().numpy() - rest[None]
        per_vertex = np.sqrt((d**2).sum(-1).sum(0))
        per_vertex = np.concatenate([per_vertex, [per_vertex[loop].mean() for loop in self.loops]])
        return per_vertex[self.faces].mean(1)

    def meshes(self, p: dict[str, torch.Tensor]) -> np.ndarray:
        """Capped vertices ``(M, V + loops, 3)`` of the parameter sets ``p`` (metres)."""
        with torch.no_grad():
            v = self.head(shape=p["shape"], expression=p["expression"], pose=p["pose"]).vertices.double().numpy()
        return with_cap_centroids(v, self.loops)

    def component_sdf(self, points: np.ndarray, verts: np.ndarray) -> np.ndarray:
        """``(C, n)`` signed distance of ``points`` to each closed component of the mesh ``verts``."""
        return np.stack([signed_distance(points, verts, self.faces[c]) for c in self.components])

    def signed_distance(self, points: np.ndarray, verts: np.ndarray) -> np.ndarray:
        """Signed distance (metres) to the union of the components (skin and eyeballs)."""
        return self.component_sdf(points, verts).min(0)

    def _mesh_points(self, v: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """One mesh's samples: surface points on the union's boundary (``2 n_surface`` candidates, those
        inside another component rejected), off-surface points and their union signed distances. One
        libigl call per component covers both the rejection test and the off-surface distances."""
        c = self.cfg
        n_mobile = round(c.mobile_fraction * c.n_surface) if self.face_mobility is not None else 0
        fid, bary, cand = sample_surface(v, self.faces, 2 * (c.n_surface - n_mobile), rng)
        mobile = np.zeros(len(fid), dtype=bool)
        if n_mobile:  # twice as many candidates of each kind; the first kept of each are used
            fm, bm, cm = sample_surface(v, self.faces, 2 * n_mobile, rng, self.face_mobility)
            fid, bary, cand = (np.concatenate([a, b]) for a, b in ((fid, fm), (bary, bm), (cand, cm)))
            mobile = np.concatenate([mobile, np.ones(len(fm), dtype=bool)])
        n_near = c.n_off_surface // 2
        _, _, base = sample_surface(v, self.faces, n_near, rng)
        near = base + rng.normal(0.0, c.near_std, base.shape)
        lo, hi = v.min(0) - c.volume_pad, v.max(0) + c.volume_pad
        off = np.concatenate([near, lo + (hi - lo) * rng.random((c.n_off_surface - n_near, 3))])
        owner = self._face_component[fid]
        keep = np.ones(len(fid), dtype=bool)
        off_sdf = np.full(len(off), np.inf)
        for k, comp in enumerate(self.components):
            others = np.flatnonzero(owner != k) if len(self.components) > 1 else np.zeros(0, dtype=np.int64)
            sd = signed_distance(np.concatenate([cand[others], off]), v, self.faces[comp])
            keep[others] &= sd[: len(others)] >= -1e-5  # a surface point inside another solid is interior
            off_sdf = np.minimum(off_sdf, sd[len(others):])
        take = np.concatenate([np.flatnonzero(keep & ~mobile)[: c.n_surface - n_mobile],
                               np.flatnonzero(keep & mobile)[:n_mobile]])
        if len(take) < c.n_surface:  # practically never: eyeball points are ~0.1 % of the head's area
            raise RuntimeError(f"only {len(take)} of {2 * c.n_surface} surface candidates lie on the boundary")
        return fid[take], bary[take], cand[take], off, off_sdf

    def batch_for(self, param_ids: np.ndarray, point_keys: list[tuple[int, ...]], namespace: int = 0) -> SDFBatch:
        """Points for parameter sets ``param_ids``; mesh ``m``'s points derive from ``point_keys[m]``."""
        c = self.cfg
        p = self.params.sample(param_ids, namespace)
        verts = self.meshes(p)
        out: dict[str, list[np.ndarray]] = {k: [] for k in ("surface", "normals", "canonical", "off", "off_sdf")}
        for m in range(len(param_ids)):
            rng = keyed_rng(c.seed, namespace, *point_keys[m])
            v = verts[m]
            fid, bary, pts, off, off_sdf = self._mesh_points(v, rng)
            out["surface"].append(pts)
            out["normals"].append(face_normals(v, self.faces)[fid])
            out["canonical"].append(np.einsum("nk,nkd->nd", bary, self.canonical[self.faces[fid]]))
            out["off"].append(off)
            out["off_sdf"].append(off_sdf)
        t = {k: torch.tensor(np.stack(v), dtype=torch.float32) for k, v in out.items()}
        cond = conditioning(p["shape"], p["expression"], p["pose"], c)
        return SDFBatch(params=cond, **t)

    def training_batch(self, step: int, rank: int = 0, world: int = 1) -> SDFBatch:
        """Batch of training step ``step`` for process ``rank`` of ``world`` (disjoint mesh slots)."""
        c = self.cfg
        slots = range(rank * c.meshes_per_step, (rank + 1) * c.meshes_per_step)
        pick = keyed_rng(c.seed, 1, step).integers(0, c.n_param_sets, size=c.meshes_per_step * world)
        ids = np.array([pick[j] for j in slots])
        return self.batch_for(ids, [(2, step, j) for j in slots])

    def heldout_batch(self, n_meshes: int = 16) -> SDFBatch:
        """Held-out parameter sets (a separate seed namespace: never seen in training)."""
        return self.batch_for(np.arange(n_meshes), [(3, j) for j in range(n_meshes)], namespace=1)


class StepStream(torch.utils.data.IterableDataset):
    """Training batches ``start .. steps-1`` prepared in a DataLoader worker so training never waits."""

    def __init__(self, source: SDFDataSource, start: int, steps: int, rank: int = 0, world: int = 1) -> None:
        self.source, self.start, self.steps, self.rank, self.world = source, start, steps, rank, world

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield step, self.source.training_batch(step, self.rank, self.world)
