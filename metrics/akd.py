"""``akd`` (average keypoint distance): 68 landmarks detected on each generated image against the 68
landmarks of the *requested* controls' head mesh projected with the sample's camera; no FLAME estimator.

For every sample of the ``main`` set:

* target: the head model's iBUG-68 landmarks (dynamic contour + static 51, ``HeadOutput.landmarks``) of the
  given shape, expression and pose, projected with the given camera (:func:`omnibench.cameras.project`)
  at the image resolution; the dynamic contour is chosen for the head as the camera sees it (the camera's
  rotation folded into the head's global pose, :func:`requested_landmarks`);
* detection: an offline 68-point detector (:mod:`metrics.estimators.landmarks`: FAN when its weights are
  present, else dlib; ``--option landmark_detector=auto|fan|dlib|package.module:Class``);
* per-sample value: the mean over the variant's points of ``|detected - target|`` in pixels, divided by
  the target's inter-ocular distance (outer eye corners, iBUG 36 and 45), as 300-W's normalised error.

Variants: ``whole``* (all 68), ``mouth`` (iBUG 48-67), ``eyes`` (iBUG 36-47). Lower is better; unit: the
inter-ocular distance (``iod``). A detector failure is counted in ``failures`` and scored with the
*null landmarks* (mean shape, neutral expression and pose, seen by the protocol framing's frontal camera),
as AED scores a failure with the null estimate; ``details.value_detected_only`` gives the detected samples
alone. It checks expression, jaw and pose (camera) control at once and means the same for every generator
of one head model; its floor is the detector's disagreement with the head model's landmark embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from metrics.control_math import axis_angle_to_matrix, head_in_frontal_pose, matrix_to_axis_angle
from metrics.estimators.landmarks import Landmarks2D, make_detector
from metrics.intervals import ci95
from omnibench.cameras import get_framing, project
from omnibench.errors import OmnibenchError
from omnibench.metric_api import Metric, MetricContext, MetricResult
from omnibench.registry import load_object

GROUPS: dict[str, tuple[int, int]] = {"whole": (0, 68), "mouth": (48, 68), "eyes": (36, 48)}
OUTER_EYE_CORNERS = (36, 45)  # iBUG: right eye outer corner (image left), left eye outer corner


@dataclass
class KeypointPairs:
    """Detected and requested landmarks of the ``main`` set, pixels ``(N, 68, 2)``; failures hold the null
    landmarks in ``scored``."""

    detected_points: torch.Tensor
    target: torch.Tensor
    scored: torch.Tensor
    detected: torch.Tensor  # (N,) bool
    iod: torch.Tensor  # (N,) target inter-ocular distance, pixels
    detector: str


def requested_landmarks(head: Any, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                        camera: torch.Tensor, resolution: int, batch_size: int = 64) -> torch.Tensor:
    """Pixel landmarks ``(N, 68, 2)`` of the head model for the given controls seen by ``camera``.

    The head is posed with the camera's view composed with its requested global rotation (so the dynamic
    contour follows the silhouette the camera sees), then the view is undone rigidly about the root joint,
    which leaves every point where the requested pose puts it."""
    n_s, n_e = int(head.n_shape), int(head.n_expression)
    out = []
    with torch.no_grad():
        for i in range(0, shape.shape[0], batch_size):
            sl = slice(i, i + batch_size)
            p = pose[sl].double().clone()
            r = axis_angle_to_matrix(head_in_frontal_pose(camera[sl]))  # the view, as a rotation of the head
            p[:, 0:3] = matrix_to_axis_angle(r @ axis_angle_to_matrix(p[:, 0:3]))  # any requested global pose kept
            dtype = head.template.dtype if hasattr(head, "template") else torch.float32
            res = head(shape=_fit(shape[sl], n_s).to(dtype), expression=_fit(expression[sl], n_e).to(dtype),
                       pose=p.to(dtype))
            if res.landmarks is None:
                raise OmnibenchError(f"head model '{getattr(head, 'name', head)}' has no landmark embedding: akd needs one")
            root = res.joints[:, 0].double()
            world = torch.einsum("bij,bkj->bki", r.transpose(1, 2), res.landmarks.double() - root[:, None]) + root[:, None]
            px, _ = project(world, camera[sl].double(), resolution)
            out.append(px.float())
    return torch.cat(out)


def _fit(t: torch.Tensor, n: int) -> torch.Tensor:
    t = t.double()
    return t[:, :n] if t.shape[1] >= n else torch.nn.functional.pad(t, (0, n - t.shape[1]))


def make_landmark_detector(spec: str, device: str = "cpu") -> Any:
    """``auto``/``fan``/``dlib`` (:func:`metrics.estimators.landmarks.make_detector`) or ``package.module:Class``
    (built without arguments; called on uint8 images ``(B, 3, H, W)``, returns :class:`Landmarks2D`)."""
    if ":" in spec:
        return load_object(spec)()
    return make_detector(spec, device)


def keypoint_pairs(ctx: MetricContext) -> KeypointPairs:
    """Detect once per context (memoised: the three variants share it)."""
    spec = str(ctx.options.get("landmark_detector", "auto"))
    return ctx.memo(("akd-keypoints", "main", spec), lambda: _keypoint_pairs(ctx, spec))


def _keypoint_pairs(ctx: MetricContext, spec: str) -> KeypointPairs:
    samples = ctx.samples("main")
    head = ctx.head_model()
    res = int(samples.images.shape[-1])
    if samples.images.shape[-2] != res:
        raise OmnibenchError(f"akd needs square images, got {tuple(samples.images.shape[-2:])}")
    detector = make_landmark_detector(spec, ctx.device)
    parts = [detector(samples.images[i : i + ctx.batch_size]) for i in range(0, len(samples), max(1, ctx.batch_size))]
    if not parts:
        raise OmnibenchError("the 'main' sample set is empty: nothing to detect")
    det = Landmarks2D(*(torch.cat([getattr(p, f) for p in parts]) for f in ("points", "confidence", "detected")))
    c = samples.controls
    target = requested_landmarks(head, c.shape, c.expression, c.pose, c.camera, res)
    framing = get_framing(ctx.protocol.camera.framing.name)
    zeros = torch.zeros(1)
    null_cam = framing.orbit(zeros, zeros)
    null = requested_landmarks(head, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 15), null_cam, res)
    scored = torch.where(det.detected[:, None, None], det.points.float(), null.expand_as(target))
    a, b = OUTER_EYE_CORNERS
    iod = (target[:, a] - target[:, b]).norm(dim=-1)
    name = getattr(detector, "name", type(detector).__name__)
    return KeypointPairs(det.points.float(), target, scored, det.detected.bool(), iod, str(name))


def per_sample_keypoint_distance(points: torch.Tensor, target: torch.Tensor, iod: torch.Tensor, group: str) -> torch.Tensor:
    """Mean ``|points - target|`` over the ``group``'s landmarks divided by ``iod``, per sample ``(N,)`` float64."""
    lo, hi = GROUPS[group]
    d = (points[:, lo:hi].double() - target[:, lo:hi].double()).norm(dim=-1).mean(1)
    return d / iod.double().clamp_min(1e-6)


class AKD(Metric):
    """Average keypoint distance between detected and requested landmarks, in inter-ocular distances."""

    name = "akd"
    version = 1
    higher_is_better = False
    requires = ("main",)
    default_variant = "whole"
    unit = "iod"
    variants = {
        "whole": "mean distance over all 68 iBUG landmarks / inter-ocular distance",
        "mouth": "mean distance over the 20 mouth landmarks (iBUG 48-67) / inter-ocular distance",
        "eyes": "mean distance over the 12 eye landmarks (iBUG 36-47) / inter-ocular distance",
    }

    @classmethod
    def required_controls(cls, variant: str) -> frozenset[str]:
        """The controls that move the variant's requested landmarks: every landmark moves with the camera, shape,
        expression and neck; the whole face and the mouth with the jaw too. A generator that ignores one of them
        (plain EG3D: the camera only) gets ``not_applicable``, as for AED, not a distance that looks like failed
        control."""
        base = {"camera", "shape", "expression", "neck"}
        return frozenset(base if variant == "eyes" else base | {"jaw"})

    @staticmethod
    def _kind(variant: str) -> str:
        """How per-sample values aggregate (the control metrics' interface): a plain mean."""
        return "mean"

    @classmethod
    def check(cls, ctx: MetricContext, variant: str) -> None:
        spec = str(ctx.options.get("landmark_detector", "auto"))
        if ":" not in spec and spec not in ("auto", "fan", "dlib"):
            raise OmnibenchError(f"unknown landmark_detector '{spec}' (auto, fan, dlib or package.module:Class)")

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        return self.compute_with_values(ctx, variant)[0]

    def compute_with_values(self, ctx: MetricContext, variant: str) -> tuple[MetricResult, torch.Tensor]:
        if variant not in self.variants:
            raise OmnibenchError(f"unknown variant '{variant}' of 'akd'; available: {', '.join(self.variants)}")
        pairs = keypoint_pairs(ctx)
        values = per_sample_keypoint_distance(pairs.scored, pairs.target, pairs.iod, variant)
        detected = pairs.detected
        failures = int((~detected).sum())
        only = float(values[detected].mean()) if bool(detected.any()) else None
        result = MetricResult(
            value=float(values.mean()),
            n=int(values.shape[0]),
            ci95=ci95(ctx, values.numpy()),
            failures=failures,
            details={"detector": pairs.detector, "landmarks": list(GROUPS[variant]),
                     "failure_rate": failures / max(1, len(detected)), "value_detected_only": only,
                     "mean_iod_px": float(pairs.iod.mean())},
            backbones={"landmarks": {"name": pairs.detector, "sha256": None}},
            unit=self.unit,
        )
        return result, values
