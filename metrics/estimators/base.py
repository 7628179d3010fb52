"""FLAME estimator interface: images -> FLAME controls, with a confidence.

Conventions (those of :class:`omnibench.generators.base.Controls`):

* input ``images``: ``(B, 3, H, W)`` uint8 RGB (float in [0, 1] is accepted and converted);
* ``shape (B, S)``, ``expression (B, E)``: the first S / E coefficients the estimator recovers (S and E
  are the estimator's own widths; metrics compare the common leading columns);
* ``pose (B, 15)`` axis-angle ``[global|neck|jaw|leye|reye]`` radians. Head rotation relative to the
  camera is carried by ``camera`` and the global pose is left at zero (the generators' convention);
* ``camera (B, 25)`` EG3D labels (:mod:`omnibench.cameras`);
* ``confidence (B,)`` in [0, 1]; ``detected (B,)`` bool. Rows with ``detected == False`` hold the
  *null estimate* (zeros, frontal camera): metrics count them as failures and score them as if the
  estimator had predicted the population mean, so a failure is never silently dropped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any

import torch

from omnibench.cameras import DEFAULT_RADIUS, EG3D_FOCAL, orbit_camera
from omnibench.errors import OmnibenchError
from omnibench.generators.base import POSE_DIM


@dataclass
class FlameEstimate:
    """Per-image FLAME estimate; every tensor has batch dimension B first (float32, CPU)."""

    shape: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor
    camera: torch.Tensor
    confidence: torch.Tensor
    detected: torch.Tensor

    def __len__(self) -> int:
        return int(self.camera.shape[0])

    def validate(self) -> FlameEstimate:
        """Check shapes and dtypes; raises :class:`OmnibenchError` naming the offending field."""
        b = len(self)
        for f in fields(self):
            t = getattr(self, f.name)
            if not isinstance(t, torch.Tensor) or t.shape[0] != b:
                raise OmnibenchError(f"FlameEstimate.{f.name} must be a tensor with batch size {b}")
        if self.pose.shape[1:] != (POSE_DIM,) or self.camera.shape[1:] != (25,):
            raise OmnibenchError(
                f"FlameEstimate pose must be (B, 15) and camera (B, 25), got {tuple(self.pose.shape)} "
                f"and {tuple(self.camera.shape)}"
            )
        if self.detected.dtype != torch.bool:
            raise OmnibenchError("FlameEstimate.detected must be a bool tensor")
        return self

    def index(self, idx: slice | torch.Tensor | list[int]) -> FlameEstimate:
        return FlameEstimate(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def cat(items: list[FlameEstimate]) -> FlameEstimate:
        return FlameEstimate(**{f.name: torch.cat([getattr(e, f.name) for e in items]) for f in fields(FlameEstimate)})

    def with_failures_nulled(self) -> FlameEstimate:
        """Copy where undetected rows hold the null estimate (see module docstring)."""
        null = null_estimate(len(self), self.shape.shape[1], self.expression.shape[1])
        keep = self.detected
        out = {}
        for f in ("shape", "expression", "pose", "camera"):
            est, nul = getattr(self, f), getattr(null, f).to(getattr(self, f).dtype)
            out[f] = torch.where(keep[:, None], est, nul)
        return FlameEstimate(**out, confidence=self.confidence, detected=self.detected)


def null_estimate(batch: int, n_shape: int, n_expression: int) -> FlameEstimate:
    """The estimate standing for 'nothing recovered': zero coefficients, frontal default camera."""
    zeros = torch.zeros(batch)
    return FlameEstimate(
        shape=torch.zeros(batch, n_shape),
        expression=torch.zeros(batch, n_expression),
        pose=torch.zeros(batch, POSE_DIM),
        camera=orbit_camera(zeros, zeros, DEFAULT_RADIUS, EG3D_FOCAL),
        confidence=torch.zeros(batch),
        detected=torch.zeros(batch, dtype=torch.bool),
    )


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` uint8 or float in [0, 1] -> float32 in [0, 1]; anything else raises."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise OmnibenchError(f"estimator input must be a (B, 3, H, W) image tensor, got {shape}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if images.is_floating_point():
        return images.float().clamp(0, 1)
    raise OmnibenchError(f"estimator images must be uint8 or float, got {images.dtype}")


class Estimator(ABC):
    """Base class of FLAME estimators.

    Subclasses are built as ``Cls(head_model, device="cpu", **options)`` (``head_model`` is the
    :class:`omnibench.heads` model whose coefficients the estimate refers to) and implement
    :meth:`estimate`. ``describe()`` feeds the ``backbones`` block of a result file.
    """

    name: str = "estimator"
    version: int = 1
    # True: the metrics pass the protocol's camera framing (omnibench.cameras.FRAMINGS) as option ``framing``
    uses_framing: bool = False

    def __init__(self, head_model: Any, device: str | torch.device = "cpu", **options: Any) -> None:
        self.head_model = head_model
        self.device = torch.device(device)
        if options:
            raise OmnibenchError(f"estimator '{self.name}' takes no options {sorted(options)}")

    @abstractmethod
    def estimate(self, images: torch.Tensor) -> FlameEstimate:
        """Estimate FLAME controls for ``images (B, 3, H, W)`` uint8; deterministic, batch-size independent."""

    def describe(self) -> dict[str, Any]:
        """``{"name", "version", "sha256"}`` identifying the estimator and its weights."""
        return {"name": self.name, "version": self.version, "sha256": None}
