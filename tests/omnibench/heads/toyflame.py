"""Helpers for the head-model tests: a tiny hand-built FLAME-layout head written in every file format, and an
independent numpy/scipy reference implementation of the FLAME forward pass (flame.md §2.1, §2.3).

The toy head (~300 vertices) is deliberately *not* the synthetic generator: these tests pin the loader and
LBS against an independent construction. Regions: "mouth" = front-lower head vertices (skinned by the jaw,
only place expressions act), "scalp" = top vertices (neck-skinned, no expression).
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

V_SHAPE, V_EXPR = 300, 100


def _uv_sphere(center, radii, n_lat, n_az):
    """Closed UV sphere: poles + n_lat rings; faces wound outward."""
    cx, cy, cz = center
    verts = [(cx, cy + radii[1], cz)]
    for i in range(1, n_lat + 1):
        polar = np.pi * i / (n_lat + 1)
        for j in range(n_az):
            az = 2 * np.pi * j / n_az
            verts.append((cx + radii[0] * np.sin(polar) * np.sin(az), cy + radii[1] * np.cos(polar),
                          cz + radii[2] * np.sin(polar) * np.cos(az)))
    verts.append((cx, cy - radii[1], cz))
    faces = []
    ring = lambda i, j: 1 + i * n_az + (j % n_az)  # noqa: E731
    for j in range(n_az):
        faces.append((0, ring(0, j + 1), ring(0, j)))
    for i in range(n_lat - 1):
        for j in range(n_az):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j + 1), ring(i + 1, j)
            faces += [(a, c, b), (a, d, c)]
    last = len(verts) - 1
    for j in range(n_az):
        faces.append((last, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)))
    return np.array(verts), np.array(faces)


def _smooth_fields(rng, pts, n_cols, scale):
    """Random smooth vector fields (V, 3, n): low-order polynomials of the position."""
    feats = np.concatenate([np.ones((len(pts), 1)), pts / 0.1, (pts / 0.1) ** 2], axis=1)  # (V, 7)
    coef = rng.normal(size=(feats.shape[1], 3, n_cols))
    return np.einsum("vf,fcn->vcn", feats, coef) * scale


def build_toy_flame(seed: int = 0, n_columns: int = 400) -> dict:
    """Return (model dict in FLAME's pickle layout, side dict with embeddings/eyelids/masks)."""
    rng = np.random.default_rng(seed)
    head_v, head_f = _uv_sphere((0.0, 0.0, 0.0), (0.08, 0.11, 0.095), 12, 20)
    eye_l, eye_lf = _uv_sphere((0.031, 0.028, 0.07), (0.0125,) * 3, 3, 6)
    eye_r, eye_rf = _uv_sphere((-0.031, 0.028, 0.07), (0.0125,) * 3, 3, 6)
    n_h, n_e = len(head_v), len(eye_l)
    v = np.concatenate([head_v, eye_l, eye_r])
    f = np.concatenate([head_f, eye_lf + n_h, eye_rf + n_h + n_e]).astype(np.uint32)
    n_v = len(v)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    is_head = np.arange(n_v) < n_h
    sm = lambda a, b, t: np.clip((t - a) / (b - a), 0, 1) ** 2 * (3 - 2 * np.clip((t - a) / (b - a), 0, 1))  # noqa: E731
    mouth = is_head * sm(0.0, 0.04, z) * (1 - sm(-0.04, -0.01, y))  # front-lower
    # skinning: root at the bottom, jaw on the mouth region, neck elsewhere; eyes one-hot
    w = np.zeros((n_v, 5))
    s_n = sm(-0.1, -0.07, y)
    w[:, 0] = (1 - s_n) * is_head
    w[:, 2] = s_n * mouth
    w[:, 1] = s_n * (1 - mouth) * is_head
    w[n_h:n_h + n_e, 3] = 1
    w[n_h + n_e:, 4] = 1
    # joints: rows average vertex sets
    jreg = np.zeros((5, n_v))
    for row, sel in enumerate([is_head & (y < -0.09), is_head & (np.abs(y + 0.05) < 0.02),
                               is_head & (np.abs(y + 0.01) < 0.02) & (z < 0), ~is_head & (x > 0), ~is_head & (x < 0)]):
        jreg[row, sel] = 1.0 / sel.sum()
    shapedirs = np.zeros((n_v, 3, n_columns))
    n_s = min(V_SHAPE, n_columns)
    shapedirs[:n_h, :, :n_s] = _smooth_fields(rng, v[:n_h], n_s, 1e-3)
    for blk in (slice(n_h, n_h + n_e), slice(n_h + n_e, n_v)):  # eyeballs rigid under shape
        shapedirs[blk, :, :n_s] = shapedirs[:n_h, :, :n_s].mean(axis=0)
    if n_columns > V_SHAPE:
        shapedirs[:, :, V_SHAPE:] = _smooth_fields(rng, v, n_columns - V_SHAPE, 2e-3) * mouth[:, None, None]
    posedirs = _smooth_fields(rng, v, 36, 5e-4)
    for j in range(1, 5):
        posedirs[:, :, 9 * (j - 1):9 * j] *= (w[:, j] > 0)[:, None, None] if j < 3 else (is_head * sm(0.0, 0.05, y) * (np.sign(x) == (1 if j == 3 else -1)))[:, None, None]
    posedirs[~is_head] = 0
    model = {
        "f": f,
        "J_regressor": scipy.sparse.csc_matrix(jreg),
        "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        "J": jreg @ v,
        "weights": w,
        "posedirs": posedirs,
        "v_template": v,
        "shapedirs": shapedirs,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    head_faces = np.arange(len(head_f))
    front = head_faces[v[f[: len(head_f)].astype(np.int64)].mean(axis=1)[:, 2] > 0.02]

    def bary(shape):
        b = rng.uniform(0.05, 1.0, size=(*shape, 3))
        return b / b.sum(-1, keepdims=True)

    static_idx = rng.choice(front, size=51).astype(np.uint32)
    static_b = bary((51,))
    dyn_idx = rng.choice(front, size=(79, 17)).astype(np.uint32)
    dyn_b = bary((79, 17))
    full_idx = np.concatenate([rng.choice(front, size=17), static_idx]).astype(np.int64)
    full_b = np.concatenate([bary((17,)), static_b])
    lid = np.zeros((2, n_v, 3))
    for k_, sgn in enumerate((1, -1)):
        sel = is_head & (np.sign(x) == sgn) & (np.abs(y - 0.035) < 0.02) & (z > 0.03)
        lid[k_, sel, 1] = -0.008
    side = {
        "static": (static_idx, static_b), "dynamic": (dyn_idx, dyn_b), "full": (full_idx, full_b),
        "eyelids": lid,
        "masks": {"face": np.nonzero(is_head & (z > 0.02))[0].astype(np.int64),
                  "scalp": np.nonzero(is_head & (y > 0.06))[0].astype(np.int64),
                  "lips": np.nonzero(mouth > 0.5)[0].astype(np.int64),
                  "left_eyeball": np.arange(n_h, n_h + n_e, dtype=np.int64)},
        "mouth_weight": mouth,
    }
    return model, side


class _FakeCh:
    """Pickles as ``chumpy.ch.Ch`` with chumpy's state layout (flame.md §5.14)."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_make_dense": False, "_make_sparse": False}


def dump_chumpy_pickle(obj: dict, path: Path, keys=("shapedirs",)) -> None:
    """Write ``obj`` with ``keys`` wrapped as chumpy objects; fake modules exist only during the dump."""
    mod_ch, mod = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy")
    _FakeCh.__module__, _FakeCh.__qualname__ = "chumpy.ch", "Ch"
    mod_ch.Ch = _FakeCh
    mod.ch = mod_ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = mod, mod_ch
    try:
        data = {k: (_FakeCh(v) if k in keys else v) for k, v in obj.items()}
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def write_toy_dir(root: Path, seed: int = 0, n_columns: int = 400) -> Path:
    """Write the toy head in all layouts under ``root`` and return ``root``."""
    model, side = build_toy_flame(seed, n_columns)
    root.mkdir(parents=True, exist_ok=True)
    (root / "flame").mkdir(exist_ok=True)
    with open(root / "generic_model.pkl", "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    dump_chumpy_pickle(model, root / "generic_model_chumpy.pkl")
    npz = {k: (val.toarray() if k == "J_regressor" else np.asarray(val)) for k, val in model.items()}
    np.savez(root / "flame" / "FLAME_NEUTRAL.npz", **npz)
    s_idx, s_b = side["static"]
    d_idx, d_b = side["dynamic"]
    f_idx, f_b = side["full"]
    for d in (root, root / "flame"):
        with open(d / "flame_static_embedding.pkl", "wb") as fh:
            pickle.dump({"lmk_face_idx": s_idx, "lmk_b_coords": s_b}, fh, protocol=2)
        np.save(d / "flame_dynamic_embedding.npy",
                np.array({"lmk_face_idx": list(d_idx), "lmk_b_coords": list(d_b)}, dtype=object), allow_pickle=True)
    with open(root / "flame_static_embedding_68.pkl", "wb") as fh:
        pickle.dump({"lmk_face_idx": f_idx.astype(np.uint32), "lmk_b_coords": f_b}, fh, protocol=2)
    deca = {
        "static_lmk_faces_idx": s_idx.astype(np.int64), "static_lmk_bary_coords": s_b,
        "dynamic_lmk_faces_idx": torch.from_numpy(d_idx.astype(np.int64)),
        "dynamic_lmk_bary_coords": torch.from_numpy(d_b.astype(np.float32)),
        "full_lmk_faces_idx": f_idx[None], "full_lmk_bary_coords": f_b[None].astype(np.float32),
    }
    np.save(root / "landmark_embedding.npy", np.array(deca, dtype=object), allow_pickle=True)
    np.save(root / "l_eyelid.npy", side["eyelids"][0])
    np.save(root / "r_eyelid.npy", side["eyelids"][1])
    with open(root / "FLAME_masks.pkl", "wb") as fh:
        pickle.dump(side["masks"], fh, protocol=2)
    np.save(root / "mouth_weight.npy", side["mouth_weight"])
    return root


# ------------------------------------------------------------------------------ independent reference LBS


def reference_forward(model: dict, shape=None, expression=None, pose=None, translation=None, eyelids=None,
                      lids=None, static=None, dynamic=None, yaw_sign=1, neck_in_chain=True):
    """Straightforward float64 numpy FLAME forward, one sample at a time (flame.md §2.1/§2.3).

    Returns dict of vertices (B, V, 3), joints (B, 5, 3), landmarks (B, 68, 3) when embeddings are given.
    """
    v_t = np.asarray(model["v_template"], np.float64)
    sd = np.asarray(model["shapedirs"], np.float64)
    pd = np.asarray(model["posedirs"], np.float64)
    jr = model["J_regressor"]
    jr = jr.toarray() if hasattr(jr, "toarray") else np.asarray(jr)
    w = np.asarray(model["weights"], np.float64)
    faces = np.asarray(model["f"]).astype(np.int64)
    parents = [-1, 0, 1, 1, 1]
    batch = max(len(a) for a in (shape, expression, pose, translation, eyelids) if a is not None)
    outs = {"vertices": [], "joints": [], "landmarks": []}
    for b in range(batch):
        beta = np.zeros(300)
        psi = np.zeros(100)
        if shape is not None:
            beta[: shape.shape[1]] = shape[b]
        if expression is not None:
            psi[: expression.shape[1]] = expression[b]
        theta = pose[b].reshape(5, 3) if pose is not None else np.zeros((5, 3))
        v_s = v_t + sd[:, :, :300] @ beta + sd[:, :, 300:400] @ psi
        joints = jr @ v_s
        rots = Rotation.from_rotvec(theta).as_matrix()
        feat = np.concatenate([(rots[j] - np.eye(3)).ravel() for j in range(1, 5)])
        v_p = v_s + (pd.reshape(-1, 36) @ feat).reshape(-1, 3)
        g = []
        for j in range(5):
            local = np.eye(4)
            local[:3, :3] = rots[j]
            local[:3, 3] = joints[j] - (joints[parents[j]] if parents[j] >= 0 else 0)
            g.append(local if parents[j] < 0 else g[parents[j]] @ local)
        posed_j = np.array([gj[:3, 3] for gj in g])
        a = []
        for j in range(5):
            aj = g[j].copy()
            aj[:3, 3] -= g[j][:3, :3] @ joints[j]
            a.append(aj)
        a = np.array(a)
        t_v = np.einsum("vj,jab->vab", w, a)
        verts = np.einsum("vab,vb->va", t_v, np.concatenate([v_p, np.ones((len(v_p), 1))], 1))[:, :3]
        if eyelids is not None:
            verts = verts + eyelids[b, 0] * lids[0] + eyelids[b, 1] * lids[1]
        if translation is not None:
            verts = verts + translation[b]
            posed_j = posed_j + translation[b]
        outs["vertices"].append(verts)
        outs["joints"].append(posed_j)
        if static is not None:
            r_rel = rots[0] @ rots[1] if neck_in_chain else rots[0]
            yaw = yaw_sign * np.degrees(Rotation.from_matrix(r_rel).as_euler("ZYX")[1])
            a_ = int(np.round(min(yaw, 39.0)))
            row = a_ if a_ >= 0 else (39 - a_ if a_ >= -39 else 78)
            pts = []
            for fi, bc in list(zip(dynamic[0][row], dynamic[1][row])) + list(zip(static[0], static[1])):
                pts.append(sum(bc[k] * verts[faces[fi, k]] for k in range(3)))
            outs["landmarks"].append(np.array(pts))
    return {k: np.array(v) for k, v in outs.items() if v}
