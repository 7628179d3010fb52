"""``landmark-fit``: 68 detected 2D landmarks, then FLAME fitted by optimisation (:mod:`.fitting`).

The image is assumed to be taken by the protocol's camera family (its :class:`omnibench.cameras.Framing`:
EG3D intrinsics looking at the pivot from ``radius`` metres; ``focal``/``radius`` options override it). The fitter moves the *head*
(global rotation about the root joint + translation) in front of a frontal camera; the rigid motion is
then folded into the returned camera, so the estimate follows the generator convention (global pose 0,
head rotation in ``camera``). Recovered: shape (first ``n_shape``), expression (first ``n_expression``),
jaw pose; neck and eyes are left at zero (not observable from 68 landmarks).

``detected`` is false when no face is found or the fit's landmark RMSE exceeds ``max_rmse`` (fraction
of the image size); ``confidence`` = detector confidence x exp(-rmse / (0.01 x resolution)).
"""

from __future__ import annotations

from typing import Any

import torch

from metrics.estimators.base import Estimator, FlameEstimate, images_to_float, null_estimate
from metrics.estimators.fitting import FitterConfig, FlameFitter, fold_rigid_into_camera
from metrics.estimators.landmarks import make_detector
from omnibench.cameras import get_framing, orbit_camera


class LandmarkFitEstimator(Estimator):
    """68 detected 2D landmarks + FLAME fitted by optimisation.

    Options: ``detector`` (auto|fan|dlib), ``n_shape``, ``n_expression``, ``steps``, ``max_rmse``, ``framing``
    (the protocol's, filled in by the metrics: the initial camera's radius, pivot and focal), ``focal`` and
    ``radius`` (override the framing's), ``shape_prior``, ``expression_prior``."""

    name = "landmark-fit"
    version = 1
    uses_framing = True

    def __init__(self, head_model: Any, device: str = "cpu", detector: str = "auto", n_shape: int = 50,
                 n_expression: int = 50, steps: int = 200, max_rmse: float = 0.05, focal: float | None = None,
                 radius: float | None = None, shape_prior: float = 1e-2, expression_prior: float = 1e-2,
                 framing: str = "v1") -> None:
        super().__init__(head_model, device)
        self.detector_kind = detector
        self._detector = None
        # priors stronger than the fitter's noise-free defaults: detected landmarks are off by pixels
        cfg = FitterConfig(n_shape=n_shape, n_expression=n_expression, steps=steps, shape_prior=shape_prior,
                           expression_prior=expression_prior)
        self.fitter = FlameFitter(head_model, cfg, device)
        f = get_framing(framing)
        self.max_rmse = max_rmse
        self.focal = f.focal if focal is None else float(focal)
        self.radius = f.radius if radius is None else float(radius)
        self.look_at = f.look_at

    @property
    def detector(self):
        if self._detector is None:
            self._detector = make_detector(self.detector_kind, str(self.device))
        return self._detector

    def estimate(self, images: torch.Tensor) -> FlameEstimate:
        res = images.shape[-1]
        images_to_float(images)  # validates the input
        lms = self.detector(images)
        return self.estimate_from_landmarks(lms.points, res, lms.confidence, lms.detected)

    def estimate_from_landmarks(self, points: torch.Tensor, resolution: int, confidence: torch.Tensor,
                                detected: torch.Tensor) -> FlameEstimate:
        """Fit FLAME to pixel landmarks ``(B, 68, 2)`` of images of size ``resolution``."""
        b = points.shape[0]
        out = null_estimate(b, self.fitter.n_shape, self.fitter.n_expression)
        idx = torch.nonzero(detected).squeeze(1)
        if idx.numel() == 0:
            return out
        cam0 = self.initial_camera(points[idx], resolution)
        fit = self.fitter.fit_2d(points[idx], cam0, resolution)
        with torch.no_grad():
            root = self.head_model(shape=fit.shape, expression=fit.expression).joints[:, 0].float().cpu()
        cam = fold_rigid_into_camera(cam0, fit.pose[:, 0:3], fit.translation, root)
        pose = fit.pose.clone()
        pose[:, 0:3] = 0
        ok = fit.landmark_rmse <= self.max_rmse * resolution
        conf = confidence[idx].float() * torch.exp(-fit.landmark_rmse / (0.01 * resolution))
        out.shape[idx], out.expression[idx], out.pose[idx], out.camera[idx] = fit.shape, fit.expression, pose, cam
        out.confidence[idx] = conf
        out.detected[idx] = ok
        return out

    def initial_camera(self, points: torch.Tensor, resolution: int) -> torch.Tensor:
        """The camera the fit starts from ``(B, 25)``, for pixel landmarks ``points (B, 68, 2)``: the framing's
        frontal camera (the protocol's images are taken from it)."""
        zeros = torch.zeros(points.shape[0])
        return orbit_camera(zeros, zeros, self.radius, self.focal, self.look_at)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": None, "detector": self.detector_kind}
