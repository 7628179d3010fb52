"""Fit FLAME (shape, expression, global + jaw pose, translation) to 68 landmarks by optimisation.

The fitter is independent of any detector: give it 2D landmarks in pixels with the camera that took
the picture, or 3D landmarks in the head-model frame. Loss per sample::

    mean_k w_k |proj(L_k(params)) - l_k|^2 / R^2           (2D, R = resolution; or |L_k - l_k|^2 / s^2 in 3D)
    + shape_prior * mean(beta^2) + expression_prior * mean(psi^2) + jaw_prior * |jaw[1:3]|^2

Per-sample losses are *summed* over the batch and optimised with Adam (element-wise updates), so each
sample's fit is independent of the batch it is in. Two stages: rigid (global rotation + translation,
mean shape), then everything. Initialisation is zero (the mean face facing the camera).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metrics.control_math import axis_angle_to_matrix
from omnibench.cameras import project
from omnibench.errors import OmnibenchError


@dataclass
class FitResult:
    """Fitted parameters ``(B, ...)`` (float32, CPU); ``landmark_rmse`` in px (2D) or metres (3D)."""

    shape: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor
    translation: torch.Tensor
    landmark_rmse: torch.Tensor


@dataclass
class FitterConfig:
    n_shape: int = 50
    n_expression: int = 50
    shape_prior: float = 1e-5
    expression_prior: float = 1e-5
    jaw_prior: float = 1e-2  # on the jaw's y/z (twist, sideways) components only
    rigid_steps: int = 100
    steps: int = 200
    lr: float = 0.02
    refine_iters: int = 60  # L-BFGS iterations per sample after Adam (0 = off)


class FlameFitter:
    """Landmark fitter for a head model of the :mod:`omnibench.heads` API (any ``n_shape``/``n_expression``)."""

    def __init__(self, head: Any, config: FitterConfig | None = None, device: str | torch.device = "cpu") -> None:
        # only the landmarks are fitted: pose just the vertices they read (same numbers, a fraction of the work)
        subset = getattr(head, "landmark_subset", None)
        self.head = subset() if callable(subset) and getattr(head, "has_landmarks", False) else head
        self.cfg = config or FitterConfig()
        self.device = torch.device(device)
        self.n_shape = min(self.cfg.n_shape, int(head.n_shape))
        self.n_expression = min(self.cfg.n_expression, int(head.n_expression))

    def _landmarks(self, shape, expression, rot, jaw, translation, which: str) -> torch.Tensor:
        pose = torch.cat([rot, torch.zeros_like(rot), jaw, torch.zeros(rot.shape[0], 6, device=rot.device)], 1)
        out = self.head(shape=shape, expression=expression, pose=pose, translation=translation)
        return getattr(out, which)

    def fit_2d(
        self,
        landmarks: torch.Tensor,
        camera: torch.Tensor,
        resolution: int,
        weights: torch.Tensor | None = None,
        which: str = "landmarks",
    ) -> FitResult:
        """Fit to pixel landmarks ``(B, 68, 2)`` (x right, y down, pixel centres at +0.5) seen by
        ``camera (B, 25)`` at ``resolution``; ``weights (B, 68)`` per-landmark confidences."""
        if landmarks.ndim != 3 or landmarks.shape[2] != 2:
            raise OmnibenchError(f"2D landmarks must be (B, K, 2) pixels, got {tuple(landmarks.shape)}")
        target = landmarks.to(self.device, torch.float32) / resolution
        cam = camera.to(self.device, torch.float32)

        def residual(lm3d: torch.Tensor, rows: slice) -> torch.Tensor:
            px, _ = project(lm3d, cam[rows], resolution)
            return px / resolution - target[rows]

        res = self._fit(residual, landmarks.shape[0], weights, which)
        return FitResult(*res[:4], landmark_rmse=res[4] * resolution)

    def fit_3d(self, landmarks: torch.Tensor, weights: torch.Tensor | None = None, which: str = "landmarks") -> FitResult:
        """Fit to 3D landmarks ``(B, 68, 3)`` in the head-model frame (metres)."""
        if landmarks.ndim != 3 or landmarks.shape[2] != 3:
            raise OmnibenchError(f"3D landmarks must be (B, K, 3), got {tuple(landmarks.shape)}")
        scale = 0.1  # metres: residuals in head-size units keep the loss well scaled
        target = landmarks.to(self.device, torch.float32)
        res = self._fit(lambda lm, rows: (lm - target[rows]) / scale, landmarks.shape[0], weights, which)
        return FitResult(*res[:4], landmark_rmse=res[4] * scale)

    def _fit(self, residual, b: int, weights: torch.Tensor | None, which: str):
        with torch.enable_grad():  # callers may run under no_grad (evaluation loops)
            return self._fit_impl(residual, b, weights, which)

    def _fit_impl(self, residual, b: int, weights: torch.Tensor | None, which: str):
        cfg, dev = self.cfg, self.device
        w = torch.ones(b, 68, device=dev) if weights is None else weights.to(dev, torch.float32)
        params = {
            "shape": torch.zeros(b, self.n_shape, device=dev, requires_grad=True),
            "expression": torch.zeros(b, self.n_expression, device=dev, requires_grad=True),
            "rot": torch.zeros(b, 3, device=dev, requires_grad=True),
            "jaw": torch.zeros(b, 3, device=dev, requires_grad=True),
            "translation": torch.zeros(b, 3, device=dev, requires_grad=True),
        }

        def data_term(p, wi: torch.Tensor, rows: slice) -> torch.Tensor:
            lm = self._landmarks(p["shape"], p["expression"], p["rot"], p["jaw"], p["translation"], which)
            r = residual(lm, rows)
            return ((r**2).sum(-1) * wi).sum(1) / wi.sum(1).clamp_min(1e-6)

        def prior_term(p) -> torch.Tensor:
            return (
                cfg.shape_prior * (p["shape"] ** 2).mean(1)
                + cfg.expression_prior * (p["expression"] ** 2).mean(1)
                + cfg.jaw_prior * (p["jaw"][:, 1:] ** 2).sum(1)
            )

        def total(p, full: bool) -> torch.Tensor:
            loss = data_term(p, w, slice(None))
            if full:
                loss = loss + prior_term(p)
            return loss.sum()  # sum over samples: per-sample gradients do not depend on the batch

        stages = ((["rot", "translation"], cfg.rigid_steps, False), (list(params), cfg.steps, True))
        for names, steps, full in stages:
            opt = torch.optim.Adam([params[n] for n in names], lr=cfg.lr)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps), eta_min=cfg.lr * 0.02)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                total(params, full).backward()
                opt.step()
                sched.step()
        if cfg.refine_iters > 0:  # per-sample L-BFGS: converges tightly and stays batch-independent
            for i in range(b):
                sub = {n: params[n][i : i + 1].detach().clone().requires_grad_(True) for n in params}
                opt = torch.optim.LBFGS(list(sub.values()), lr=1.0, max_iter=cfg.refine_iters, line_search_fn="strong_wolfe",
                                        tolerance_grad=1e-12, tolerance_change=1e-15, history_size=20)
                rows = slice(i, i + 1)

                def closure(sub=sub, rows=rows, opt=opt):
                    opt.zero_grad(set_to_none=True)
                    loss = (data_term(sub, w[rows], rows) + prior_term(sub)).sum()
                    loss.backward()
                    return loss

                opt.step(closure)
                with torch.no_grad():
                    for n in params:
                        params[n][i] = sub[n][0]
        with torch.no_grad():
            rmse = data_term(params, w, slice(None)).sqrt()
            pose = torch.zeros(b, 15, device=dev)
            pose[:, 0:3], pose[:, 6:9] = params["rot"], params["jaw"]
        out = [params[n].detach().float().cpu() for n in ("shape", "expression")]
        return out[0], out[1], pose.cpu(), params["translation"].detach().cpu(), rmse.cpu()


def fold_rigid_into_camera(camera: torch.Tensor, rot: torch.Tensor, translation: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Camera ``(B, 25)`` that sees the un-rotated head exactly as ``camera`` sees the head moved by
    FLAME's global rotation ``rot (B, 3)`` about the root joint ``root (B, 3)`` plus ``translation (B, 3)``.

    FLAME moves points as ``x' = R (x - J0) + J0 + t`` =: ``T x``; the equivalent cam2world is ``T^-1 c2w``.
    """
    b = camera.shape[0]
    r = axis_angle_to_matrix(rot.double())
    t = torch.eye(4, dtype=torch.float64).repeat(b, 1, 1)
    t[:, :3, :3] = r
    t[:, :3, 3] = root.double() + translation.double() - (r @ root.double()[..., None])[..., 0]
    c2w = camera[:, :16].double().reshape(b, 4, 4)
    new = torch.linalg.inv(t) @ c2w
    return torch.cat([new.reshape(b, 16), camera[:, 16:].double()], 1).to(camera.dtype)
