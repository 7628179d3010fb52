"""68-point (iBUG) 2D face landmark detectors that run offline.

* ``fan``:  face-alignment's 2D-FAN-4 with its S3FD face detector, used when both weight files are in
  ``torch.hub.get_dir()/checkpoints`` (``2DFAN4-11f355bf06.pth.tar``, ``s3fd-619a316812.pth``); nothing is
  downloaded.
* ``dlib``: dlib's HOG frontal face detector + ``shape_predictor_68_face_landmarks.dat`` from the
  ``face_recognition_models`` wheel (found with ``importlib.util.find_spec``: importing that package
  needs the removed ``pkg_resources``).

:func:`make_detector` (``"auto"``) picks FAN when its weights are present, else dlib. Output: pixel
coordinates ``(B, 68, 2)`` (x right, y down, pixel centres at +0.5, in the input image's resolution),
``confidence (B,)`` in [0, 1] and ``detected (B,)``; undetected rows are zeros. When an image holds several
faces, the largest is used.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omnibench.errors import MissingAssetError, OmnibenchError

FAN_FILES = ("2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth")
DLIB_PREDICTOR = "shape_predictor_68_face_landmarks.dat"
MIN_DETECT_RES = 256  # dlib's HOG window is 80 px: smaller images are upscaled before detection


@dataclass
class Landmarks2D:
    points: torch.Tensor  # (B, 68, 2) pixels
    confidence: torch.Tensor  # (B,)
    detected: torch.Tensor  # (B,) bool


def fan_available() -> bool:
    ckpt = Path(torch.hub.get_dir()) / "checkpoints"
    return all((ckpt / f).is_file() for f in FAN_FILES)


def dlib_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError("dlib landmark model not found: pip install face-recognition-models==0.3.0")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _to_hwc_uint8(images: torch.Tensor) -> list[np.ndarray]:
    if images.dtype != torch.uint8:
        images = (images.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return [np.ascontiguousarray(im.permute(1, 2, 0).cpu().numpy()) for im in images]


class DlibLandmarks:
    """dlib HOG detector + 68-point shape predictor (CPU, deterministic)."""

    name = "dlib"

    def __init__(self, min_score: float = 0.0) -> None:
        import dlib

        path = dlib_models_dir() / DLIB_PREDICTOR
        if not path.is_file():
            raise MissingAssetError(f"dlib 68-point predictor not found at {path}")
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(path))
        self.min_score = min_score
        self._dlib = dlib

    def __call__(self, images: torch.Tensor) -> Landmarks2D:
        pts, conf, det = [], [], []
        for img in _to_hwc_uint8(images):
            h = img.shape[0]
            scale = max(1.0, MIN_DETECT_RES / h)
            if scale > 1:
                from PIL import Image

                size = (round(img.shape[1] * scale), round(h * scale))
                img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
            rects, scores, _ = self.detector.run(img, 0, self.min_score)
            if not rects:
                pts.append(np.zeros((68, 2)))
                conf.append(0.0)
                det.append(False)
                continue
            k = int(np.argmax([r.width() * r.height() for r in rects]))
            shape = self.predictor(img, rects[k])
            p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], dtype=np.float64)
            pts.append((p + 0.5) / scale)  # dlib: integer pixel indices -> pixel-centre coordinates
            conf.append(1.0 / (1.0 + math.exp(-2.0 * float(scores[k]))))
            det.append(True)
        return Landmarks2D(torch.tensor(np.stack(pts), dtype=torch.float32), torch.tensor(conf), torch.tensor(det))


class FanLandmarks:
    """face-alignment 2D-FAN-4 + S3FD (weights from torch.hub's checkpoints folder only)."""

    name = "fan"

    def __init__(self, device: str = "cpu") -> None:
        if not fan_available():
            raise MissingAssetError(
                f"face-alignment weights not found in {Path(torch.hub.get_dir()) / 'checkpoints'}: place "
                f"{' and '.join(FAN_FILES)} there, or use the dlib landmarks"
            )
        import face_alignment

        self.fa = face_alignment.FaceAlignment(
            face_alignment.LandmarksType.TWO_D, device=str(device), flip_input=False, compile=False
        )

    def __call__(self, images: torch.Tensor) -> Landmarks2D:
        pts, conf, det = [], [], []
        for img in _to_hwc_uint8(images):
            out = self.fa.get_landmarks_from_image(img, return_landmark_score=True, return_bboxes=True)
            lms, scores, boxes = out
            if not lms:
                pts.append(np.zeros((68, 2)))
                conf.append(0.0)
                det.append(False)
                continue
            k = int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
            pts.append(np.asarray(lms[k])[:, :2] + 0.5)
            conf.append(float(np.clip(np.mean(scores[k]), 0, 1)))
            det.append(True)
        return Landmarks2D(torch.tensor(np.stack(pts), dtype=torch.float32), torch.tensor(conf), torch.tensor(det))


def make_detector(kind: str = "auto", device: str = "cpu") -> DlibLandmarks | FanLandmarks:
    """``auto`` (FAN if its weights are present, else dlib), ``fan`` or ``dlib``."""
    if kind == "auto":
        kind = "fan" if fan_available() else "dlib"
    if kind == "fan":
        return FanLandmarks(device)
    if kind == "dlib":
        return DlibLandmarks()
    raise OmnibenchError(f"unknown landmark detector '{kind}' (auto, fan, dlib)")
