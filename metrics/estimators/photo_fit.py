"""``photo-fit``: FLAME fitted to the 68 landmarks of a detector whose weights ship in a PyPI wheel, for real
photographs taken by any camera, with nothing downloaded.

The landmarks come from dlib's HOG detector + ``shape_predictor_68_face_landmarks.dat`` (the
``face_recognition_models`` wheel; FAN when its weights are in torch.hub's folder, :mod:`.landmarks`). Unlike
``landmark-fit``, which starts from the protocol's frontal camera (the generated images are taken from it), the
fit starts from a camera placed *from the landmarks*: looking along -z at the head model's mean face from the
distance at which the mean face's outer-eye-corner distance matches the detected one, shifted so that the
mean face's landmark centroid lands on the detected centroid. So the face may sit anywhere in the photo at
any size. The focal is assumed (``focal``, default the framing's, EG3D's 4.2647 x the image width); a
photograph's true focal only changes the perspective, which 68 landmarks barely constrain.

Head model: the one it is built with (real FLAME when the user has it, else the synthetic head); the fitted
shape and expression refer to it. Output as ``landmark-fit``: global rotation and translation folded into the
camera (global pose 0), jaw in ``pose[6:9]``; ``detected`` false when no face is found or the fit's landmark
RMSE exceeds ``max_rmse`` x the image size. :func:`fitted_yaw_pitch` reads the head's yaw/pitch in the picture.
"""

from __future__ import annotations

from typing import Any

import torch

from metrics.control_math import head_in_frontal_pose
from metrics.estimators.landmark_fit import LandmarkFitEstimator
from omnibench.cameras import intrinsics

OUTER_EYES = (36, 45)


def fitted_yaw_pitch(camera: torch.Tensor) -> torch.Tensor:
    """``(B, 2)`` yaw and pitch (radians) of the head in the picture (positive yaw: nose toward +x, the
    subject's left, image right; positive pitch: chin up) from an estimate's camera (global pose 0)."""
    aa = head_in_frontal_pose(camera)
    return torch.stack([aa[:, 1], -aa[:, 0]], 1).float()


class PhotoFitEstimator(LandmarkFitEstimator):
    """68 wheel-shipped landmarks (dlib) + the head model fitted from a camera placed by the landmarks.

    Options: those of ``landmark-fit`` (``detector``, ``n_shape``, ``n_expression``, ``steps``, ``max_rmse``,
    ``focal``, ``framing``, priors), ``rigid_steps`` (Adam steps of the rigid stage, default 100) and ``refine``
    (per-sample L-BFGS iterations, default 60)."""

    name = "photo-fit"
    version = 1

    def __init__(self, head_model: Any, device: str = "cpu", detector: str = "auto", n_shape: int = 50,
                 n_expression: int = 50, steps: int = 200, max_rmse: float = 0.05, focal: float | None = None,
                 radius: float | None = None, shape_prior: float = 1e-2, expression_prior: float = 1e-2,
                 framing: str = "v1", rigid_steps: int = 100, refine: int = 60) -> None:
        super().__init__(head_model, device, detector, n_shape, n_expression, steps, max_rmse, focal, radius,
                         shape_prior, expression_prior, framing)
        self.fitter.cfg.rigid_steps, self.fitter.cfg.refine_iters = int(rigid_steps), int(refine)
        with torch.no_grad():
            mean = head_model(shape=torch.zeros(1, 1, dtype=head_model.template.dtype)
                              if hasattr(head_model, "template") else torch.zeros(1, 1))
        lm = mean.landmarks[0].double().cpu()
        self.mean_centroid = lm[17:].mean(0)  # static points: the contour depends on the view
        self.mean_iod = float((lm[OUTER_EYES[0]] - lm[OUTER_EYES[1]]).norm())

    def initial_camera(self, points: torch.Tensor, resolution: int) -> torch.Tensor:
        """Cameras looking along -z whose view of the mean face has the detected inter-ocular distance and
        static-landmark centroid (see the module docstring)."""
        b = points.shape[0]
        pts = points.double()
        iod_px = (pts[:, OUTER_EYES[0]] - pts[:, OUTER_EYES[1]]).norm(dim=-1).clamp_min(1.0)
        dist = self.focal * resolution * self.mean_iod / iod_px
        centre = pts[:, 17:].mean(1)
        c = self.mean_centroid
        scale = dist / (self.focal * resolution)
        cx = c[0] - (centre[:, 0] - resolution / 2) * scale
        cy = c[1] + (centre[:, 1] - resolution / 2) * scale
        c2w = torch.eye(4, dtype=torch.float64).repeat(b, 1, 1)
        c2w[:, :3, :3] = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
        c2w[:, :3, 3] = torch.stack([cx, cy, c[2] + dist], -1)
        k = intrinsics(self.focal, b, torch.float64).reshape(b, 9)
        return torch.cat([c2w.reshape(b, 16), k], 1).float()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"focal": self.focal, "head": getattr(self.head_model, "name", None)})
        return d
