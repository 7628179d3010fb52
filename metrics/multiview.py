"""Multi-view consistency (``mv-reproj``) and geometry accuracy (``geometry``) on the ``views`` set.

``mv-reproj`` (generators that return depth; variants ``photo`` and ``depth``): every pixel of view A with
valid depth is unprojected with A's camera, projected into view B and compared there (bilinear lookup):

* ``photo``: mean absolute RGB difference, images in [0, 1] (channel mean);
* ``depth``: mean ``|z_AB - depth_B|`` in metres, ``z_AB`` the point's depth in B's camera.

Only points that land inside B's image and mask (all four bilinear neighbours valid) and are not occluded
in B (``z_AB <= depth_B + occlusion_tol``) count. Points in *front* of B's surface are kept, so wrong depth
shows up in one direction or the other of each ordered pair (A->B and B->A are both used). Per ordered pair
the mean over its points; per group the mean over its pairs; the value is the mean over groups (bootstrap
over groups). ``details["coverage"]`` is the fraction of A's points that were compared.

``mv-reproj@flame`` (any generator; meant for those without depth): the spread of re-estimated shape and
expression across the views of one latent. A FLAME estimator (the context's, as for AED/ASD/APD:
:func:`metrics.estimators.choice.estimator_spec`, ``--option estimator=NAME``, default ``regressor`` when
weights for the head model exist, else ``landmark-fit``) runs on every view, on the CPU; each view's estimate becomes a mesh (neutral
pose) and the spread is the mean vertex distance to the group's mean mesh, in metres. Undetected views are
failures; groups need two detected views.

``geometry`` (variants ``mean``, ``median``, ``rmse``): distance from the generator's surface (its depth unprojected to
world points) to the head model's mesh for the requested controls, in metres, in the face region: pixels
whose camera ray hits the mesh first on a face-region triangle (``model.masks["face"]``, all three
vertices; the whole mesh when the model has no such mask). Per image the mean (or median, or RMS)
point-to-mesh distance (libigl); the value is the mean over images. Surfaces the head model lacks (hair
falling over the forehead or cheeks) are counted: they set the oracle's floor of ``mean`` (~2e-4 m at
64 px with the synthetic head's hair), while ``median`` stays at ~1e-7 m. ``details["coverage"]`` is the fraction of
face-region pixels where the generator had depth; images without any such pixel are failures.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from metrics.estimators.choice import estimator_spec
from metrics.intervals import ci95
from omnibench.cameras import split_camera
from omnibench.errors import OmnibenchError
from omnibench.metric_api import Metric, MetricContext, MetricResult

OCCLUSION_TOL = 0.01  # metres: a point this much behind B's surface is taken as occluded in B
MASK_THRESHOLD = 0.5


# ---------------------------------------------------------------- camera geometry (EG3D labels)
def pixel_rays(camera: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel rays for ``camera (B, 25)``: origins ``(B, 3)`` and world directions ``(B, H, W, 3)``
    scaled so that ``origin + depth * dir`` is the point at optical-axis depth ``depth``."""
    c2w, k = split_camera(camera.double())
    v, u = torch.meshgrid(
        (torch.arange(height, dtype=torch.float64) + 0.5) / height,
        (torch.arange(width, dtype=torch.float64) + 0.5) / width,
        indexing="ij",
    )
    x = (u[None] - k[:, None, None, 0, 2]) / k[:, None, None, 0, 0]
    y = (v[None] - k[:, None, None, 1, 2]) / k[:, None, None, 1, 1]
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # (B, H, W, 3), z = 1
    d_world = torch.einsum("bij,bhwj->bhwi", c2w[:, :3, :3], d_cam)
    return c2w[:, :3, 3], d_world


def unproject(depth: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """World points ``(B, H, W, 3)`` (float64) of optical-axis ``depth (B, H, W)`` seen by ``camera``."""
    o, d = pixel_rays(camera, depth.shape[1], depth.shape[2])
    return o[:, None, None, :] + depth.double()[..., None] * d


def to_pixels(
    points: torch.Tensor, camera: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """World ``points (B, N, 3)`` -> pixel coordinates ``(B, N, 2)`` (x right, y down, centres at +0.5)
    and optical-axis depth ``(B, N)`` in ``camera``."""
    c2w, k = split_camera(camera.double())
    w2c = torch.linalg.inv(c2w)
    p = points.double() @ w2c[:, :3, :3].transpose(1, 2) + w2c[:, None, :3, 3]
    z = p[..., 2]
    zs = torch.where(z.abs() > 1e-9, z, torch.full_like(z, 1e-9))
    px = (p[..., 0] / zs * k[:, None, 0, 0] + k[:, None, 0, 2]) * width
    py = (p[..., 1] / zs * k[:, None, 1, 1] + k[:, None, 1, 2]) * height
    return torch.stack([px, py], dim=-1), z


def _sample(img: torch.Tensor, pix: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear lookup of ``img (B, C, H, W)`` at pixel coordinates ``pix (B, N, 2)`` -> ``(B, C, N)``."""
    grid = torch.stack([pix[..., 0] / width * 2 - 1, pix[..., 1] / height * 2 - 1], dim=-1)[:, None]
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)[
        :, :, 0
    ]


def valid_depth(depth: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Bool ``(B, H, W)``: finite positive depth (and mask > 0.5 when a mask is given)."""
    ok = torch.isfinite(depth) & (depth > 0)
    if mask is not None:
        ok &= mask.to(depth.device) > MASK_THRESHOLD
    return ok


def reproject_pairs(
    img_a: torch.Tensor,
    depth_a: torch.Tensor,
    valid_a: torch.Tensor,
    cam_a: torch.Tensor,
    img_b: torch.Tensor,
    depth_b: torch.Tensor,
    valid_b: torch.Tensor,
    cam_b: torch.Tensor,
    occlusion_tol: float = OCCLUSION_TOL,
) -> dict[str, np.ndarray]:
    """Reproject views A into views B, pairwise over the batch (images float [0, 1] ``(P, 3, H, W)``).

    Returns per pair: ``photo`` and ``depth`` (means over compared points, NaN where none),
    ``count`` (compared points) and ``n_valid`` (A's points with depth).
    """
    p, _, h, w = img_a.shape
    pts = unproject(
        torch.where(valid_a, depth_a.double(), torch.zeros_like(depth_a, dtype=torch.float64)), cam_a
    )
    pix, z = to_pixels(pts.reshape(p, -1, 3), cam_b, h, w)
    db = torch.where(valid_b, depth_b.double(), torch.zeros_like(depth_b, dtype=torch.float64))
    vb = _sample(valid_b[:, None].double(), pix, h, w)[:, 0]
    dB = _sample(db[:, None], pix, h, w)[:, 0]
    cB = _sample(img_b.double(), pix, h, w)
    inside = (pix[..., 0] >= 0.5) & (pix[..., 0] <= w - 0.5) & (pix[..., 1] >= 0.5) & (pix[..., 1] <= h - 0.5)
    use = valid_a.reshape(p, -1) & inside & (vb >= 1 - 1e-6) & (z > 0) & (z <= dB + occlusion_tol)
    cA = img_a.double().reshape(p, 3, -1)
    photo = (cA - cB).abs().mean(1)
    dz = (z - dB).abs()
    cnt = use.sum(1)
    denom = cnt.clamp(min=1).double()
    photo_m = torch.where(cnt > 0, (photo * use).sum(1) / denom, torch.full_like(denom, float("nan")))
    depth_m = torch.where(cnt > 0, (dz * use).sum(1) / denom, torch.full_like(denom, float("nan")))
    return {
        "photo": photo_m.numpy(),
        "depth": depth_m.numpy(),
        "count": cnt.numpy(),
        "n_valid": valid_a.reshape(p, -1).sum(1).numpy(),
    }


# ---------------------------------------------------------------- helpers
def _ids(x: Any, n: int, name: str) -> np.ndarray:
    if x is None:
        raise OmnibenchError(f"multi-view metrics need per-sample '{name}' ids in the sample set")
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.shape != (n,):
        raise OmnibenchError(f"sample '{name}' ids must have shape ({n},), got {arr.shape}")
    return arr


def _groups(group: np.ndarray, member: np.ndarray) -> list[np.ndarray]:
    out = []
    for g in np.unique(group):
        idx = np.flatnonzero(group == g)
        out.append(idx[np.argsort(member[idx], kind="stable")])
    return out


def _to_float_images(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float().clamp(0, 1)



# ---------------------------------------------------------------- mv-reproj
def _all_pairs(images, depth, valid, cams, group, member) -> list[dict[str, np.ndarray]]:
    """:func:`reproject_pairs` over every ordered pair of every group (groups of >= 2 views)."""
    out = []
    for idx in _groups(group, member):
        if len(idx) < 2:
            continue
        a = [i for i in idx for j in idx if i != j]
        b = [j for i in idx for j in idx if i != j]
        out.append(
            reproject_pairs(images[a], depth[a], valid[a], cams[a], images[b], depth[b], valid[b], cams[b])
        )
    return out


class MvReproj(Metric):
    """Reprojection disagreement between views of one latent (see module docstring)."""

    name = "mv-reproj"
    version = 1
    higher_is_better = False
    requires = ("views",)
    controls = ("camera",)
    variants = {
        "photo": "mean |RGB_A - RGB_B| (images in [0,1]) of A's pixels reprojected into B with A's depth",
        "depth": "mean |z_AB - depth_B| in metres of A's pixels reprojected into B",
        "flame": "spread (metres, mean vertex distance to the group mean mesh) of FLAME shape+expression "
        "re-estimated from each view; for generators without depth",
    }
    default_variant = "photo"

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        if variant == "flame":
            return self._flame(ctx)
        s = ctx.samples("views")
        n = int(s.images.shape[0])
        group = _ids(s.group, n, "group")
        member = _ids(s.member, n, "member")
        unit = "m" if variant == "depth" else "rgb[0,1]"
        depth = s.depth
        if depth is None:
            return MetricResult(
                value=None,
                n=0,
                failures=n,
                unit=unit,
                details={"reason": "the generator returns no depth; use mv-reproj@flame", "n_images": n},
            )
        images = _to_float_images(s.images)
        depth = depth.float()
        if depth.shape != (n, images.shape[2], images.shape[3]):
            raise OmnibenchError(f"depth must be (N, H, W) matching the images; got {tuple(depth.shape)}")
        valid = valid_depth(depth, s.mask)
        cams = s.controls.camera
        pairs = ctx.memo(("mv-reproj-pairs", n), lambda: _all_pairs(images, depth, valid, cams, group, member))
        group_vals, pair_failures, coverage = [], 0, []
        for r in pairs:
            vals = r[variant]
            ok = r["count"] > 0
            pair_failures += int((~ok).sum())
            coverage.extend((r["count"][ok] / np.maximum(r["n_valid"][ok], 1)).tolist())
            if ok.any():
                group_vals.append(float(np.mean(vals[ok])))
        gv = np.asarray(group_vals)
        empty = int((~valid.reshape(n, -1).any(1)).sum())
        return MetricResult(
            value=float(gv.mean()) if gv.size else None,
            n=int(gv.size),
            ci95=ci95(ctx, gv),
            failures=empty,
            unit=unit,
            details={
                "n_images": n,
                "failed_pairs": pair_failures,
                "empty_depth_images": empty,
                "coverage": float(np.mean(coverage)) if coverage else None,
                "occlusion_tol_m": OCCLUSION_TOL,
            },
        )

    def _flame(self, ctx: MetricContext) -> MetricResult:
        s = ctx.samples("views")
        n = int(s.images.shape[0])
        group = _ids(s.group, n, "group")
        member = _ids(s.member, n, "member")
        from metrics.estimators import load_estimator

        model = ctx.head_model()
        spec, est_opts = estimator_spec(ctx)
        try:
            estimator = load_estimator(spec, model, device="cpu", **est_opts)
        except OmnibenchError as exc:
            return MetricResult(
                value=None,
                n=0,
                failures=n,
                unit="m",
                details={"reason": f"estimator '{spec}' unavailable: {exc}"},
            )
        bs = ctx.batch_size
        parts = [estimator.estimate(s.images[i : i + bs]) for i in range(0, n, bs)]
        shape = torch.cat([p.shape for p in parts]).float()
        expr = torch.cat([p.expression for p in parts]).float()
        det = torch.cat([p.detected for p in parts]).bool().numpy()
        with torch.no_grad():
            verts = model(shape=shape, expression=expr, pose=torch.zeros(n, 15)).vertices.double()
        group_vals, coef_std = [], []
        for idx in _groups(group, member):
            idx = idx[det[idx]]
            if len(idx) < 2:
                continue
            v = verts[idx]
            group_vals.append(float((v - v.mean(0, keepdim=True)).norm(dim=-1).mean()))
            coef_std.append(float(torch.cat([shape[idx], expr[idx]], 1).std(0, unbiased=False).mean()))
        gv = np.asarray(group_vals)
        describe = getattr(estimator, "describe", lambda: {"name": spec})()
        return MetricResult(
            value=float(gv.mean()) if gv.size else None,
            n=int(gv.size),
            ci95=ci95(ctx, gv),
            failures=int((~det).sum()),
            unit="m",
            details={
                "n_images": n,
                "estimator": describe.get("name"),
                "coef_std": float(np.mean(coef_std)) if coef_std else None,
            },
            backbones={"estimator": {"name": describe.get("name"), "sha256": describe.get("sha256")}},
        )


# ---------------------------------------------------------------- geometry
def face_region_faces(model: Any) -> np.ndarray:
    """Bool ``(F,)``: triangles whose three vertices are in ``model.masks["face"]`` (all when absent)."""
    faces = np.asarray(model.faces.detach().cpu() if isinstance(model.faces, torch.Tensor) else model.faces)
    masks = getattr(model, "masks", None) or {}
    if "face" not in masks:
        return np.ones(len(faces), dtype=bool)
    sel = np.zeros(int(faces.max()) + 1, dtype=bool)
    m = masks["face"]
    sel[np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m, dtype=np.int64)] = True
    return sel[faces].all(1)


def surface_to_mesh(
    depth: torch.Tensor,
    valid: torch.Tensor,
    camera: torch.Tensor,
    vertices: np.ndarray,
    faces: np.ndarray,
    region: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Point-to-mesh distances (metres) of one image's face-region surface points, and the number of
    face-region pixels (rays hitting a region triangle first). ``depth``/``valid`` ``(H, W)``, ``camera (25,)``."""
    import igl
    import trimesh

    h, w = depth.shape
    o, d = pixel_rays(camera[None], h, w)
    dirs = d[0].reshape(-1, 3).numpy()
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    origins = np.broadcast_to(o[0].numpy(), dirs.shape)
    tri = mesh.ray.intersects_first(origins, dirs / np.linalg.norm(dirs, axis=1, keepdims=True))
    in_region = np.zeros(tri.shape, dtype=bool)
    hit = tri >= 0
    in_region[hit] = region[tri[hit]]
    use = in_region & valid.reshape(-1).numpy()
    if not use.any():
        return np.zeros(0), int(in_region.sum())
    pts = origins[use] + depth.double().reshape(-1).numpy()[use, None] * dirs[use]
    sq, _, _ = igl.point_mesh_squared_distance(pts, vertices.astype(np.float64), faces.astype(np.int64))
    return np.sqrt(np.maximum(sq, 0)), int(in_region.sum())


class Geometry(Metric):
    """Generator surface (from depth) to head-model mesh distance in the face region (metres)."""

    name = "geometry"
    version = 1
    higher_is_better = False
    requires = ("views",)
    controls = ("camera", "shape", "expression")  # the surface is compared with the mesh of the given controls
    unit = "m"
    variants = {
        "mean": "mean point-to-mesh distance (m) of the face-region surface points, averaged over images",
        "median": "median point-to-mesh distance (m) per image, averaged over images (robust to occluders such as hair)",
        "rmse": "root mean square point-to-mesh distance (m) per image, averaged over images",
    }
    default_variant = "mean"

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        s = ctx.samples("views")
        n = int(s.images.shape[0])
        depth = s.depth
        if depth is None:
            return MetricResult(
                value=None,
                n=0,
                failures=n,
                unit="m",
                details={"reason": "the generator returns no depth", "n_images": n},
            )
        model = ctx.head_model()
        c = s.controls
        with torch.no_grad():
            verts = model(
                shape=c.shape.float(), expression=c.expression.float(), pose=c.pose.float()
            ).vertices
        verts = verts.detach().cpu().double().numpy()
        faces = np.asarray(
            model.faces.detach().cpu() if isinstance(model.faces, torch.Tensor) else model.faces
        )
        region = face_region_faces(model)
        valid = valid_depth(depth.float(), s.mask)
        per_image, covered, region_px, failures = [], 0, 0, 0
        for i in range(n):
            dist, n_region = surface_to_mesh(depth[i].float(), valid[i], c.camera[i], verts[i], faces, region)
            region_px += n_region
            covered += dist.size
            if dist.size == 0:
                failures += 1
                continue
            if variant == "rmse":
                per_image.append(float(np.sqrt(np.mean(dist**2))))
            elif variant == "median":
                per_image.append(float(np.median(dist)))
            else:
                per_image.append(float(dist.mean()))
        v = np.asarray(per_image)
        return MetricResult(
            value=float(v.mean()) if v.size else None,
            n=int(v.size),
            ci95=ci95(ctx, v),
            failures=failures,
            unit="m",
            details={
                "n_images": n,
                "coverage": covered / region_px if region_px else None,
                "face_mask": "face" in (getattr(model, "masks", None) or {}),
                "head_model": getattr(model, "name", None),
                "median_image_value_m": float(np.median(v)) if v.size else None,
            },
        )
