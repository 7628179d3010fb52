"""Regressor: checkpoint round trip and pinning, training loop, batch independence, non-face rejection."""

from __future__ import annotations

import json

import pytest
import torch

from metrics.estimators import load_estimator
from metrics.estimators.regressor import RegressorEstimator, find_weights, load_checkpoint, save_checkpoint
from metrics.estimators.training import (
    LabelledImages,
    TrainConfig,
    make_negatives,
    targets_from_controls,
    train_regressor,
)
from omnibench.errors import CheckpointError, MissingAssetError, OmnibenchError
from tests.metrics.control_fakes import FakeHead, random_controls


def _toy_data(n: int = 64, res: int = 16) -> LabelledImages:
    """Images whose mean colour encodes the first expression coefficient (a learnable toy task)."""
    c = random_controls(n, n_shape=4, n_expr=3, seed=3)
    img = torch.full((n, 3, res, res), 0.5)
    img[:, 0] = (0.5 + 0.15 * c.expression[:, :1, None]).clamp(0, 1)
    return LabelledImages((img * 255).round().to(torch.uint8), c, {"name": "fake", "sha256": FakeHead.sha256}, {})


def _train_toy(tmp_path, steps: int = 60):
    data = _toy_data()
    cfg = TrainConfig(steps=steps, batch_size=16, res=16, widths=(4, 8, 8, 8), hidden=16, threads=1, lr=5e-3)
    net, config, mean, std, hist = train_regressor(data, 4, 3, cfg, log=lambda s: None)
    path = tmp_path / "reg.pt"
    save_checkpoint(path, net, config, mean, std, {"head": {"name": "fake", "sha256": FakeHead.sha256}})
    return data, path, hist


def test_training_reduces_loss_and_checkpoint_round_trips(tmp_path):
    data, path, hist = _train_toy(tmp_path)
    assert hist[-1]["loss"] < hist[0]["loss"]
    est = load_estimator("regressor", FakeHead(), weights=str(path))
    out = est.estimate(data.images[:5]).validate()
    assert out.expression.shape == (5, 3) and out.shape.shape == (5, 4)
    assert (out.pose[:, 0:3] == 0).all() and (out.pose[:, 9:] == 0).all()
    # batch independence (BatchNorm in eval mode)
    one = est.estimate(data.images[2:3])
    assert torch.allclose(one.expression[0], out.expression[2], atol=1e-5)
    meta = json.loads(path.with_suffix(".pt.json").read_text())
    assert est.describe()["sha256"] == meta["sha256"]
    assert find_weights(FakeHead.sha256, [tmp_path]) == path
    assert find_weights("f" * 64, [tmp_path]) is None


def test_tampered_or_foreign_weights_are_refused(tmp_path):
    _, path, _ = _train_toy(tmp_path, steps=2)
    other = FakeHead()
    other.sha256 = "1" * 64
    with pytest.raises(CheckpointError, match="trained for head model"):
        RegressorEstimator(other, weights=str(path))
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="pinned sha256"):
        load_checkpoint(path)
    with pytest.raises(MissingAssetError):
        RegressorEstimator(other, weights=str(tmp_path / "missing.pt"))


def test_missing_weights_message_names_the_train_command(monkeypatch, tmp_path):
    import metrics.estimators.regressor as reg

    monkeypatch.setattr(reg, "WEIGHTS_DIR", tmp_path)
    other = FakeHead()
    other.sha256 = "2" * 64
    with pytest.raises(MissingAssetError, match="omnibench estimators train"):
        RegressorEstimator(other)


def test_targets_and_negatives_shapes():
    c = random_controls(5, n_shape=2, n_expr=3)
    y = targets_from_controls(c, 4, 2)
    assert y.shape == (5, 4 + 2 + 3 + 3 + 2)
    assert torch.equal(y[:, :2], c.shape) and (y[:, 2:4] == 0).all()
    g = torch.Generator().manual_seed(0)
    neg = make_negatives(8, 32, g, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    assert neg.shape == (8, 3, 32, 32) and neg.dtype == torch.uint8


def test_cli_lists_estimators_and_rejects_bad_resolution(tmp_path, capsys):
    from omnibench.cli import main

    assert main(["estimators", "ls", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"regressor", "landmark-fit"} <= names
    assert main(["estimators", "train", "--res", "30", "--out", str(tmp_path / "x.pt")]) == 2
    assert "multiple of 16" in capsys.readouterr().err


def test_pair_training_needs_paired_data_and_runs_on_it():
    data = _toy_data(32)
    cfg = TrainConfig(steps=3, batch_size=8, res=16, widths=(4, 8, 8, 8), hidden=16, threads=1, pair_weight=1.0)
    with pytest.raises(OmnibenchError, match="wide-pairs"):
        train_regressor(data, 4, 3, cfg, log=lambda s: None)
    c = data.controls
    keep = torch.arange(32) // 2 * 2  # make members 2k, 2k+1 share camera and shape (expressions stay distinct)
    data.controls = type(c)(c.camera[keep], c.shape[keep], c.expression, c.pose)
    net, *_, hist = train_regressor(data, 4, 3, cfg, log=lambda s: None)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)


def test_several_data_folders_train_on_their_union():
    from metrics.estimators.training import concat_datasets

    a, b = _toy_data(8), _toy_data(6)
    u = concat_datasets([a, b])
    assert u.images.shape[0] == 14 and torch.equal(u.controls.expression[8:], b.controls.expression)
    assert u.source["n"] == 14 and len(u.source["parts"]) == 2
    b.head = {"name": "other", "sha256": "not-" + str(a.head["sha256"])}
    with pytest.raises(OmnibenchError, match="different head models"):
        concat_datasets([a, b])
    c = _toy_data(4, res=32)
    with pytest.raises(OmnibenchError, match="different sizes"):
        concat_datasets([a, c])


def test_two_stage_weights_train_round_trip_and_stay_batch_independent(tmp_path):
    """The aligned stage replaces shape/expression/jaw; format 2 round trips; format 1 still loads."""
    from metrics.estimators.regressor import aligned_columns
    from metrics.estimators.training import regressor_estimate_fn, train_aligned

    data = _toy_data(32)
    head = FakeHead()
    cfg = TrainConfig(steps=3, batch_size=8, res=16, widths=(4, 8, 8, 8), hidden=16, threads=1, aligned_steps=4,
                      aligned_size=8, aligned_widths=(4, 4, 8, 8), finish_fraction=0.5)
    net, config, mean, std, _ = train_regressor(data, 4, 3, cfg, log=lambda s: None)
    one_stage = regressor_estimate_fn(net, config, mean, std)(data.images[:4])
    hist = train_aligned(net, config, mean, std, data, head, cfg, finish=_toy_data(8), log=lambda s: None)
    assert [h["data"] for h in hist] == ["train", "finish"] and config["aligned"]["size"] == 8
    assert aligned_columns(4, 3).tolist() == [0, 1, 2, 3, 4, 5, 6, 10, 11, 12]
    with pytest.raises(OmnibenchError, match="head model"):
        regressor_estimate_fn(net, config, mean, std)
    two = regressor_estimate_fn(net, config, mean, std, head)(data.images[:4])
    assert torch.equal(two.camera, one_stage.camera) and torch.equal(two.pose[:, 3:6], one_stage.pose[:, 3:6])
    assert not torch.allclose(two.expression, one_stage.expression)
    path = tmp_path / "two.pt"
    save_checkpoint(path, net, config, mean, std, {"head": {"name": "fake", "sha256": FakeHead.sha256}})
    assert torch.load(path, weights_only=True)["format"] == 2  # the shared checkpoint header (shipped files: "format_version")
    est = load_estimator("regressor", head, weights=str(path))
    out = est.estimate(data.images[:4]).validate()
    assert torch.allclose(out.expression, two.expression, atol=2e-2)  # fp16 storage
    single = est.estimate(data.images[1:2])
    assert torch.allclose(single.expression[0], out.expression[1], atol=1e-5)
    assert torch.allclose(single.shape[0], out.shape[1], atol=1e-5)


def test_weights_carry_their_camera_framing_and_are_refused_on_another(tmp_path):
    """Regressor weights know where the training cameras sat; a protocol framed otherwise never reads them."""
    from metrics.estimators.regressor import weights_framing
    from omnibench.cameras import FRAMING_FFHQ

    _, v1_path, _ = _train_toy(tmp_path, steps=2)
    assert weights_framing(json.loads(v1_path.with_suffix(".pt.json").read_text())) == "v1"
    assert find_weights(FakeHead.sha256, [tmp_path]) == v1_path
    assert find_weights(FakeHead.sha256, [tmp_path], framing="ffhq") is None
    with pytest.raises(CheckpointError, match="trained on camera framing 'v1'.*'ffhq'"):
        RegressorEstimator(FakeHead(), weights=str(v1_path), framing="ffhq")

    data = _toy_data()
    data.framing = FRAMING_FFHQ
    cfg = TrainConfig(steps=2, batch_size=16, res=16, widths=(4, 8, 8, 8), hidden=16, threads=1)
    net, config, mean, std, _ = train_regressor(data, 4, 3, cfg, log=lambda s: None)
    assert (config["radius"], config["look_at"], config["framing"]) == (FRAMING_FFHQ.radius, [0.0, 0.0, 0.077], "ffhq")
    v2_dir = tmp_path / "v2"
    v2_path = v2_dir / "reg.pt"
    save_checkpoint(v2_path, net, config, mean, std, {"head": {"name": "fake", "sha256": FakeHead.sha256},
                                                        "framing": FRAMING_FFHQ.to_dict()})
    assert find_weights(FakeHead.sha256, [tmp_path, v2_dir], framing="ffhq") == v2_path
    est = RegressorEstimator(FakeHead(), weights=str(v2_path), framing="ffhq")
    assert est.describe()["framing"] == "ffhq" and "framing" not in load_estimator(
        "regressor", FakeHead(), weights=str(v1_path)).describe()
    # decoded cameras orbit the ffhq pivot at the ffhq radius
    cam = est.estimate(data.images[:3]).camera
    centre = cam[:, [3, 7, 11]] - torch.tensor(FRAMING_FFHQ.look_at)
    assert torch.allclose(centre.norm(dim=1), torch.full((3,), FRAMING_FFHQ.radius), atol=1e-4)
