"""Identity consistency: ``id-views`` (same latent and controls, different cameras) and ``id-expr``
(same latent and shape, different expression and jaw, fixed camera).

Definition (EG3D "multi-view consistency" style): embed every image of a sample set with an identity
backbone (:mod:`metrics.backbones`), take the cosine similarity of every pair of members inside a group
(same latent), average the pairs of a group, then average the groups. The bootstrap interval resamples
groups (:func:`metrics.intervals.ci95`: the protocol's ``bootstrap`` resamples, seed ``ctx.seed``). Images
whose face is not detected count in ``failures``; pairs involving them are left out of
the mean and counted in ``details["failed_pairs"]`` (a group without any valid pair contributes nothing).

Variants (the scale and, optionally, the backbone):

* ``cos``  (default): mean raw cosine in [-1, 1] (EG3D, Carver);
* ``cos01``: ``(cos + 1) / 2`` in [0, 1] (EGG3D's ``cos*0.5+0.5``; not comparable with raw cosine);
* ``arcface``, ``dlib``, ``synthetic`` and ``<backbone>-cos01``: the same with that backbone forced.

Backbone of ``cos``/``cos01``: ``ctx.options["identity_backbone"]`` (``--option identity_backbone=NAME``)
when set, else ``synthetic`` when the generator's head model is the synthetic head (``ctx.generator_head``
``synthetic...``, or a head model named ``synthflame...``), else
``arcface`` (buffalo_l from ``~/.insightface/models``). ``synthetic`` means the weights trained on the
protocol's camera framing (:data:`metrics.backbones.synthetic.PINNED`). The backbone's name and weights sha256
go into the result.

Details: ``baseline`` is the same statistic between *different* latents (member ``m`` of group ``g``
against member ``m`` of the next group: same camera/controls slot, other identity), ``separation`` =
value - baseline; a useful metric has a clearly positive separation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from metrics.backbones import IdentityBackbone, load_backbone
from metrics.intervals import ci95
from omnibench.errors import OmnibenchError
from omnibench.metric_api import Metric, MetricContext, MetricResult

BACKBONE_NAMES = ("arcface", "dlib", "synthetic")
SYNTHETIC_HEAD_PREFIXES = ("synthetic", "synthflame")  # head-model names of the synthetic profile
EMBED_CHUNK = 32  # fixed chunk, so results never depend on ctx.batch_size


def _variants(what: str) -> dict[str, str]:
    v = {
        "cos": f"mean raw cosine similarity of face embeddings {what} (context's default backbone)",
        "cos01": f"(cos + 1) / 2 {what}, as EGG3D reports (context's default backbone)",
    }
    for b in BACKBONE_NAMES:
        v[b] = f"mean raw cosine {what}, backbone '{b}'"
        v[f"{b}-cos01"] = f"(cos + 1) / 2 {what}, backbone '{b}'"
    return v


def default_backbone_spec(ctx: MetricContext) -> str | IdentityBackbone:
    """The context's identity backbone (see module docstring)."""
    spec = ctx.options.get("identity_backbone")
    if spec:
        return spec
    head_spec = ctx.generator_head
    if isinstance(head_spec, str) and head_spec.startswith("synthetic"):
        return "synthetic"
    try:
        head = ctx.head_model()
    except Exception:  # noqa: BLE001 - no head model known: fall back to the field's standard
        head = None
    head_name = str(getattr(head, "name", "") or "")
    return "synthetic" if head_name.startswith(SYNTHETIC_HEAD_PREFIXES) else "arcface"


def framed_backbone_spec(spec: str | IdentityBackbone, ctx: MetricContext) -> str | IdentityBackbone:
    """``synthetic`` -> ``synthetic:FRAMING`` (that framing's shipped weights) under a protocol whose cameras
    are not framed as v1; other specs pass through."""
    framing = ctx.protocol.camera.framing.name
    return f"synthetic:{framing}" if spec == "synthetic" and framing != "v1" else spec


def parse_variant(variant: str) -> tuple[str | None, bool]:
    """``"dlib-cos01"`` -> ("dlib", True); ``"cos"`` -> (None, False)."""
    scale01 = variant.endswith("cos01")
    head = variant[: -len("cos01")].rstrip("-") if scale01 else variant
    backbone = None if head in ("", "cos") else head
    if backbone is not None and backbone not in BACKBONE_NAMES:
        raise OmnibenchError(f"unknown identity variant '{variant}'")
    return backbone, scale01


def embed_all(backbone: IdentityBackbone, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``(N, D)`` float64 and detected ``(N,)`` bool, in fixed chunks."""
    embs, dets = [], []
    for i in range(0, images.shape[0], EMBED_CHUNK):
        e, d = backbone.embed(images[i : i + EMBED_CHUNK])
        embs.append(e.detach().cpu().numpy().astype(np.float64))
        dets.append(d.detach().cpu().numpy().astype(bool))
    if not embs:
        return np.zeros((0, getattr(backbone, "dim", 0))), np.zeros(0, dtype=bool)
    return np.concatenate(embs), np.concatenate(dets)


def grouped_similarity(
    emb: np.ndarray, detected: np.ndarray, group: np.ndarray, member: np.ndarray
) -> dict[str, Any]:
    """Within-group pairwise cosines and the different-latent baseline.

    Returns ``group_means`` (one per group with >= 1 valid pair), ``pair_cos`` (all valid within-group
    pairs), ``failed_pairs``, ``n_pairs``, ``baseline_cos`` (valid cross-group pairs).
    """
    groups = np.unique(group)
    group_means, pair_cos, failed, n_pairs = [], [], 0, 0
    by_group: list[np.ndarray] = []
    for g in groups:
        idx = np.flatnonzero(group == g)
        idx = idx[np.argsort(member[idx], kind="stable")]
        by_group.append(idx)
        cos_g = []
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                n_pairs += 1
                i, j = idx[a], idx[b]
                if detected[i] and detected[j]:
                    cos_g.append(float(emb[i] @ emb[j]))
                else:
                    failed += 1
        if cos_g:
            group_means.append(float(np.mean(cos_g)))
            pair_cos.extend(cos_g)
    baseline = []
    if len(groups) >= 2:
        for k in range(len(groups)):
            ia, ib = by_group[k], by_group[(k + 1) % len(groups)]
            if len(groups) == 2 and k == 1:
                break  # the pair (g1, g0) repeats (g0, g1)
            mb = {int(member[j]): j for j in ib}
            for i in ia:
                j = mb.get(int(member[i]))
                if j is not None and detected[i] and detected[j]:
                    baseline.append(float(emb[i] @ emb[j]))
    return {
        "group_means": np.asarray(group_means),
        "pair_cos": np.asarray(pair_cos),
        "failed_pairs": failed,
        "n_pairs": n_pairs,
        "baseline_cos": np.asarray(baseline),
    }


def _as_numpy_ids(x: Any, n: int, name: str) -> np.ndarray:
    if x is None:
        raise OmnibenchError(f"identity metrics need per-sample '{name}' ids in the sample set")
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.shape != (n,):
        raise OmnibenchError(f"sample '{name}' ids must have shape ({n},), got {arr.shape}")
    return arr


class _IdentityMetric(Metric):
    higher_is_better = True
    version = 1
    default_variant = "cos"
    sample_set = "views"

    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        backbone_name, scale01 = parse_variant(variant)
        backbone = load_backbone(framed_backbone_spec(backbone_name or default_backbone_spec(ctx), ctx))
        s = ctx.samples(self.sample_set)
        images = s.images
        n = int(images.shape[0])
        group = _as_numpy_ids(s.group, n, "group")
        member = _as_numpy_ids(s.member, n, "member")
        emb, detected = ctx.memo(
            ("identity-embed", self.sample_set, backbone.name, backbone.sha256, n),
            lambda: embed_all(backbone, images),
        )
        r = grouped_similarity(emb, detected, group, member)

        def scale(x: np.ndarray) -> np.ndarray:
            return (x + 1.0) / 2.0 if scale01 else x

        gm = scale(r["group_means"])
        base = scale(r["baseline_cos"])
        value = float(gm.mean()) if gm.size else None
        baseline = float(base.mean()) if base.size else None
        details = {
            "sample_set": self.sample_set,
            "scale": "(cos+1)/2" if scale01 else "cos",
            "n_images": n,
            "n_groups": int(np.unique(group).size),
            "n_pairs": r["n_pairs"],
            "valid_pairs": int(r["pair_cos"].size),
            "failed_pairs": r["failed_pairs"],
            "detection_rate": float(detected.mean()) if n else None,
            "baseline": baseline,
            "baseline_pairs": int(base.size),
            "separation": (value - baseline) if value is not None and baseline is not None else None,
            "pair_std": float(scale(r["pair_cos"]).std()) if r["pair_cos"].size else None,
        }
        return MetricResult(
            value=value,
            n=int(gm.size),
            ci95=ci95(ctx, gm),
            failures=int((~detected).sum()),
            details=details,
            backbones={"identity": backbone.describe()},
        )


class IdViews(_IdentityMetric):
    """Same latent and controls, cameras from the protocol's view list (``views`` set)."""

    name = "id-views"
    requires = ("views",)
    controls = ("camera",)
    sample_set = "views"
    variants = _variants("between views of one latent")


class IdExpr(_IdentityMetric):
    """Same latent and shape, expression and jaw vary, fixed camera (``expr`` set; OmniAvatar's grouping)."""

    name = "id-expr"
    requires = ("expr",)
    controls = ("expression",)
    sample_set = "expr"
    variants = _variants("between expressions of one latent")
