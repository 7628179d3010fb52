"""Identity-backbone contract and helpers shared by ``arcface``, ``dlib`` and ``synthetic``.

A backbone maps uint8 RGB images ``(B, 3, H, W)`` to unit-norm embeddings ``(B, D)`` float32 and a
``detected (B,)`` bool mask. Rows whose face was not found are zero and ``detected`` is False; metrics
count them as failures and never drop them silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from omnibench.errors import OmnibenchError


class IdentityBackbone(ABC):
    """Base class: set ``name``, ``sha256`` (of the weights that move the numbers) and ``dim``."""

    name: str = "backbone"
    sha256: str = ""
    dim: int = 0

    @abstractmethod
    def embed(self, images: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` uint8 ``(B, 3, H, W)`` RGB -> (embeddings ``(B, D)`` unit-norm float32, detected ``(B,)`` bool)."""

    def describe(self) -> dict[str, str]:
        """Provenance for ``MetricResult.backbones``."""
        return {"name": self.name, "sha256": self.sha256}


def as_uint8_nchw(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Validate and convert images to a C-contiguous uint8 ``(B, 3, H, W)`` numpy array."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise OmnibenchError(f"identity backbones take images of shape (B, 3, H, W); got {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise OmnibenchError(f"identity backbones take uint8 images; got {arr.dtype}")
    return np.ascontiguousarray(arr)


def normalize_rows(emb: np.ndarray, detected: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-normalise rows (zero rows where not detected) and return torch tensors."""
    emb = np.asarray(emb, dtype=np.float64)
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    ok = detected & (norm[:, 0] > 0) & np.isfinite(norm[:, 0])
    out = np.zeros_like(emb)
    out[ok] = emb[ok] / norm[ok]
    return torch.from_numpy(out.astype(np.float32)), torch.from_numpy(ok)
