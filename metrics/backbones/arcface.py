"""``arcface``: insightface ONNX recognition models (buffalo_l's ``w600k_r50.onnx``, antelopev2, ...).

Model resolution (nothing is ever downloaded):

* ``ArcFaceBackbone("buffalo_l")`` -> ``~/.insightface/models/buffalo_l/`` (``root`` overrides
  ``~/.insightface/models``);
* a folder path -> the recognition model inside it;
* an ``.onnx`` path -> that recognition model (a detector is looked for in the same folder).

Inside a folder the recognition model is the ``.onnx`` file with a square input of 112 px (or a multiple
of 16 >= 112) and exactly one output; the detector is the SCRFD file (>= 5 outputs, e.g. ``det_10g.onnx``).

Cropping: with a detector, the highest-scoring face's 5 keypoints align the crop to insightface's ArcFace
template (``face_align.norm_crop``), as the field does; images without a detection are failures. Without
a detector, a fixed centre crop (``crop_box``, fractions of width/height; default the central 80%,
roughly the FFHQ/EG3D framing mapped to the ArcFace template) is resized to the model's input and every
image counts as detected. Pre-processing (mean/std, BGR order) follows insightface's ``ArcFaceONNX``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from metrics.backbones.base import IdentityBackbone, as_uint8_nchw, normalize_rows
from omnibench.assets import sha256_file as file_sha256
from omnibench.errors import MissingAssetError, OmnibenchError

DEFAULT_MODEL = "buffalo_l"
DEFAULT_CROP = (0.1, 0.1, 0.9, 0.9)  # (left, top, right, bottom) as fractions of width / height


def default_root() -> Path:
    return Path("~/.insightface/models").expanduser()


def _session(path: Path):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "2") or 2)
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _classify(path: Path) -> str:
    """'recognition', 'detection' or 'other' from the ONNX graph's inputs and outputs."""
    sess = _session(path)
    shape = sess.get_inputs()[0].shape
    n_out = len(sess.get_outputs())
    if n_out >= 5:
        return "detection"
    h, w = (shape[2], shape[3]) if len(shape) == 4 else (None, None)
    if n_out == 1 and isinstance(h, int) and h == w and h >= 112 and h % 16 == 0:
        return "recognition"
    return "other"


def resolve_model(
    model: str | os.PathLike = DEFAULT_MODEL, root: str | os.PathLike | None = None
) -> tuple[Path, Path | None]:
    """(recognition ``.onnx``, detector ``.onnx`` or None) for a model name, folder or file."""
    p = Path(model).expanduser()
    if p.suffix == ".onnx":
        if not p.is_file():
            raise MissingAssetError(f"arcface: ONNX file '{p}' does not exist")
        folder, rec = p.parent, p
    else:
        folder = (
            p if p.is_dir() else Path(root).expanduser() / str(model) if root else default_root() / str(model)
        )
        if not folder.is_dir():
            raise MissingAssetError(
                f"arcface: model folder '{folder}' not found; place insightface's '{model}' files there "
                f"(e.g. buffalo_l/w600k_r50.onnx) or pass a path to a recognition .onnx file; the identity metrics "
                f"also run offline with the 'dlib' backbone (id-views@dlib, id-expr@dlib)"
            )
        rec = None
    det = None
    for f in sorted(folder.glob("*.onnx")):
        kind = _classify(f)
        if kind == "recognition" and rec is None:
            rec = f
        elif kind == "detection" and det is None:
            det = f
    if rec is None:
        raise MissingAssetError(f"arcface: no recognition model (112x112 input, one output) in '{folder}'")
    return rec, det


class ArcFaceBackbone(IdentityBackbone):
    """ArcFace embeddings via onnxruntime on 112x112 crops (see module docstring)."""

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        root: str | os.PathLike | None = None,
        use_detector: bool = True,
        crop_box: tuple[float, float, float, float] = DEFAULT_CROP,
        det_size: int = 640,
        det_thresh: float = 0.5,
    ) -> None:
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        rec, det = resolve_model(model, root)
        self.rec_path, self.det_path = rec, det if use_detector else None
        self.rec = ArcFaceONNX(model_file=str(rec), session=_session(rec))
        self.input_size = int(self.rec.input_size[0])
        self.fixed_batch = isinstance(self.rec.input_shape[0], int)
        self.crop_box = tuple(float(c) for c in crop_box)
        if not (
            0 <= self.crop_box[0] < self.crop_box[2] <= 1 and 0 <= self.crop_box[1] < self.crop_box[3] <= 1
        ):
            raise OmnibenchError(
                f"arcface: crop_box must be (left, top, right, bottom) fractions; got {crop_box}"
            )
        self.detector = None
        if self.det_path is not None:
            from insightface.model_zoo.scrfd import SCRFD

            self.detector = SCRFD(model_file=str(self.det_path), session=_session(self.det_path))
            self.detector.prepare(-1, input_size=(det_size, det_size), det_thresh=det_thresh)
        self.det_size = det_size
        self.name = f"arcface:{rec.parent.name}/{rec.name}"
        rec_sha = file_sha256(rec)
        if self.detector is None:
            self.sha256 = rec_sha
        else:
            self.sha256 = hashlib.sha256(f"{rec_sha}:{file_sha256(self.det_path)}".encode()).hexdigest()
        self.rec_sha256 = rec_sha
        self.dim = int(self.rec.output_shape[1]) if isinstance(self.rec.output_shape[1], int) else 512

    def describe(self) -> dict[str, str]:
        d = {"name": self.name, "sha256": self.sha256, "recognition_sha256": self.rec_sha256}
        d["crop"] = "detector+norm_crop" if self.detector is not None else f"centre{list(self.crop_box)}"
        return d

    def crop(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """HWC uint8 RGB -> aligned/centre-cropped BGR crop of the model's input size, or None (no face)."""
        import cv2
        from insightface.utils import face_align

        bgr = np.ascontiguousarray(image_rgb[:, :, ::-1])
        s = self.input_size
        if self.detector is not None:
            _, kpss = self.detector.detect(bgr, input_size=(self.det_size, self.det_size), max_num=1)
            if kpss is None or len(kpss) == 0:
                return None
            return face_align.norm_crop(bgr, landmark=kpss[0], image_size=s)
        h, w = bgr.shape[:2]
        x0, y0, x1, y1 = self.crop_box
        c = bgr[int(round(y0 * h)) : int(round(y1 * h)), int(round(x0 * w)) : int(round(x1 * w))]
        interp = cv2.INTER_AREA if c.shape[0] > s else cv2.INTER_LINEAR
        return cv2.resize(c, (s, s), interpolation=interp)

    def embed(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        arr = as_uint8_nchw(images)
        b = arr.shape[0]
        emb = np.zeros((b, self.dim), dtype=np.float64)
        detected = np.zeros(b, dtype=bool)
        crops, rows = [], []
        for i in range(b):
            c = self.crop(arr[i].transpose(1, 2, 0))
            if c is not None:
                crops.append(c)
                rows.append(i)
        if crops:
            if self.fixed_batch:
                feats = np.concatenate([self.rec.get_feat([c]) for c in crops])
            else:
                feats = self.rec.get_feat(crops)
            emb[rows] = feats.reshape(len(crops), -1)
            detected[rows] = True
        return normalize_rows(emb, detected)
