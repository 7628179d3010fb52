"""Contact sheets: a grid of a dataset's first images, written atomically as one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from omnibench.data.dataset import HeadDataset
from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_path


def contact_sheet(ds: HeadDataset, out: str | Path, n: int = 64, cols: int = 8, pad: int = 2) -> Path:
    """Tile ``min(n, len(ds))`` images ``cols`` per row (white padding) into ``out`` (PNG)."""
    if n < 1 or cols < 1:
        raise OmnibenchError(f"contact sheet needs n >= 1 and cols >= 1, got n={n}, cols={cols}")
    imgs = ds.images(range(min(n, len(ds)))).permute(0, 2, 3, 1).numpy()
    k, h, w, _ = imgs.shape
    rows = -(-k // cols)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        sheet[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = imgs[i]
    out = Path(out)
    with atomic_path(out) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG")
    return out
