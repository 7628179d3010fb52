"""Primary-ray casting of triangle meshes for EG3D cameras, on CPU with Intel Embree.

Why Embree (through the ``embreex`` bindings, the backend of ``trimesh.ray.ray_pyembree``)?
It is a maintained, widely used BVH ray tracer that returns, per ray, the hit triangle, the
barycentric coordinates ``(u, v)`` and the ray parameter ``t`` in one vectorised call (~1 M rays/s
per core with the BVH build included). That is exactly what a deferred shader needs: every vertex
attribute is interpolated with the hit's barycentrics. A rasteriser would need OpenGL/EGL (not
available on headless CI) or a hand-written z-buffer; ``trimesh``'s own wrapper only exposes
triangle ids and locations, so we call ``embreex`` directly (same library, no extra dependency).

Conventions
-----------
* Pixel ``(row i, col j)`` has its centre at ``(j + 0.5, i + 0.5)`` in pixel units, matching
  :func:`omnibench.cameras.project`. Sub-pixel samples are given as offsets from the pixel's corner.
* Ray directions are **not** normalised: ``d = R @ (x_n, y_n, 1)`` with ``(x_n, y_n)`` the
  normalised image coordinates. Hence the hit parameter ``t`` *is* the depth along the optical axis
  (camera-space z, metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from embreex import rtcore_scene
from embreex.mesh_construction import TriangleMesh

from omnibench.errors import OmnibenchError


@dataclass
class Hits:
    """Result of casting N rays. ``prim`` is -1 where the ray missed."""

    prim: np.ndarray  # (N,) int64 triangle index, -1 = miss
    bary: np.ndarray  # (N, 3) float64 barycentric weights of the triangle's 3 vertices
    depth: np.ndarray  # (N,) float64 depth along the optical axis (metres), inf on a miss

    @property
    def hit(self) -> np.ndarray:
        return self.prim >= 0


def camera_to_numpy(camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split one 25-value camera into cam2world ``(4, 4)`` and normalised intrinsics ``(3, 3)``."""
    cam = np.asarray(camera, dtype=np.float64).reshape(-1)
    if cam.shape[0] != 25 or not np.all(np.isfinite(cam)):
        raise OmnibenchError(f"a camera must be 25 finite values (EG3D label), got shape {cam.shape}")
    c2w = cam[:16].reshape(4, 4)
    k = cam[16:].reshape(3, 3)
    if abs(np.linalg.det(c2w[:3, :3])) < 1e-6 or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise OmnibenchError("camera has a singular rotation or non-positive focal length")
    return c2w, k


def sample_offsets(supersample: int) -> np.ndarray:
    """Sub-pixel sample positions ``(S*S, 2)`` (x, y) in [0, 1), a regular ``S x S`` grid."""
    if supersample < 1:
        raise OmnibenchError(f"supersample must be >= 1, got {supersample}")
    g = (np.arange(supersample) + 0.5) / supersample
    xx, yy = np.meshgrid(g, g, indexing="xy")
    return np.stack([xx.ravel(), yy.ravel()], axis=-1)


def camera_rays(camera: np.ndarray, resolution: int, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays through every pixel of a ``resolution``-square image at each sub-pixel offset.

    Returns the camera centre ``(3,)`` and directions ``(S, H, W, 3)`` (unnormalised, camera-z = 1).
    """
    c2w, k = camera_to_numpy(camera)
    res = int(resolution)
    px = np.arange(res, dtype=np.float64)
    # pixel coordinates of every sample: (S, H, W)
    sx = (px[None, None, :] + offsets[:, 0, None, None]) / res
    sy = (px[None, :, None] + offsets[:, 1, None, None]) / res
    sx, sy = np.broadcast_arrays(sx, sy)
    xn = (sx - k[0, 2]) / k[0, 0]
    yn = (sy - k[1, 2]) / k[1, 1]
    d_cam = np.stack([xn, yn, np.ones_like(xn)], axis=-1)
    dirs = d_cam @ c2w[:3, :3].T
    return c2w[:3, 3].copy(), dirs


class RayCaster:
    """An Embree scene over one triangle mesh (vertices ``(V, 3)`` metres, faces ``(F, 3)``)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        f = np.ascontiguousarray(faces, dtype=np.int32)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise OmnibenchError(f"expected vertices (V, 3) and faces (F, 3), got {v.shape} and {f.shape}")
        if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
            raise OmnibenchError("face indices out of range of the vertex array")
        if not np.all(np.isfinite(v)):
            raise OmnibenchError("mesh vertices contain NaN or inf")
        self.n_faces = f.shape[0]
        self._scene = rtcore_scene.EmbreeScene()
        if self.n_faces:
            TriangleMesh(self._scene, v, f)

    def cast(self, origin: np.ndarray, directions: np.ndarray) -> Hits:
        """Cast rays from one ``origin (3,)`` along ``directions (N, 3)``; nearest hit per ray."""
        d = np.ascontiguousarray(directions.reshape(-1, 3), dtype=np.float32)
        n = d.shape[0]
        if self.n_faces == 0:
            return Hits(np.full(n, -1, np.int64), np.zeros((n, 3)), np.full(n, np.inf))
        o = np.ascontiguousarray(np.broadcast_to(np.asarray(origin, np.float32), (n, 3)))
        out = self._scene.run(o, d, output=1)
        prim = np.asarray(out["primID"], dtype=np.int64)
        hit = prim >= 0
        u = np.asarray(out["u"], dtype=np.float64)
        v = np.asarray(out["v"], dtype=np.float64)
        bary = np.stack([1.0 - u - v, u, v], axis=-1)
        bary[~hit] = 0.0
        depth = np.where(hit, np.asarray(out["tfar"], dtype=np.float64), np.inf)
        prim[~hit] = -1
        return Hits(prim, bary, depth)
