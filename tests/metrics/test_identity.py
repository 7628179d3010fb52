"""id-views / id-expr on fake contexts with a known answer, and on real photos with the dlib backbone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.backbones.base import IdentityBackbone, normalize_rows
from metrics.identity import IdExpr, IdViews, default_backbone_spec, grouped_similarity, parse_variant
from omnibench.metric_api import parse_metric_spec
from tests.metrics.idmv_fakes import FakeCtx, controls_for, grouped_set
from tests.metrics.real_photos import dlib_groups


class PixelBackbone(IdentityBackbone):
    """Embedding = the centred image itself; 'detected' unless the image is all black."""

    name, sha256 = "pixels", "x"

    def embed(self, images):
        x = images.reshape(images.shape[0], -1).double().numpy()
        x = x - x.mean(1, keepdims=True)
        return normalize_rows(x, images.reshape(images.shape[0], -1).amax(1).numpy() > 0)


def _set(images, n_groups, n_members, name="views"):
    assert len(images) == n_groups * n_members
    return grouped_set(name, images, controls_for(torch.zeros(len(images), 25)), n_members)


def _identical_views(n_groups=6, n_members=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (n_groups, 3, 16, 16), generator=gen, dtype=torch.uint8)
    return base.repeat_interleave(n_members, 0)


def test_identical_views_score_one_and_baseline_low():
    imgs = _identical_views()
    ctx = FakeCtx(sets={"views": _set(imgs, 6, 3)}, options={"identity_backbone": PixelBackbone()})
    r = IdViews().compute(ctx, "cos")
    assert r.value == pytest.approx(1.0, abs=1e-6)
    assert r.n == 6 and r.failures == 0 and r.details["valid_pairs"] == 18
    assert abs(r.details["baseline"]) < 0.1  # independent noise images
    assert r.details["separation"] > 0.9
    assert r.backbones["identity"]["name"] == "pixels"
    r01 = IdViews().compute(ctx, "cos01")
    assert r01.value == pytest.approx((r.value + 1) / 2) and r01.details["baseline"] == pytest.approx(
        (r.details["baseline"] + 1) / 2
    )


def test_different_identity_images_score_low_and_match_numpy():
    gen = torch.Generator().manual_seed(1)
    imgs = torch.randint(
        0, 256, (8, 3, 16, 16), generator=gen, dtype=torch.uint8
    )  # every image its own identity
    ctx = FakeCtx(sets={"expr": _set(imgs, 4, 2, "expr")}, options={"identity_backbone": PixelBackbone()})
    r = IdExpr().compute(ctx, "cos")
    e, _ = PixelBackbone().embed(imgs)
    e = e.double().numpy()
    expected = np.mean([e[2 * k] @ e[2 * k + 1] for k in range(4)])
    assert r.value == pytest.approx(expected, abs=1e-6)
    assert abs(r.value) < 0.15


def test_undetected_faces_are_failures_not_dropped():
    imgs = _identical_views(4, 2).clone()
    imgs[1] = 0  # group 0, member 1: no face
    ctx = FakeCtx(sets={"views": _set(imgs, 4, 2)}, options={"identity_backbone": PixelBackbone()})
    r = IdViews().compute(ctx, "cos")
    assert r.failures == 1 and r.details["failed_pairs"] == 1 and r.n == 3
    assert r.details["detection_rate"] == pytest.approx(7 / 8)


def test_batch_size_does_not_change_the_number():
    noise = torch.randint(
        0, 60, (30, 3, 16, 16), generator=torch.Generator().manual_seed(5), dtype=torch.uint8
    )
    imgs = (_identical_views(10, 3) // 2 + noise).to(torch.uint8)
    vals = []
    for bs in (1, 7):
        ctx = FakeCtx(
            sets={"views": _set(imgs, 10, 3)}, options={"identity_backbone": PixelBackbone()}, batch_size=bs
        )
        r = IdViews().compute(ctx, "cos")
        vals.append((r.value, r.ci95, r.details["baseline"]))
    assert vals[0] == vals[1]


def test_grouped_similarity_baseline_pairs_same_member_slot():
    emb = np.eye(4)
    emb[1] = emb[0]
    r = grouped_similarity(emb, np.ones(4, bool), np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]))
    assert r["group_means"].tolist() == [1.0, 0.0]
    assert r["baseline_cos"].tolist() == [0.0, 0.0]  # (g0,m0)-(g1,m0), (g0,m1)-(g1,m1), no duplicates


def test_variants_and_backbone_choice():
    assert parse_variant("cos") == (None, False)
    assert parse_variant("dlib-cos01") == ("dlib", True)
    assert parse_variant("synthetic") == ("synthetic", False)
    cls, var = parse_metric_spec("id-views@arcface-cos01")
    assert cls is IdViews and var == "arcface-cos01"
    assert parse_metric_spec("id-expr")[1] == "cos"

    class Head:
        name = "synthetic:tiny"

    assert default_backbone_spec(FakeCtx(sets={}, head=Head())) == "synthetic"
    Head.name = "synthflame-small-seed0"
    assert default_backbone_spec(FakeCtx(sets={}, head=Head())) == "synthetic"
    Head.name = "flame2020"
    assert default_backbone_spec(FakeCtx(sets={}, head=Head())) == "arcface"
    assert default_backbone_spec(FakeCtx(sets={}, head=None)) == "arcface"
    assert default_backbone_spec(FakeCtx(sets={}, options={"identity_backbone": "dlib"})) == "dlib"


def test_id_views_dlib_on_real_photos():
    """Groups of one real person (flip / brightness / crop variants); different groups are different people."""
    images, n_groups, n_members = dlib_groups()
    ctx = FakeCtx(sets={"views": _set(images, n_groups, n_members)})
    r = IdViews().compute(ctx, "dlib")
    assert r.failures == 0, r.details
    assert r.value > 0.96
    assert r.details["baseline"] < 0.92
    assert r.backbones["identity"]["sha256"].startswith("55533b28")
    r01 = IdViews().compute(ctx, "dlib-cos01")
    assert r01.value == pytest.approx((r.value + 1) / 2)


def test_variants_share_embeddings_within_a_context():
    calls = []

    class Counting(PixelBackbone):
        def embed(self, images):
            calls.append(len(images))
            return super().embed(images)

    imgs = _identical_views(4, 2)
    ctx = FakeCtx(sets={"views": _set(imgs, 4, 2)}, options={"identity_backbone": Counting()})
    a = IdViews().compute(ctx, "cos")
    b = IdViews().compute(ctx, "cos01")
    assert sum(calls) == len(imgs)  # embedded once for both variants
    assert b.value == pytest.approx((a.value + 1) / 2)
