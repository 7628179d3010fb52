"""``omnibench eval-sdf --ckpt W.pt``: held-out accuracy of W and diagnostic images.

Numbers (metres and as a fraction of the canonical head height, the template's y extent):
mean ``|s|`` on surface points, off-surface sign accuracy and mean absolute error, normal angle error
(degrees, between ``grad s`` and the mesh normal), correspondence error ``||xbar - xbar*||`` and the
Eikonal residual ``mean | ||grad s|| - 1 |``, over held-out parameter sets never used in training; and how much of
the expression's motion W's correspondence follows (:func:`expression_correspondence`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from reference_model.sdf.data import SDFDataSource, conditioning, keyed_rng, sample_surface
from reference_model.sdf.model import SemanticSDF, sdf_and_gradient


def evaluate_sdf(model: SemanticSDF, head, n_meshes: int = 16) -> dict:
    cfg = replace(model.cfg, mobile_fraction=0.0)  # held-out points are area-uniform whatever W trained on
    source = SDFDataSource(head, cfg)
    height = float(np.ptp(source.canonical[:, 1]))
    b = source.heldout_batch(n_meshes)
    s, xbar, g = sdf_and_gradient(model, b.surface, b.params, create_graph=False)
    s_off, _, g_off = sdf_and_gradient(model, b.off, b.params, create_graph=False)
    s, xbar, g, s_off, g_off = (t.detach() for t in (s, xbar, g, s_off, g_off))
    cos = torch.nn.functional.cosine_similarity(g, b.normals, dim=-1).clamp(-1, 1)
    gt = b.off_sdf
    res = {
        "n_meshes": n_meshes,
        "n_surface_points": int(s.numel()),
        "n_off_surface_points": int(s_off.numel()),
        "head_height_m": height,
        "surface_abs_s_m": float(s.abs().mean()),
        "offsurface_sign_accuracy": float(((s_off < 0) == (gt < 0)).float().mean()),
        "offsurface_abs_error_m": float((s_off - gt).abs().mean()),
        "normal_angle_error_deg": float(torch.rad2deg(torch.acos(cos)).mean()),
        "correspondence_error_m": float((xbar - b.canonical).norm(dim=-1).mean()),
        "eikonal_residual": float((torch.cat([g, g_off], 1).norm(dim=-1) - 1).abs().mean()),
    }
    for k in ("surface_abs_s_m", "offsurface_abs_error_m", "correspondence_error_m"):
        res[k.replace("_m", "_frac_height")] = res[k] / height
    res.update(expression_correspondence(model, head, n_meshes, source=source))
    return res


EXPRESSION_MOTION_M = 0.002  # "moved by the expression": the point is > 2 mm from where neutral expression puts it


def expression_correspondence(
    model: SemanticSDF, head, n_meshes: int = 16, n_points: int = 8192, source: SDFDataSource | None = None
) -> dict:
    """Does W's ``xbar`` follow the expression? On the held-out parameter sets, area-uniform surface points whose
    expression moves them more than :data:`EXPRESSION_MOTION_M` (same face and barycentrics on the mesh with the
    expression set to 0): mean correspondence error with the true conditioning, and with the expression columns of
    the conditioning zeroed (what a W that ignored expression scores; equal errors mean xbar ignores expression).

    ``expr_motion_captured = 1 - (err - err_floor) / (err_blind - err_floor)`` with ``err_floor`` the correspondence
    error over all points: 1 when the moving points map as well as the rest, 0 when expression is ignored.
    ``source``: an area-uniform data source for this model's config, to reuse one already built (else built here).
    """
    cfg = replace(model.cfg, mobile_fraction=0.0)
    source = source if source is not None else SDFDataSource(head, cfg)
    p = source.params.sample(np.arange(n_meshes), namespace=1)
    p0 = {**p, "expression": torch.zeros_like(p["expression"])}
    verts, verts0 = source.meshes(p), source.meshes(p0)
    cond = conditioning(p["shape"], p["expression"], p["pose"], cfg)
    cond0 = conditioning(p0["shape"], p0["expression"], p0["pose"], cfg)
    motion, err, err_blind = [], [], []
    for m in range(n_meshes):
        fid, bary, pts = sample_surface(verts[m], source.faces, n_points, keyed_rng(cfg.seed, 1, 11, m))
        tri = source.faces[fid]
        target = np.einsum("nk,nkd->nd", bary, source.canonical[tri])
        motion.append(np.linalg.norm(pts - np.einsum("nk,nkd->nd", bary, verts0[m][tri]), axis=1))
        x = torch.tensor(pts, dtype=torch.float32)[None]
        with torch.no_grad():
            xbar = model.forward_cond(x, cond[m : m + 1])[1][0].double().numpy()
            xbar_blind = model.forward_cond(x, cond0[m : m + 1])[1][0].double().numpy()
        err.append(np.linalg.norm(xbar - target, axis=1))
        err_blind.append(np.linalg.norm(xbar_blind - target, axis=1))
    d, e, e0 = (np.concatenate(a) for a in (motion, err, err_blind))
    moving = d > EXPRESSION_MOTION_M
    floor, e_m, e0_m = float(e.mean()), float(e[moving].mean()), float(e0[moving].mean())
    return {
        "expr_moving_fraction": float(moving.mean()),
        "expr_motion_m": float(d[moving].mean()),
        "expr_correspondence_error_m": e_m,
        "expr_blind_correspondence_error_m": e0_m,
        "expr_motion_captured": float(1.0 - (e_m - floor) / (e0_m - floor)) if e0_m > floor else float("nan"),
    }


def write_images(model: SemanticSDF, head, out_dir: Path) -> list[Path]:
    """An SDF slice (sagittal plane x=0, predicted vs exact zero level set) and a correspondence map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    source = SDFDataSource(head, cfg)
    p = source.params.sample(np.array([3]), namespace=1)
    p["pose"][:, 6] = 0.3  # open jaw to show the deformation
    verts = source.meshes(p)[0]
    cond = conditioning(p["shape"], p["expression"], p["pose"], cfg)
    lo, hi = verts.min(0) - 0.03, verts.max(0) + 0.03
    zz, yy = np.meshgrid(np.linspace(lo[2], hi[2], 160), np.linspace(lo[1], hi[1], 200))
    pts = np.stack([np.zeros_like(zz), yy, zz], -1).reshape(-1, 3)
    with torch.no_grad():
        s_pred, _ = model.forward_cond(torch.tensor(pts, dtype=torch.float32)[None], cond)
    s_pred = s_pred[0].numpy().reshape(zz.shape)
    s_true = source.signed_distance(pts, verts).reshape(zz.shape)
    fig, ax = plt.subplots(1, 2, figsize=(9, 5), constrained_layout=True)
    for a, s, title in ((ax[0], s_pred, "W: predicted s"), (ax[1], s_true, "exact signed distance")):
        im = a.contourf(zz, yy, s, levels=30, cmap="RdBu")
        a.contour(zz, yy, s, levels=[0.0], colors="k", linewidths=1.5)
        a.set_title(f"{title} (x = 0, jaw 0.3 rad)")
        a.set_xlabel("z (m)")
        a.set_ylabel("y (m)")
        a.set_aspect("equal")
        fig.colorbar(im, ax=a, shrink=0.7, label="metres")
    slice_png = out_dir / "sdf_slice.png"
    fig.savefig(slice_png, dpi=90)
    plt.close(fig)

    b = source.batch_for(np.array([3]), [(9, 3)], namespace=1)
    with torch.no_grad():
        _, xbar = model.forward_cond(b.surface, b.params)
    lo_c, hi_c = source.canonical.min(0), source.canonical.max(0)

    def colour(x: np.ndarray) -> np.ndarray:
        return np.clip((x - lo_c) / (hi_c - lo_c), 0, 1)

    pts = b.surface[0].numpy()
    front = pts[:, 2] > np.median(pts[:, 2])
    fig, ax = plt.subplots(1, 2, figsize=(9, 5), constrained_layout=True)
    for a, c, title in ((ax[0], xbar[0].numpy(), "predicted xbar"), (ax[1], b.canonical[0].numpy(), "true xbar*")):
        a.scatter(pts[front, 0], pts[front, 1], c=colour(c[front]), s=4)
        a.set_title(f"correspondence colour map: {title}")
        a.set_aspect("equal")
        a.set_xlabel("x (m)")
    corr_png = out_dir / "sdf_correspondence.png"
    fig.savefig(corr_png, dpi=90)
    plt.close(fig)
    return [slice_png, corr_png]
