"""``render_mesh``: posed head meshes + EG3D cameras -> RGB, depth and coverage mask (CPU, deterministic).

Pipeline per sample: vertex normals of the posed mesh -> hair shell (extra geometry outside the
scalp) -> Embree primary rays (``supersample x supersample`` per pixel for colour and coverage, plus
one ray through the pixel centre for depth) -> barycentric interpolation of per-vertex attributes
(canonical position, normal, region weights) -> procedural albedo -> Lambert + ambient lighting ->
composite over the identity's background. The output depends only on the inputs (no global state,
no threads racing), and each sample is rendered independently, so batching never changes pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from omnibench.errors import OmnibenchError
from omnibench.render import shading
from omnibench.render.appearance import Appearance
from omnibench.render.hair import hair_shell
from omnibench.render.raycast import RayCaster, camera_rays, sample_offsets
from omnibench.render.regions import HeadRegions, vertex_normals

RENDERER_VERSION = "1"


@dataclass
class RenderOutput:
    """``image (B, 3, H, W)`` float32 in [0, 1]; ``depth (B, H, W)`` float32 metres along the optical
    axis at the pixel centre (``inf`` where the centre ray misses or ``mask`` is 0); ``mask (B, H, W)`` float32 coverage
    fraction of the pixel's sub-samples (anti-aliased silhouette, hair included)."""

    image: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor


def _to_numpy(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise OmnibenchError(f"{name} must be a numeric array: {exc}") from exc


def render_mesh(
    vertices: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    camera: torch.Tensor | np.ndarray,
    resolution: int = 64,
    appearance: Appearance | Sequence[Appearance] | None = None,
    *,
    regions: HeadRegions | None = None,
    supersample: int = 2,
    hair: bool = True,
) -> RenderOutput:
    """Render ``vertices (B, V, 3)`` (metres, head frame) with ``faces (F, 3)`` for ``camera (B, 25)``.

    ``appearance``: one :class:`Appearance` for all samples, one per sample, or None (the mean look).
    ``regions``: where lips/eyes/scalp are (:meth:`HeadRegions.from_model`); None derives geometric
    rules from the first sample's vertices (any triangle mesh works). ``hair=False`` omits the shell.
    """
    v = _to_numpy(vertices, "vertices")
    if v.ndim == 2:
        v = v[None]
    cam = _to_numpy(camera, "camera")
    if cam.ndim == 1:
        cam = cam[None]
    f = np.asarray(faces.detach().cpu().numpy() if isinstance(faces, torch.Tensor) else faces).astype(np.int64)
    if v.ndim != 3 or v.shape[-1] != 3:
        raise OmnibenchError(f"vertices must be (B, V, 3), got {tuple(v.shape)}")
    if cam.shape != (v.shape[0], 25):
        raise OmnibenchError(f"camera must be (B, 25) with B = {v.shape[0]}, got {tuple(cam.shape)}")
    if not isinstance(resolution, (int, np.integer)) or not 4 <= int(resolution) <= 4096:
        raise OmnibenchError(f"resolution must be an integer in [4, 4096], got {resolution!r}")
    if regions is None:
        regions = HeadRegions.from_mesh(v[0], f)
    elif regions.template.shape[0] != v.shape[1] or not np.array_equal(regions.faces, f):
        raise OmnibenchError("regions were built for a different mesh (vertex count or faces differ)")
    apps = _appearances(appearance, v.shape[0])
    outs = [_render_one(v[b], f, cam[b], int(resolution), apps[b], regions, supersample, hair) for b in range(v.shape[0])]
    image, depth, mask = (torch.from_numpy(np.stack(x)) for x in zip(*outs))
    return RenderOutput(image=image, depth=depth, mask=mask)


def _appearances(appearance: Appearance | Sequence[Appearance] | None, batch: int) -> list[Appearance]:
    if appearance is None:
        return [Appearance.mean()] * batch
    if isinstance(appearance, Appearance):
        return [appearance] * batch
    apps = list(appearance)
    if len(apps) != batch or not all(isinstance(a, Appearance) for a in apps):
        raise OmnibenchError(f"appearance must be one Appearance or a sequence of {batch}, got {len(apps)} items")
    return apps


def _render_one(verts: np.ndarray, faces: np.ndarray, camera: np.ndarray, res: int, app: Appearance,
                regions: HeadRegions, supersample: int, hair: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not np.all(np.isfinite(verts)):
        raise OmnibenchError("vertices contain NaN or inf")
    n_v = verts.shape[0]
    normals = vertex_normals(verts, faces, regions.incidence)
    material = np.where(regions.skin_faces, shading.SKIN, regions.eyeball[faces[:, 0]]).astype(np.int64)
    all_v, all_f, src = verts, faces, np.arange(n_v)
    if hair:
        sv, sf, source = hair_shell(regions, app, verts, normals)
        if sf.shape[0]:
            all_v = np.concatenate([verts, sv])
            all_f = np.concatenate([faces, sf + n_v])
            src = np.concatenate([src, source])
            material = np.concatenate([material, np.full(sf.shape[0], shading.HAIR)])
    caster = RayCaster(all_v, all_f)
    offsets = np.concatenate([sample_offsets(supersample), [[0.5, 0.5]]])
    origin, dirs = camera_rays(camera, res, offsets)
    hits = caster.cast(origin, dirs)
    n_s = offsets.shape[0] - 1
    per = res * res
    depth = hits.depth[n_s * per:].reshape(res, res).astype(np.float32)

    colour = np.empty((n_s * per, 3))
    rows = np.tile(np.repeat(np.arange(res), res), n_s)
    bg = app.background[None] * (1 + app.bg_gradient * ((rows + 0.5) / res - 0.5))[:, None]
    hit = hits.hit[: n_s * per]
    colour[~hit] = bg[~hit]
    idx = np.flatnonzero(hit)
    if idx.size:
        prim = hits.prim[idx]
        corners = src[all_f[prim]]  # (N, 3) source vertex of each corner (shell -> scalp vertex)
        bary = hits.bary[idx]
        canon = np.einsum("nk,nkd->nd", bary, regions.template[corners])
        nrm = np.einsum("nk,nkd->nd", bary, normals[corners])
        tri = all_v[all_f[prim]]
        geo_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        ray_d = dirs.reshape(-1, 3)[idx]
        back = np.einsum("nd,nd->n", geo_n, ray_d) > 0
        nrm[back] *= -1
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)
        weights = {k: np.einsum("nk,nk->n", bary, w[corners]) for k, w in regions.weights.items()}
        mat = material[prim]
        albedo = np.empty((idx.size, 3))
        sel = (mat == shading.SKIN) | (mat == shading.HAIR)
        skin = shading.skin_albedo(regions, app, canon[sel], {k: w[sel] for k, w in weights.items()})
        albedo[sel] = skin
        is_hair = mat[sel] == shading.HAIR
        if is_hair.any():
            hair_idx = np.flatnonzero(sel)[is_hair]
            albedo[hair_idx] = shading.hair_albedo(regions, app, canon[hair_idx], skin[is_hair])
        for side in (shading.LEFT_EYE, shading.RIGHT_EYE):
            e = mat == side
            if e.any():
                albedo[e] = shading.eye_albedo(regions, app, canon[e], np.full(int(e.sum()), side))
        inside = back & (mat == shading.SKIN)
        albedo[inside] = shading.MOUTH_INTERIOR * app.skin
        inside_hair = back & (mat == shading.HAIR)
        albedo[inside_hair] *= 0.55
        ks = np.select([mat == shading.HAIR, mat == shading.SKIN], [0.10, 0.035], 0.5) * ~back
        power = np.select([mat == shading.HAIR, mat == shading.SKIN], [10.0, 6.0], 150.0)
        view = -ray_d / np.linalg.norm(ray_d, axis=1, keepdims=True)
        colour[idx] = albedo * shading.lambert(app, nrm) + shading.specular(app, nrm, view, ks, power)
    colour = colour.reshape(n_s, res, res, 3)
    image = np.clip(colour.mean(axis=0), 0, 1).transpose(2, 0, 1).astype(np.float32)
    mask = hit.reshape(n_s, res, res).mean(axis=0).astype(np.float32)
    depth[mask == 0] = np.inf  # contract: no depth where nothing was covered
    return image, depth, mask
