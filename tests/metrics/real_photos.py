"""Real face photos that ship inside installed packages (offline-assets.md), cropped into test groups."""

from __future__ import annotations

import functools
import os

import cv2
import numpy as np
import torch

# Face boxes (x0, y0, x1, y1) of the six people in insightface's data/images/t1.jpg (dlib HOG, checked by eye).
T1_BOXES = (
    (1118, 283, 1226, 390),
    (67, 283, 175, 390),
    (724, 367, 832, 474),
    (450, 295, 557, 402),
    (870, 67, 999, 196),
    (275, 176, 364, 265),
)


def insightface_image(name: str) -> np.ndarray:
    """RGB uint8 HWC image from the insightface wheel's data/images folder."""
    import insightface

    path = os.path.join(os.path.dirname(insightface.__file__), "data", "images", name)
    return np.ascontiguousarray(cv2.imread(path)[:, :, ::-1])


def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


def crop_square(
    img: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.6, size: int = 256
) -> np.ndarray:
    x0, y0, x1, y1 = box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (1 + margin) * max(x1 - x0, y1 - y0) / 2
    h, w = img.shape[:2]
    a, b = int(max(0, cy - half)), int(min(h, cy + half))
    c, d = int(max(0, cx - half)), int(min(w, cx + half))
    return cv2.resize(img[a:b, c:d], (size, size), interpolation=cv2.INTER_AREA)


def variants(img: np.ndarray) -> list[np.ndarray]:
    """The same face: original, mirrored, 25% brighter."""
    return [
        img,
        np.ascontiguousarray(img[:, ::-1]),
        np.clip(img.astype(np.float32) * 1.25, 0, 255).astype(np.uint8),
    ]


@functools.lru_cache(maxsize=1)
def dlib_groups() -> tuple[torch.Tensor, int, int]:
    """``(N, 3, 256, 256)`` uint8: 3 variants each of the astronaut and four t1 people -> (images, groups, members)."""
    faces = [cv2.resize(astronaut()[0:400, 60:420], (256, 256), interpolation=cv2.INTER_AREA)]
    t1 = insightface_image("t1.jpg")
    faces += [crop_square(t1, b) for b in T1_BOXES[:4]]
    imgs = [v for f in faces for v in variants(f)]
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy()), len(faces), 3
