"""Batched FLAME forward pass (linear blend skinning) in torch: :class:`HeadModel` and :func:`load_head_model`.

Equations (flame.md §2.1), per sample:

1. ``v_S = T + S @ beta + E @ psi`` (shape columns 0.., expression columns 300.. of ``shapedirs``);
2. joints ``J = J_regressor @ v_S`` (the joints see expression too, as in every FLAME implementation);
3. ``R_j = Rodrigues(theta_j)`` for the 5 joints of ``pose = [global|neck|jaw|leye|reye]`` (axis-angle, rad);
4. ``v_P = v_S + P @ vec(R_1 - I, .., R_4 - I)`` (row-major 3x3 blocks, root excluded);
5. world transforms ``A_j = A_parent(j) o [R_j | J_j - R_j J_j]`` (rotation about the rest joint);
6. skinning ``v = sum_j w_vj A_j v_P``, evaluated as ``v_P + sum_j w_vj (A_j - I) v_P`` so that the zero pose
   returns the template bit-exactly;
7. optional FLAME 2023 eyelids ``v += eyelids[:, 0] * l_eyelid + eyelids[:, 1] * r_eyelid`` (after LBS, as
   metrical-tracker does), then ``+ translation``.

Speed: the shape, expression and pose-corrective bases and the regressed joint basis ``J_regressor @ basis``
are one precomputed ``(K + 36, 3V + 15)`` matrix, so steps 1, 2 and 4 are a single GEMM. Batches are
zero-padded to a multiple of 8 rows so that every sample's result is bit-identical whatever the batch size.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibench.errors import OmnibenchError
from omnibench.heads import landmarks as lm
from omnibench.heads.loader import (
    EXPRESSION_COLUMNS,
    N_JOINTS,
    POSE_DIM,
    SHAPE_COLUMNS,
    FlameData,
    load_flame_data,
)

_SKIN_CHUNK_ELEMS = 1 << 21  # floats per CPU skinning chunk (8 MB in float32)
_ROW_BLOCK = 8  # batches are zero-padded to a multiple of this (batch-size-independent results)


def _pad_cols(arr: np.ndarray, multiple: int = 64) -> np.ndarray:
    """Zero columns up to a multiple of ``multiple``: BLAS then treats every row alike (bit-exact batching)."""
    extra = -arr.shape[1] % multiple
    return np.pad(arr, ((0, 0), (0, extra))) if extra else arr


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    return t if t.shape[0] == rows else torch.cat([t, t.new_zeros(rows - t.shape[0], *t.shape[1:])])
JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")


@dataclass
class HeadOutput:
    """Forward-pass result (metres, head-model frame: +y up, +z out of the face, +x subject's left).

    vertices (B, V, 3); joints (B, 5, 3) posed joint locations; landmarks (B, 68, 3) iBUG order = dynamic
    17-point contour + static 51 (``None`` without embedding files); landmarks3d (B, 68, 3) the static
    "full 68" set; contour_rows (B,) dynamic-table row used per sample; transforms (B, 5, 4, 4) rest->posed
    rigid transform of each joint (translation included; eyelids are not part of it).
    """

    vertices: torch.Tensor
    joints: torch.Tensor
    landmarks: torch.Tensor | None
    landmarks3d: torch.Tensor | None
    contour_rows: torch.Tensor | None
    transforms: torch.Tensor


def deca_pose_to_flame15(pose6: torch.Tensor) -> torch.Tensor:
    """DECA/EMOCA 6-d pose ``[global 3 | jaw 3]`` (..., 6) -> FLAME 15-d ``[global|neck=0|jaw|leye=0|reye=0]``."""
    pose6 = torch.as_tensor(pose6)
    if pose6.shape[-1] != 6:
        raise OmnibenchError(f"deca_pose_to_flame15 expects (..., 6) poses, got {tuple(pose6.shape)}")
    zeros = torch.zeros(*pose6.shape[:-1], 3, dtype=pose6.dtype, device=pose6.device)
    return torch.cat([pose6[..., :3], zeros, pose6[..., 3:], zeros, zeros], dim=-1)


def axis_angle_to_matrix(rvec: torch.Tensor, *, cosine_form: bool = False) -> torch.Tensor:
    """Rodrigues: (..., 3) axis-angle (rad) -> (..., 3, 3) rotation matrices; the suite's one implementation.

    ``R = I + a [r]x + b [r]x^2`` with ``a = sin t / t`` and ``b = (1 - cos t) / t^2 = 2 sin^2(t/2) / t^2``
    (cancellation-free), Taylor series below ``t = 1e-6``: exact identity and finite gradients at zero, full
    precision elsewhere (smplx's ``||r + 1e-8||`` trick perturbs rotations by ~1e-8).

    ``cosine_form=True`` evaluates ``b = (1 - cos t) / t^2`` as written, with the Taylor series below
    ``t = 1e-4``: the same rotation up to float rounding (a few ulp; exactly the identity at zero), kept because
    the control metrics' numbers were computed with it (APD's head rotation and ``landmark-fit``'s camera
    fold, through :func:`metrics.control_math.axis_angle_to_matrix`), so they stay the same to the bit.
    """
    theta2 = (rvec * rvec).sum(-1)
    small = theta2 < (1e-8 if cosine_form else 1e-12)
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    if cosine_form:
        b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta * theta))
    else:
        half = torch.sin(theta / 2) / (theta / 2)
        b = torch.where(small, 0.5 - theta2 / 24, 0.5 * half * half)
    x, y, z = rvec.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*rvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rvec.dtype, device=rvec.device)
    return eye + a[..., None, None] * skew + b[..., None, None] * (skew @ skew)


class HeadModel(torch.nn.Module):
    """FLAME-layout head model with a batched LBS forward pass (CPU/CUDA, float32/float64).

    Parameters: ``n_shape`` <= 300 and ``n_expression`` <= 100 basis columns used (missing input coefficients
    are zero); ``yaw_sign``/``neck_in_chain`` pick the dynamic-contour convention (default DECA's: +yaw of
    ``R_global @ R_neck``). Use ``model.to(dtype/device)`` as for any module; inputs are cast to the model's.
    """

    def __init__(self, data: FlameData, *, n_shape: int = SHAPE_COLUMNS, n_expression: int = EXPRESSION_COLUMNS,
                 yaw_sign: int = 1, neck_in_chain: bool = True, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not 0 <= n_shape <= SHAPE_COLUMNS or not 0 <= n_expression <= EXPRESSION_COLUMNS:
            raise OmnibenchError(f"n_shape must be in [0, 300] and n_expression in [0, 100], got {n_shape}, {n_expression}")
        if yaw_sign not in (1, -1):
            raise OmnibenchError(f"yaw_sign must be +1 or -1, got {yaw_sign}")
        self.name, self.sha256, self.source = data.name, data.sha256, data.source
        self.side_files = dict(data.side_files)
        self.yaw_sign, self.neck_in_chain = yaw_sign, neck_in_chain
        self.parents = tuple(int(p) for p in data.parents)
        self._n_shape, self._n_expression = n_shape, n_expression
        n_v = data.n_vertices
        dirs = np.concatenate([data.shapedirs[:, :, :n_shape],
                               data.shapedirs[:, :, SHAPE_COLUMNS:SHAPE_COLUMNS + n_expression]], axis=2)
        k = n_shape + n_expression
        # bases in coordinate-plane layout (K, 3, V) -> (K, 3V): the GEMM then yields x, y, z planes with a long
        # contiguous inner dimension, which keeps the skinning arithmetic vectorised
        basis = dirs.transpose(2, 1, 0).reshape(k, 3 * n_v)
        posedirs = data.posedirs.transpose(2, 1, 0).reshape(-1, 3 * n_v)  # (36, 3V)
        j_template = data.J_regressor @ data.v_template  # (5, 3)
        j_basis = np.einsum("jv,vck->kjc", data.J_regressor, dirs).reshape(k, 3 * N_JOINTS)

        def buf(name: str, arr: np.ndarray, as_float: bool = True) -> None:
            t = torch.from_numpy(np.ascontiguousarray(arr))
            self.register_buffer(name, t.to(dtype) if as_float else t.long(), persistent=False)

        buf("v_template", data.v_template)
        # one GEMM gives rest vertices (coordinate planes) *and* the regressed joints (last 15 columns; the
        # pose-corrective rows are zero there): (1, 3V + 15) offsets and a (K + 36, 3V + 15) basis
        buf("template_planes", _pad_cols(np.concatenate([data.v_template.T.reshape(-1), j_template.reshape(-1)])[None]))
        buf("faces_buf", data.faces, as_float=False)
        buf("blend_basis", _pad_cols(np.block([[basis, j_basis], [posedirs, np.zeros((posedirs.shape[0], 3 * N_JOINTS))]])))
        buf("lbs_weights_t", _pad_cols(data.weights.T))  # (5, V) + zero columns
        self.has_eyelids = data.eyelids is not None
        if data.eyelids is not None:
            buf("eyelid_basis", _pad_cols(data.eyelids.transpose(0, 2, 1).reshape(2, 3 * n_v)))  # planes
        self.has_landmarks = data.static_lmk is not None and data.dynamic_lmk is not None
        if self.has_landmarks:
            buf("static_idx", data.static_lmk.face_idx, as_float=False)  # type: ignore[union-attr]
            buf("static_bary", data.static_lmk.bary)  # type: ignore[union-attr]
            buf("dynamic_idx", data.dynamic_lmk.face_idx, as_float=False)  # type: ignore[union-attr]
            buf("dynamic_bary", data.dynamic_lmk.bary)  # type: ignore[union-attr]
        full = data.full_lmk
        if full is None and self.has_landmarks:  # fallback: yaw-0 contour + static 51 (documented)
            full = lm.Embedding(np.concatenate([data.dynamic_lmk.face_idx[0], data.static_lmk.face_idx]),  # type: ignore[union-attr]
                                np.concatenate([data.dynamic_lmk.bary[0], data.static_lmk.bary]))  # type: ignore[union-attr]
            self.side_files["full68"] = "fallback: dynamic row 0 + static 51"
        self.has_landmarks3d = full is not None
        if full is not None:
            buf("full_idx", full.face_idx, as_float=False)
            buf("full_bary", full.bary)
        self.masks: dict[str, torch.Tensor] = {k_: torch.from_numpy(v).long() for k_, v in data.masks.items()}

    # ------------------------------------------------------------------------------------------ properties
    @property
    def n_shape(self) -> int:
        return self._n_shape

    @property
    def n_expression(self) -> int:
        return self._n_expression

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def faces(self) -> torch.Tensor:
        """(F, 3) int64 triangle vertex indices (outward-facing winding)."""
        return self.faces_buf

    @property
    def template(self) -> torch.Tensor:
        """(V, 3) mean head in the zero pose, metres."""
        return self.v_template

    def landmark_subset(self) -> HeadModel:
        """A head that poses only the vertices its landmarks read (the corners of every static, dynamic-contour
        and full-68 landmark face: 305 of the synthetic head's 2890 vertices), for landmark fitting.

        Same inputs; ``landmarks``, ``landmarks3d``, ``contour_rows``, ``joints`` and ``transforms`` equal the
        full model's up to float rounding (joints are still regressed from every vertex: their basis columns are
        kept whole); ``vertices`` are the kept vertices only (``faces`` indexes them), and ``masks`` are empty.
        Needs the landmark embeddings (``has_landmarks``)."""
        if not self.has_landmarks:
            raise OmnibenchError(f"head model '{self.name}' has no landmark embedding to take a subset for")
        idx = [self.static_idx, self.dynamic_idx] + ([self.full_idx] if self.has_landmarks3d else [])
        face_keep = torch.unique(torch.cat([t.reshape(-1) for t in idx]))
        vert_keep = torch.unique(self.faces_buf[face_keep])
        n_v, n_k = self.n_vertices, len(vert_keep)
        plane_cols = torch.cat([c * n_v + vert_keep for c in range(3)])
        joint_cols = 3 * n_v + torch.arange(3 * N_JOINTS)

        def cols(t: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(_pad_cols(t[:, keep].cpu().numpy())).to(t.device)

        sub = HeadModel.__new__(HeadModel)
        torch.nn.Module.__init__(sub)
        for name in ("name", "sha256", "source", "yaw_sign", "neck_in_chain", "parents", "_n_shape", "_n_expression",
                     "has_eyelids", "has_landmarks", "has_landmarks3d"):
            setattr(sub, name, getattr(self, name))
        sub.side_files = {**self.side_files, "subset": f"landmark vertices ({n_k} of {n_v})"}
        sub.masks = {}
        buffers = {
            "v_template": self.v_template[vert_keep],
            "template_planes": cols(self.template_planes, torch.cat([plane_cols, joint_cols])),
            "faces_buf": torch.searchsorted(vert_keep, self.faces_buf[face_keep]),
            "blend_basis": cols(self.blend_basis, torch.cat([plane_cols, joint_cols])),
            "lbs_weights_t": cols(self.lbs_weights_t, vert_keep),
        }
        if self.has_eyelids:
            buffers["eyelid_basis"] = cols(self.eyelid_basis, plane_cols)
        for name in ("static", "dynamic") + (("full",) if self.has_landmarks3d else ()):
            buffers[f"{name}_idx"] = torch.searchsorted(face_keep, getattr(self, f"{name}_idx"))
            buffers[f"{name}_bary"] = getattr(self, f"{name}_bary")
        for name, t in buffers.items():
            sub.register_buffer(name, t.contiguous(), persistent=False)
        return sub

    def extra_repr(self) -> str:
        return (f"name={self.name!r}, V={self.n_vertices}, F={self.faces.shape[0]}, n_shape={self.n_shape}, "
                f"n_expression={self.n_expression}, landmarks={self.has_landmarks}, eyelids={self.has_eyelids}")

    # --------------------------------------------------------------------------------------------- forward
    def _inputs(self, **named: Any) -> tuple[int, dict[str, torch.Tensor | None]]:
        dtype, device = self.v_template.dtype, self.v_template.device
        width = {"shape": self.n_shape, "expression": self.n_expression, "pose": POSE_DIM,
                 "translation": 3, "eyelids": 2}
        out: dict[str, torch.Tensor | None] = {}
        batch = 1
        for key, value in named.items():
            if value is None:
                out[key] = None
                continue
            t = torch.as_tensor(value).to(device=device, dtype=dtype)
            if t.dim() == 1:
                t = t[None]
            if t.dim() != 2:
                raise OmnibenchError(f"{key} must be (B, n) or (n,), got shape {tuple(t.shape)}")
            n = t.shape[1]
            if key in ("pose", "translation", "eyelids") and n != width[key]:
                hint = " (DECA's 6-d pose: use deca_pose_to_flame15)" if key == "pose" and n == 6 else ""
                raise OmnibenchError(f"{key} must have {width[key]} values per sample, got {n}{hint}")
            if n > width[key]:
                raise OmnibenchError(f"{key} has {n} coefficients but this model uses n_{key}={width[key]}; "
                                     f"load it with n_{key}={n} (max {300 if key == 'shape' else 100})")
            if t.shape[0] != 1:
                if batch != 1 and t.shape[0] != batch:
                    raise OmnibenchError(f"inconsistent batch sizes: {key} has {t.shape[0]}, others {batch}")
                batch = t.shape[0]
            out[key] = t
        if out.get("eyelids") is not None and not self.has_eyelids:
            raise OmnibenchError(f"head model '{self.name}' has no eyelid blendshapes (l_eyelid.npy/r_eyelid.npy)")
        return batch, out

    def _skin(self, planes: torch.Tensor, delta: torch.Tensor, lids: torch.Tensor | None,
              translation: torch.Tensor | None, out: torch.Tensor | None = None) -> torch.Tensor:
        """planes (b, 3, V) rest vertices; delta (b, 5, 3, 4) = [R_j - I | t_j] -> posed vertices (b, V, 3)."""
        b, n_v = planes.shape[0], planes.shape[2]
        blend = (delta.permute(0, 2, 3, 1).reshape(-1, N_JOINTS) @ self.lbs_weights_t).view(b, 3, 4, -1)[..., :n_v]
        xyz = planes.unbind(1)
        coords = []
        for c in range(3):
            acc = xyz[c] + blend[:, c, 3]
            for k in range(3):
                acc.addcmul_(blend[:, c, k], xyz[k])
            if lids is not None:  # FLAME 2023 eyelids, after LBS
                acc.add_(lids[:, c])
            if translation is not None:
                acc.add_(translation[:, c, None])
            coords.append(acc)
        if out is not None:  # no-grad fast path: write straight into the caller's (b, V, 3) slice
            return torch.stack(coords, dim=2, out=out)
        return torch.stack(coords, dim=2)

    def forward(self, shape: Any = None, expression: Any = None, pose: Any = None, translation: Any = None,
                eyelids: Any = None) -> HeadOutput:
        """shape (B, <=n_shape), expression (B, <=n_expression), pose (B, 15) axis-angle rad, translation
        (B, 3) m, eyelids (B, 2) [left, right] in [0, 1]; 1-d inputs and batch 1 broadcast; ``None`` = zeros.
        """
        batch, x = self._inputs(shape=shape, expression=expression, pose=pose, translation=translation,
                                eyelids=eyelids)
        # Pad the batch to a multiple of _ROW_BLOCK rows: BLAS kernels then take the same path for every row,
        # so each sample's result is bit-identical whatever the batch size or its position in the batch.
        rows = -(-max(batch, 1) // _ROW_BLOCK) * _ROW_BLOCK
        x = {k: None if v is None else _pad_rows(v.expand(batch, -1), rows) for k, v in x.items()}
        out = self._forward(rows, x)
        if rows == batch:
            return out
        return HeadOutput(*(None if t is None else t[:batch] for t in (getattr(out, f.name) for f in fields(out))))

    def _forward(self, batch: int, x: dict[str, torch.Tensor | None]) -> HeadOutput:
        """Forward pass on inputs that all have exactly ``batch`` rows (or are ``None``)."""
        dtype, device = self.v_template.dtype, self.v_template.device
        n_v, k = self.n_vertices, self.n_shape + self.n_expression
        coeffs = torch.zeros(batch, k, dtype=dtype, device=device)
        if x["shape"] is not None:
            coeffs[:, : x["shape"].shape[1]] = x["shape"]
        if x["expression"] is not None:
            coeffs[:, self.n_shape: self.n_shape + x["expression"].shape[1]] = x["expression"]
        theta = x["pose"] if x["pose"] is not None else torch.zeros(1, POSE_DIM, dtype=dtype, device=device)
        rot = axis_angle_to_matrix(theta.reshape(-1, N_JOINTS, 3)).expand(batch, -1, -1, -1)  # (B, 5, 3, 3)
        eye = torch.eye(3, dtype=dtype, device=device)
        pose_feature = (rot[:, 1:] - eye).reshape(batch, 9 * (N_JOINTS - 1))  # (B, 36)

        # steps 1, 2 and 4 in one GEMM: coordinate planes + joints (J_regressor @ basis precomputed)
        feats = torch.cat([coeffs, pose_feature], dim=1)
        blended = torch.addmm(self.template_planes, feats, self.blend_basis)
        planes = blended[:, : 3 * n_v].view(batch, 3, n_v)
        joints = blended[:, 3 * n_v: 3 * n_v + 3 * N_JOINTS].reshape(batch, N_JOINTS, 3)

        # rigid chain: A_j = A_parent o [R_j | J_j - R_j J_j]
        local_t = joints - (rot @ joints[..., None])[..., 0]
        rots: list[torch.Tensor] = []
        trans: list[torch.Tensor] = []
        for j, p in enumerate(self.parents):
            if p < 0:
                rots.append(rot[:, j])
                trans.append(local_t[:, j])
            else:
                rots.append(rots[p] @ rot[:, j])
                trans.append((rots[p] @ local_t[:, j, :, None])[..., 0] + trans[p])
        world_r = torch.stack(rots, dim=1)  # (B, 5, 3, 3)
        world_t = torch.stack(trans, dim=1)  # (B, 5, 3)

        # skinning in delta form: v = v_rest + sum_j w_j ((R_j - I) v_rest + t_j), on (B, V) planes
        delta = torch.cat([world_r - eye, world_t[..., None]], dim=3)  # (B, 5, 3, 4)
        lids = None if x["eyelids"] is None else (x["eyelids"] @ self.eyelid_basis)[:, : 3 * n_v].view(-1, 3, n_v)
        trans_in = x["translation"]
        # CPU: chunk the batch so the (b, 12, V) blended transforms stay small (cache-resident, no page faults)
        step = batch if planes.is_cuda else max(1, _SKIN_CHUNK_ELEMS // (12 * n_v * _ROW_BLOCK)) * _ROW_BLOCK
        tensors = [t for t in (planes, delta, lids, trans_in) if t is not None]
        if step >= batch:
            verts = self._skin(planes, delta, lids, trans_in)
        else:
            grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
            buffer = None if grad else torch.empty(batch, n_v, 3, dtype=dtype, device=device)
            chunks = []
            for b0 in range(0, batch, step):
                sl = slice(b0, b0 + step)
                chunks.append(self._skin(
                    planes[sl], delta[sl], None if lids is None else lids[sl] if lids.shape[0] > 1 else lids,
                    None if trans_in is None else trans_in[sl] if trans_in.shape[0] > 1 else trans_in,
                    out=None if buffer is None else buffer[sl]))
            verts = buffer if buffer is not None else torch.cat(chunks)
        posed_joints = (world_r @ joints[..., None])[..., 0] + world_t
        transforms = torch.zeros(batch, N_JOINTS, 4, 4, dtype=dtype, device=device)
        transforms[..., :3, :3] = world_r
        transforms[..., :3, 3] = world_t
        transforms[..., 3, 3] = 1

        landmarks = landmarks3d = rows = None
        if self.has_landmarks:
            r_rel = rot[:, 0] @ rot[:, 1] if self.neck_in_chain else rot[:, 0]
            rows = lm.contour_row(self.yaw_sign * lm.yaw_degrees(r_rel))
            contour = lm.barycentric_points(verts, self.faces, self.dynamic_idx[rows], self.dynamic_bary[rows])
            static = lm.barycentric_points(verts, self.faces, self.static_idx, self.static_bary)
            landmarks = torch.cat([contour, static], dim=1)
        if self.has_landmarks3d:
            landmarks3d = lm.barycentric_points(verts, self.faces, self.full_idx, self.full_bary)
        if x["translation"] is not None:  # (vertices got it in the plane loop above)
            posed_joints = posed_joints + x["translation"][:, None, :]
            transforms[..., :3, 3] += x["translation"][:, None, :]
        return HeadOutput(verts, posed_joints, landmarks, landmarks3d, rows, transforms)


# ------------------------------------------------------------------------------------------------- factory

_SYNTHETIC = re.compile(r"^synthetic(?::(?P<preset>[a-z0-9-]+))?(?::(?P<seed>\d+))?$")


def load_head_model(spec: str | os.PathLike[str] | None = "synthetic", *, n_shape: int = SHAPE_COLUMNS,
                    n_expression: int = EXPRESSION_COLUMNS, dtype: torch.dtype = torch.float32,
                    device: str | torch.device = "cpu", yaw_sign: int = 1, neck_in_chain: bool = True) -> HeadModel:
    """Build a :class:`HeadModel`.

    ``spec``: ``"synthetic"`` (the ``small`` synthetic FLAME-format head, seed 0), ``"synthetic:<preset>"`` or
    ``"synthetic:<preset>:<seed>"`` (presets ``tiny``, ``small``, ``flame-count``), ``"flame"`` or ``None``
    (real FLAME from ``$OMNIBENCH_FLAME`` or ``<cache_root>/flame/``), or a path to a model file or folder.
    """
    name = None
    text = str(spec) if spec is not None else "flame"
    match = _SYNTHETIC.match(text)
    if match:
        try:
            from omnibench.heads.synthetic import make_synthetic_head
        except ImportError as exc:  # pragma: no cover - the generator ships with omnibench
            raise OmnibenchError(f"the synthetic head generator is not available: {exc}") from exc
        preset, seed = match["preset"] or "small", int(match["seed"] or 0)
        path: Path | None = Path(make_synthetic_head(preset=preset, seed=seed))
        name = f"synthflame-{preset}-seed{seed}"
    elif text == "flame":
        path = None
    else:
        path = Path(text).expanduser()
    data = load_flame_data(path, name=name)
    model = HeadModel(data, n_shape=n_shape, n_expression=n_expression, yaw_sign=yaw_sign,
                      neck_in_chain=neck_in_chain, dtype=dtype)
    return model.to(device)
