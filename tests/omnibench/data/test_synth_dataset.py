"""Synthetic dataset: sampler distribution, determinism across workers, reader round trip, errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omnibench.cameras import yaw_pitch_of
from omnibench.cli import main
from omnibench.data.control_prior import controls_for_prior, sample_wide_controls, sample_wide_pair_controls
from omnibench.data.dataset import HeadDataset
from omnibench.data.synth import sample_controls, sample_latents, synthesize_dataset
from omnibench.errors import MissingAssetError, OmnibenchError

HEAD = "synthetic:tiny"


@pytest.fixture(scope="module")
def tiny_head():
    from omnibench.heads import load_head_model

    return load_head_model(HEAD)


LAYOUT = SimpleNamespace(n_shape=300, n_expression=100)  # all the sampler needs from a head model


def test_sample_controls_depend_only_on_seed_and_index():
    tiny_head = LAYOUT
    whole = sample_controls(10, 5, tiny_head)
    parts = [sample_controls(4, 5, tiny_head), sample_controls(6, 5, tiny_head, start_index=4)]
    for k in ("camera", "shape", "expression", "pose"):
        assert torch.equal(getattr(whole, k), torch.cat([getattr(p, k) for p in parts]))
    assert not torch.equal(sample_controls(10, 6, tiny_head).shape, whole.shape)
    assert torch.equal(sample_latents(5, 1, 64, start_index=3), sample_latents(8, 1, 64)[3:])


def test_sample_controls_distribution():
    c = sample_controls(3000, 0, LAYOUT)
    assert c.shape.shape == (3000, 100) and c.expression.shape == (3000, 50) and c.pose.shape == (3000, 15)
    yp = yaw_pitch_of(c.camera)
    assert yp[:, 0].std().item() == pytest.approx(0.3, abs=0.02)
    assert yp[:, 1].std().item() == pytest.approx(0.12, abs=0.01)
    assert yp[:, 0].abs().max() <= 0.9 + 1e-5
    assert c.shape.std().item() == pytest.approx(1.0, abs=0.03)
    jaw = c.pose[:, 6]
    assert jaw.min() >= 0 and jaw.max() <= 0.35 and jaw.median() < 0.08  # skewed toward closed
    sem = c.expression[:, :16].abs().max(dim=1).values
    assert (sem < 0.6).float().mean() > 0.5  # mostly near-neutral
    assert (sem > 1.5).float().mean() > 0.03  # with a tail of strong expressions
    assert (c.expression[:, [0, 6, 7]] >= 0).all()
    assert torch.equal(c.pose[:, :3], torch.zeros(3000, 3))


def test_wide_prior_is_expressive_everywhere_and_keeps_view_and_identity():
    w, f = sample_wide_controls(3000, 0, LAYOUT), sample_controls(3000, 0, LAYOUT)
    parts = torch.cat([sample_wide_controls(4, 0, LAYOUT).expression, sample_wide_controls(6, 0, LAYOUT, 4).expression])
    assert torch.equal(sample_wide_controls(10, 0, LAYOUT).expression, parts)  # per (seed, index)
    sem = w.expression[:, :16]
    assert sem.abs().mean(0).min().item() > 0.5  # every semantic column is far from 0 (|N(0, 0.7)|: 0.56) ...
    assert (sem.abs().max(dim=1).values > 0.6).float().mean() > 0.99  # ... in every sample
    assert f.expression[:, :16].abs().mean(0).max().item() < 0.25
    assert (w.expression[:, [0, 6, 7]] >= 0).all()
    yw, yf = yaw_pitch_of(w.camera), yaw_pitch_of(f.camera)
    assert yw.std(0).sub(yf.std(0)).abs().max().item() < 0.02  # same view distribution
    assert w.shape.std().item() == pytest.approx(1.0, abs=0.03)
    assert w.pose[:, 6].min() >= 0 and w.pose[:, 6].max() <= 0.35 and w.pose[:, 6].median() > 0.12
    assert not torch.equal(w.shape, f.shape)  # its own stream
    assert torch.equal(controls_for_prior("wide", 3, 0, LAYOUT).pose, w.pose[:3])
    with pytest.raises(OmnibenchError, match="unknown control prior"):
        controls_for_prior("ffhq2", 3, 0, LAYOUT)


def test_wide_pairs_differ_only_in_expression_and_jaw():
    p, w = sample_wide_pair_controls(400, 0, LAYOUT), sample_wide_controls(200, 0, LAYOUT)
    a, b = p.index(slice(0, None, 2)), p.index(slice(1, None, 2))
    assert torch.equal(a.camera, b.camera) and torch.equal(a.shape, b.shape)
    assert torch.equal(a.pose[:, [3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]], b.pose[:, [3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]])
    assert (a.expression != b.expression).all() and (a.pose[:, 6] != b.pose[:, 6]).all()
    # the first member of pair k is the wide prior's sample k; the second is drawn from the same distribution
    assert torch.equal(a.expression, w.expression) and torch.equal(a.camera, w.camera)
    assert b.expression[:, :16].abs().mean().item() == pytest.approx(w.expression[:, :16].abs().mean().item(), rel=0.1)
    parts = torch.cat([sample_wide_pair_controls(3, 0, LAYOUT).expression, sample_wide_pair_controls(5, 0, LAYOUT, 3).expression])
    assert torch.equal(p.expression[:8], parts)  # per (seed, index), pairs may straddle chunks
    assert torch.equal(controls_for_prior("wide-pairs", 4, 0, LAYOUT).expression, p.expression[:4])


def test_bad_sampler_inputs():
    with pytest.raises(OmnibenchError):
        sample_controls(-1, 0, LAYOUT)
    with pytest.raises(OmnibenchError):
        sample_controls(2, -3, LAYOUT)
    with pytest.raises(OmnibenchError):
        sample_controls(2, 0, object())


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "ds"
    synthesize_dataset(out, n=5, resolution=32, head=HEAD, seed=7, workers=1, chunk=3)
    return out


def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic_across_worker_counts_and_chunks(dataset_dir, tmp_path):
    other = tmp_path / "ds2"
    synthesize_dataset(other, n=5, resolution=32, head=HEAD, seed=7, workers=2, chunk=2)
    a, b = _tree(dataset_dir), _tree(other)
    assert a.keys() == b.keys() and len(a) == 7
    for rel in a:
        if rel != "manifest.json":
            assert a[rel] == b[rel], rel
    ma, mb = json.loads(a["manifest.json"]), json.loads(b["manifest.json"])
    assert ma["content_hash"] == mb["content_hash"] and ma["files"] == mb["files"]
    assert not list(tmp_path.glob(".ds2.tmp-*"))  # the temporary folder was renamed


def test_reader_round_trip(dataset_dir, tiny_head):
    from omnibench.generators.oracle import OracleGenerator

    ds = HeadDataset(dataset_dir, verify=True)
    assert len(ds) == 5 and ds.has_flame
    c = sample_controls(5, 7, tiny_head)
    got = ds.controls()
    for k in ("camera", "shape", "expression", "pose"):
        assert torch.equal(getattr(got, k), getattr(c, k)), k
    item = ds[3]
    assert item.relpath == "images/img00000003.png" and item.image.dtype == torch.uint8
    oracle = OracleGenerator(head=tiny_head, resolution=32)
    expected = oracle.synthesize(sample_latents(1, 7, 64, start_index=3), c.index(slice(3, 4))).image_uint8()[0]
    assert torch.equal(item.image, expected)
    meta = json.loads((dataset_dir / "dataset.json").read_text())
    assert meta["head_model"]["sha256"] == tiny_head.sha256
    assert len(meta["labels"][0][1]) == 25 and len(meta["flame"][0][1]["pose"]) == 15


def test_verify_detects_tampering_and_reader_errors(dataset_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(dataset_dir, copy)
    img = copy / "images" / "img00000001.png"
    img.write_bytes(img.read_bytes() + b"\0")
    with pytest.raises(OmnibenchError, match="sha256"):
        HeadDataset(copy, verify=True)
    with pytest.raises(MissingAssetError):
        HeadDataset(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "dataset.json").write_text(json.dumps({"labels": [["a.png", [0.0] * 24]]}))
    with pytest.raises(OmnibenchError, match="25"):
        HeadDataset(tmp_path / "bad")
    (tmp_path / "bad" / "dataset.json").write_text(json.dumps({"labels": [["a.png", [0.0] * 25]]}))
    ds = HeadDataset(tmp_path / "bad")
    with pytest.raises(OmnibenchError, match="FLAME"):
        ds.controls()
    with pytest.raises(MissingAssetError):
        ds.image(0)


def test_synth_bad_inputs_and_atomicity(dataset_dir, tmp_path):
    with pytest.raises(OmnibenchError, match="--n"):
        synthesize_dataset(tmp_path / "x", n=0, head=HEAD)
    with pytest.raises(OmnibenchError, match="--resolution"):
        synthesize_dataset(tmp_path / "x", n=2, resolution=8, head=HEAD)
    with pytest.raises(OmnibenchError, match="not empty"):
        synthesize_dataset(dataset_dir, n=2, resolution=32, head=HEAD)
    with pytest.raises(OmnibenchError):
        synthesize_dataset(tmp_path / "x", n=2, resolution=32, head=str(tmp_path / "missing.pkl"))
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))


def test_cli_synth_verify_sheet(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "synth", "--out", str(out), "--n", "2", "--res", "24", "--head", HEAD, "--seed", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2
    assert main(["data", "verify", str(out)]) == 0
    assert main(["data", "sheet", str(out), "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    assert main(["data", "synth", "--out", str(out), "--n", "2", "--res", "24", "--head", HEAD]) == 2
    assert "not empty" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["command"][:3] == ["omnibench", "data", "synth"]
    assert np.all([len(v) == 64 for v in manifest["files"].values()])


def test_cli_synth_wide_prior_labels_follow_the_wide_sampler(tmp_path, capsys):
    out = tmp_path / "wide"
    assert main(["data", "synth", "--out", str(out), "--n", "2", "--res", "24", "--head", HEAD, "--seed", "3",
                 "--prior", "wide"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["prior"] == "wide" and manifest["command"][-2:] == ["--prior", "wide"]
    labels = HeadDataset(out).controls()
    assert torch.allclose(labels.expression, sample_wide_controls(2, 3, LAYOUT).expression[:, : labels.expression.shape[1]])
    with pytest.raises(OmnibenchError, match="--prior"):
        synthesize_dataset(tmp_path / "y", n=2, resolution=24, head=HEAD, prior="narrow")


def test_synth_wide_pairs_share_appearance_within_a_pair(tmp_path):
    out = tmp_path / "pairs"
    synthesize_dataset(out, n=4, resolution=32, head=HEAD, seed=3, prior="wide-pairs", chunk=3)  # a pair straddles chunks
    ds = HeadDataset(out)
    imgs, labels = ds.images().float(), ds.controls()
    assert torch.equal(labels.camera[0], labels.camera[1]) and torch.equal(labels.shape[2], labels.shape[3])
    # same latent (skin, hair, background) within a pair: members differ far less than two pairs do
    within = (imgs[0] - imgs[1]).abs().mean() + (imgs[2] - imgs[3]).abs().mean()
    across = (imgs[0] - imgs[2]).abs().mean() + (imgs[1] - imgs[3]).abs().mean()
    assert within < 0.3 * across
    assert json.loads((out / "manifest.json").read_text())["prior"] == "wide-pairs"


def test_framing_moves_the_cameras_only(tmp_path):
    from omnibench.cameras import FRAMING_FFHQ

    v1 = sample_controls(4, 7, LAYOUT)
    v2 = sample_controls(4, 7, LAYOUT, framing="ffhq")
    assert torch.equal(v1.expression, v2.expression) and torch.equal(v1.shape, v2.shape) and torch.equal(v1.pose, v2.pose)
    assert torch.allclose(yaw_pitch_of(v1.camera), yaw_pitch_of(v2.camera, FRAMING_FFHQ.look_at), atol=1e-5)
    centre = v2.camera[:, [3, 7, 11]] - torch.tensor(FRAMING_FFHQ.look_at)
    assert torch.allclose(centre.norm(dim=1), torch.full((4,), FRAMING_FFHQ.radius), atol=1e-5)
    assert torch.equal(controls_for_prior("wide", 3, 1, LAYOUT, framing="ffhq").camera[:, 16:], v2.camera[:3, 16:])
    out = tmp_path / "ffhq"
    assert main(["data", "synth", "--out", str(out), "--n", "2", "--res", "24", "--head", HEAD, "--seed", "7",
                 "--framing", "ffhq"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["framing"]["name"] == "ffhq" and manifest["command"][-2:] == ["--framing", "ffhq"]
    assert torch.allclose(HeadDataset(out).controls().camera, sample_controls(2, 7, LAYOUT, framing="ffhq").camera)
    v1_dir = tmp_path / "v1"
    synthesize_dataset(v1_dir, n=2, resolution=24, head=HEAD, seed=7)
    assert "framing" not in json.loads((v1_dir / "manifest.json").read_text())
