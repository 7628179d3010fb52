"""synthetic backbone: checkpoint loading, detection gating, pinning, and the training pieces."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import metrics.backbones.synthetic as synth
from metrics.backbones import train_synthetic as ts
from metrics.backbones.synthetic import EmbedNet, SyntheticBackbone, preprocess
from omnibench.errors import CheckpointError, MissingAssetError


@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = EmbedNet().eval()
    path = tmp_path_factory.mktemp("w") / "rand.pt"
    sha = ts.save_checkpoint(net, {"note": "random"}, path)
    return net, path, sha


def test_checkpoint_roundtrip_and_detection_gating(random_ckpt):
    net, path, sha = random_ckpt
    bb = SyntheticBackbone(str(path))
    assert bb.sha256 == sha and bb.dim == 64 and bb.name == "synthetic:rand.pt"
    imgs = torch.randint(
        0, 256, (5, 3, 48, 48), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    emb, det = bb.embed(imgs)
    # independent: the float16-rounded network run directly
    ref = EmbedNet().eval()
    ref.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    )
    with torch.no_grad():
        want_emb = ref(preprocess(imgs))
        want_det = ref.detect_logit(preprocess(imgs)) > 0
    assert det.tolist() == want_det.tolist()
    assert torch.allclose(emb[det], want_emb[det], atol=1e-5)
    assert (emb[~det] == 0).all()
    e1, d1 = bb.embed(imgs[:2])
    assert torch.equal(e1, emb[:2]) and torch.equal(d1, det[:2])  # batch-size independent


def test_pinned_weights_are_checked(random_ckpt, monkeypatch, tmp_path):
    _, path, sha = random_ckpt
    monkeypatch.setitem(synth.PINNED, "v1", (path, sha))
    assert SyntheticBackbone().sha256 == sha
    monkeypatch.setitem(synth.PINNED, "v1", (path, "0" * 64))
    with pytest.raises(CheckpointError, match="sha256"):
        SyntheticBackbone()
    with pytest.raises(MissingAssetError, match="train_synthetic"):
        SyntheticBackbone(str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(CheckpointError):
        SyntheticBackbone(str(bad))


def test_premultiplied_foreground_recovers_foreground():
    rng = np.random.default_rng(0)
    res = 16
    fg = rng.uniform(0, 1, (2, 3, res, res))
    mask = np.zeros((2, res, res))
    mask[:, 4:12, 3:13] = 1.0
    mask[:, 3, 3:13] = 0.5  # anti-aliased edge
    bg_rows = rng.uniform(0, 1, (2, 3, res, 1)) * np.ones((1, 1, 1, res))
    img = mask[:, None] * fg + (1 - mask[:, None]) * bg_rows
    out = ts.premultiplied_foreground(img, mask)
    assert np.abs(out / 255.0 - mask[:, None] * fg).max() <= 0.5 / 255 + 1e-9


def test_supcon_prefers_clustered_embeddings():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    clustered = torch.eye(3)[labels]
    rand = torch.nn.functional.normalize(torch.randn(6, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    assert ts.supcon(clustered, labels) < ts.supcon(rand, labels)


def test_augment_and_negatives_deterministic():
    rng_data = np.random.default_rng(0)
    fg = rng_data.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    mask = rng_data.integers(0, 256, (4, 32, 32), dtype=np.uint8)
    a1 = ts.augment(fg, mask, np.random.default_rng(3))
    a2 = ts.augment(fg, mask, np.random.default_rng(3))
    assert a1.dtype == np.uint8 and a1.shape == fg.shape and np.array_equal(a1, a2)
    n = ts.negatives(np.random.default_rng(4), 12, 32, fg, mask)
    assert n.shape == (12, 3, 32, 32) and n.dtype == np.uint8


def _blob_identities(start, n_ids, n_views, seed, res, log=print):
    """Stand-in for oracle renders: identity = blob colour and size; views shift the blob."""
    rng = np.random.default_rng(seed + start)
    fgs, masks, ids, raws = [], [], [], []
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    for i in range(start, start + n_ids):
        colour, radius = rng.uniform(0.1, 1, 3), rng.uniform(0.15, 0.4) * res
        for _ in range(n_views):
            cy, cx = res / 2 + rng.uniform(-3, 3, 2)
            m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2).astype(float)
            fg = m[None] * colour[:, None, None]
            fgs.append(np.round(fg * 255).astype(np.uint8))
            masks.append(np.round(m * 255).astype(np.uint8))
            raws.append(np.round((fg + (1 - m[None]) * 0.5) * 255).astype(np.uint8))
            ids.append(i)
    return {"fg": np.stack(fgs), "mask": np.stack(masks), "ids": np.asarray(ids), "raw": np.stack(raws)}


def test_training_loop_learns_identities(monkeypatch):
    monkeypatch.setattr(
        ts,
        "render_identities",
        lambda head, start, n, v, seed, res, log=print, framing="v1": _blob_identities(start, n, v, seed, res),
    )
    args = argparse.Namespace(
        head="blobs",
        identities=64,
        val_identities=16,
        views=3,
        resolution=32,
        epochs=15,
        batch_ids=16,
        lr=3e-3,
        width=8,
        seed=0,
        threads=1,
        det_weight=1.0,
        framing="v1",
    )
    r = ts.train(args, log=lambda *a: None)
    ev = r["eval"]
    assert ev["same_cos"] > ev["diff_cos"] + 0.3  # an untrained net: both ~1.0
    assert ev["rank1"] > 0.8  # chance: 2 / 47
    assert ev["detect_renders"] > 0.9 and ev["detect_nonheads"] < 0.8  # untrained: 1.0 and 1.0


def test_each_framing_has_pinned_weights_and_v2_protocols_use_theirs():
    from metrics.identity import framed_backbone_spec
    from omnibench.memory_context import InMemoryContext

    for framing, (path, sha) in synth.PINNED.items():
        bb = SyntheticBackbone(framing)  # verifies the pin
        assert bb.sha256 == sha and path.is_file() and path.stat().st_size < 1_000_000, framing
        meta = torch.load(path, map_location="cpu", weights_only=False).get("meta", {})
        assert framing == "v1" or f"--framing {framing}" in meta.get("command", ""), meta.get("command")
    assert SyntheticBackbone().sha256 == synth.WEIGHTS_SHA256
    v1, v2 = InMemoryContext({}, protocol="quick@1"), InMemoryContext({}, protocol="quick@2")
    assert framed_backbone_spec("synthetic", v1) == "synthetic" and framed_backbone_spec("synthetic", v2) == "synthetic:ffhq"
    assert framed_backbone_spec("arcface", v2) == "arcface"
