"""The shared pipeline of the field's crop-and-regress FLAME estimators (DECA, EMOCA, SMIRK).

68 landmarks from an offline detector (:func:`metrics.estimators.landmarks.make_detector`: FAN when its weights
are present, else dlib) -> a square crop by the estimator's :class:`~metrics.estimators.ortho.CropRule` ->
bilinear warp to 224 px, RGB in [0, 1] -> the estimator's network -> codes ``shape``, ``expression``,
``global`` and ``jaw`` (axis-angle), ``cam`` = orthographic ``(s, tx, ty)`` -> :class:`FlameEstimate`:
shape and expression as regressed, ``pose[6:9]`` = jaw (neck and eyes 0), the global pose and the orthographic
camera folded into an EG3D camera under the protocol's focal (:func:`~metrics.estimators.ortho.ortho_to_camera`,
depth plane = the posed head model's landmark centroid, rotation about its root joint).

No face found: the null estimate with ``detected = False`` (the metrics count it as a failure). The weights
are the user's (the field's licences forbid shipping them): ``weights=PATH``, else the estimator's file name
in ``<cache>/estimators/``.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import torch

from metrics.estimators.base import Estimator, FlameEstimate, images_to_float, null_estimate
from metrics.estimators.landmarks import make_detector
from metrics.estimators.ortho import CROP_SIZE, CropRule, crop_boxes, ortho_to_camera, warp_crops
from omnibench.assets import cache_root, sha256_file
from omnibench.cameras import get_framing
from omnibench.errors import MissingAssetError


def user_weights(weights: str | None, default_name: str, what: str, hint: str) -> Path:
    """The user's weights file: ``weights`` when given, else ``<cache>/estimators/<default_name>``; a missing file
    is one :class:`MissingAssetError` line saying how to pass it."""
    path = Path(weights).expanduser() if weights else cache_root() / "estimators" / default_name
    if not path.exists():
        raise MissingAssetError(
            f"{what} weights not found at '{path}': pass --option estimator.weights=/path/to/{default_name} "
            f"({hint}; their licence forbids shipping them with omnibench)"
        )
    return path


def _fit(t: torch.Tensor, n: int) -> torch.Tensor:
    return t[:, :n] if t.shape[1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[1]))


class CropEncoderEstimator(Estimator):
    """Detect, crop, regress, convert (see the module docstring). Subclasses set ``crop_rule``, ``n_shape``,
    ``n_expression`` and implement :meth:`load_network` and :meth:`encode`.

    Options: ``weights`` (the user's file), ``detector`` (auto|fan|dlib), ``framing`` (the protocol's, filled in
    by the metrics: its focal is the one assumed for the converted camera), ``focal`` (overrides it)."""

    uses_framing = True
    crop_rule: CropRule
    n_shape: int
    n_expression: int

    def __init__(self, head_model: Any, device: str = "cpu", weights: str | None = None, detector: str = "auto",
                 framing: str = "v1", focal: float | None = None) -> None:
        super().__init__(head_model, device)
        self.path = self.weights_path(weights)
        self.sha256 = sha256_file(self.path) if self.path.is_file() else None
        self.net = self.load_network(self.path).to(self.device).eval()
        self.detector_kind = detector
        self._detector: Any = None
        self.focal = get_framing(framing).focal if focal is None else float(focal)
        self.framing = framing

    @abstractmethod
    def weights_path(self, weights: str | None) -> Path:
        """The user's weights file or folder (:func:`user_weights`)."""

    @abstractmethod
    def load_network(self, path: Path) -> torch.nn.Module:
        """Build the network and load the user's weights strictly."""

    @abstractmethod
    def encode(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        """224 px crops ``(B, 3, 224, 224)`` in [0, 1] -> ``shape``, ``expression``, ``global``, ``jaw``, ``cam``."""

    @property
    def detector(self) -> Any:
        if self._detector is None:
            self._detector = make_detector(self.detector_kind, str(self.device))
        return self._detector

    @torch.no_grad()
    def estimate(self, images: torch.Tensor) -> FlameEstimate:
        x = images_to_float(images)
        lms = self.detector(images)
        return self.estimate_from_landmarks(x, lms.points, lms.confidence, lms.detected)

    @torch.no_grad()
    def estimate_from_landmarks(self, x: torch.Tensor, points: torch.Tensor, confidence: torch.Tensor,
                                detected: torch.Tensor) -> FlameEstimate:
        """The estimate from float images ``x (B, 3, H, W)`` and their pixel landmarks ``(B, 68, 2)``."""
        b, width = x.shape[0], int(x.shape[-1])
        out = null_estimate(b, self.n_shape, self.n_expression)
        idx = torch.nonzero(detected).squeeze(1)
        if idx.numel() == 0:
            return out
        boxes = crop_boxes(points[idx], self.crop_rule)
        crops = warp_crops(x[idx].to(self.device), boxes.to(self.device))
        codes = {k: v.float().cpu() for k, v in self.encode(crops).items()}
        root, z_ref = self.root_and_depth(codes)
        camera = ortho_to_camera(codes["cam"], codes["global"], boxes, root, z_ref, self.focal, width, CROP_SIZE)
        pose = torch.zeros(idx.numel(), 15)
        pose[:, 6:9] = codes["jaw"]
        out.shape[idx], out.expression[idx] = codes["shape"], codes["expression"]
        out.pose[idx], out.camera[idx] = pose, camera
        out.confidence[idx] = confidence[idx].float()
        out.detected[idx] = True
        return out

    def root_and_depth(self, codes: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Root joint ``(B, 3)`` of the head model for the codes and the depth ``(B,)`` of its posed landmarks'
        centroid (the plane where the converted camera matches the orthographic one exactly)."""
        head = self.head_model
        pose = torch.zeros(codes["shape"].shape[0], 15)
        pose[:, 0:3], pose[:, 6:9] = codes["global"], codes["jaw"]
        dtype = head.template.dtype if hasattr(head, "template") else torch.float32
        dev = head.template.device if hasattr(head, "template") else torch.device("cpu")
        res = head(shape=_fit(codes["shape"], int(head.n_shape)).to(dev, dtype),
                   expression=_fit(codes["expression"], int(head.n_expression)).to(dev, dtype), pose=pose.to(dev, dtype))
        pts = res.landmarks if res.landmarks is not None else res.vertices
        return res.joints[:, 0].double().cpu(), pts[..., 2].double().mean(1).cpu()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256, "weights": self.path.name,
                "detector": getattr(self._detector, "name", self.detector_kind), "crop": self.crop_rule.to_dict(),
                "camera": {"model": "orthographic -> EG3D", "focal": self.focal, "framing": self.framing}}
