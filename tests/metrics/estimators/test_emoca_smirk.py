"""``emoca`` and ``smirk`` on stand-in files with the exact key layouts (random values): strict loading, the
Lightning checkpoint read without executing its pickled objects, the variant inferred from cfg.yaml and the
tensor shapes, known-code output mapping, and the full path on a synthetic render."""

from __future__ import annotations

import pytest
import torch

from metrics.estimators.emoca import (
    EmocaEstimator,
    expression_variant,
    find_checkpoint,
    merge_codes,
    read_config,
)
from omnibench.errors import CheckpointError
from tests.metrics.estimators import stand_ins


@pytest.fixture(scope="module")
def head(synthetic_heads):
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


def _frontal_render(res: int = 128) -> torch.Tensor:
    from omnibench.cameras import orbit_camera
    from omnibench.generators.base import Controls
    from omnibench.generators.oracle import OracleGenerator

    gen = OracleGenerator(head="synthetic", resolution=res)
    cam = orbit_camera(torch.zeros(1), torch.zeros(1), 1.04, 4.2647, (0.0, 0.0, 0.077))
    c = Controls(shape=torch.zeros(1, 100), expression=torch.zeros(1, 50), pose=torch.zeros(1, 15), camera=cam)
    return gen.synthesize(torch.zeros(1, gen.z_dim), c).image_uint8()


def test_emoca_checkpoint_is_refused_by_weights_only_and_read_without_executing(tmp_path, head):
    folder = stand_ins.write_emoca_folder(tmp_path / "EMOCA_v2_lr_mse_20")
    ckpt = folder / "detail" / "checkpoints" / stand_ins.EMOCA_CKPT
    with pytest.raises(Exception):  # noqa: B017 - torch's own refusal, whatever its class
        torch.load(ckpt, weights_only=True)
    stand_ins.EXECUTED.clear()
    est = EmocaEstimator(head, weights=str(folder), framing="ffhq")
    assert stand_ins.EXECUTED == []  # FakeDictConfig.__setstate__ never ran
    assert est.variant == {"global": False, "jaw": True, "n_exp": 50, "source": "cfg.yaml"}
    d = est.describe()
    assert d["name"] == "emoca" and d["weights"] == "detail/checkpoints/" + stand_ins.EMOCA_CKPT
    assert len(d["sha256"]) == 64
    out = est.estimate(_frontal_render()).validate()
    assert out.expression.shape == (1, 50) and out.shape.shape == (1, 100)


def test_emoca_variant_from_shapes_and_config(tmp_path, head):
    assert expression_variant(None, 56) == {"global": True, "jaw": True, "n_exp": 50, "source": "tensor shapes"}
    assert expression_variant(None, 50)["jaw"] is False
    with pytest.raises(CheckpointError, match="52 outputs"):
        expression_variant(None, 52)
    with pytest.raises(CheckpointError, match="cfg.yaml implies 53"):
        expression_variant({"exp_deca_jaw_pose": True, "n_exp": 50}, 56)
    with pytest.raises(CheckpointError, match="'deca_parallel' is not supported"):
        expression_variant({"expression_backbone": "deca_parallel"}, 53)
    # a folder whose E_expression does not match its cfg.yaml: one line
    folder = stand_ins.write_emoca_folder(tmp_path / "m", n_expression_out=56)
    with pytest.raises(CheckpointError, match="56 outputs but cfg.yaml implies 53"):
        EmocaEstimator(head, weights=str(folder))


def test_emoca_merge_codes_known_answer():
    deca = {"expression": torch.full((1, 50), 9.0), "global": torch.full((1, 3), 8.0), "jaw": torch.full((1, 3), 7.0)}
    code = torch.arange(56, dtype=torch.float32)[None]
    both = merge_codes(deca, code, {"global": True, "jaw": True, "n_exp": 50})
    assert both["expression"][0, -1] == 49 and both["global"].tolist() == [[50, 51, 52]] and both["jaw"].tolist() == [[53, 54, 55]]
    jaw = merge_codes(deca, code[:, :53], {"global": False, "jaw": True, "n_exp": 50})
    assert jaw["global"].tolist() == [[8, 8, 8]] and jaw["jaw"].tolist() == [[50, 51, 52]]


def test_emoca_wrong_keys_refused(tmp_path, head):
    folder = stand_ins.write_emoca_folder(tmp_path / "m")
    ckpt = folder / "detail" / "checkpoints" / stand_ins.EMOCA_CKPT
    blob = torch.load(ckpt, weights_only=False)
    blob["state_dict"].pop("deca.E_expression.encoder.bn1.running_mean")
    torch.save(blob, ckpt)
    with pytest.raises(CheckpointError, match=r"deca.E_expression does not fit .* 1 missing \(first: encoder.bn1.running_mean\)"):
        EmocaEstimator(head, weights=str(ckpt))


def test_emoca_checkpoint_pick_follows_locate_checkpoint(tmp_path):
    """EMOCA's locate_checkpoint(mode='best'): rglob under <stage>/checkpoints, 'last' skipped, the number after the
    last '=' of the stem, the lowest wins, the last of equals in sorted order; detail before coarse."""
    def touch(rel: str):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    touch("coarse/checkpoints/deca-epoch=01-val_loss/dataloader_idx_0=0.1.ckpt")
    touch("detail/checkpoints/last.ckpt")
    touch("detail/checkpoints/deca-epoch=02-val_loss/dataloader_idx_0=4.5.ckpt")
    a = touch("detail/checkpoints/deca-epoch=05-val_loss/dataloader_idx_0=3.25.ckpt")
    assert find_checkpoint(tmp_path) == a
    b = touch("detail/checkpoints/deca-epoch=09-val_loss/dataloader_idx_0=3.25.ckpt")
    assert find_checkpoint(tmp_path) == b  # '<=': the later of equal losses
    only = tmp_path / "only"
    c = touch("only/coarse/checkpoints/model.ckpt")
    assert find_checkpoint(only) == c  # one checkpoint without a loss: that one
    touch("only/coarse/checkpoints/other.ckpt")
    with pytest.raises(CheckpointError, match="none of the 2 checkpoints"):
        find_checkpoint(only)
    with pytest.raises(CheckpointError, match="has no detail/checkpoints"):
        find_checkpoint(tmp_path / "empty")


def test_emoca_config_stage_and_class(tmp_path, head):
    cfg = (stand_ins.EMOCA_CFG.format(stage="coarse").replace("exp_deca_jaw_pose: true", "exp_deca_jaw_pose: false")
           + stand_ins.EMOCA_CFG.format(stage="detail"))
    (tmp_path / "cfg.yaml").write_text(cfg)
    deep = tmp_path / "detail" / "checkpoints" / "a=1" / "b=2.ckpt"
    assert read_config(deep)["exp_deca_jaw_pose"] is True  # cfg.yaml three folders up, the detail section
    assert read_config(tmp_path / "coarse" / "checkpoints" / "x=1.ckpt")["exp_deca_jaw_pose"] is False
    assert read_config(tmp_path.parent / "elsewhere" / "x.ckpt") is None
    with pytest.raises(CheckpointError, match="deca_class 'EMICA' is not supported"):
        expression_variant({"deca_class": "EMICA"}, 53)
    folder = stand_ins.write_emoca_folder(tmp_path / "m")
    ckpt = folder / "detail" / "checkpoints" / stand_ins.EMOCA_CKPT
    blob = torch.load(ckpt, weights_only=False)
    blob["state_dict"]["deca.E_mica.arcface.w"] = torch.zeros(1)
    torch.save(blob, ckpt)
    with pytest.raises(CheckpointError, match="deca.E_mica"):
        EmocaEstimator(head, weights=str(folder))


def test_emoca_checkpoint_with_real_omegaconf_objects(tmp_path, head):
    """Real OmegaConf DictConfigs pickled as hyper-parameters (as Lightning does) are read inert."""
    omegaconf = pytest.importorskip("omegaconf")
    folder = stand_ins.write_emoca_folder(tmp_path / "m")
    ckpt = folder / "detail" / "checkpoints" / stand_ins.EMOCA_CKPT
    blob = torch.load(ckpt, weights_only=False)
    conf = omegaconf.OmegaConf.create((folder / "cfg.yaml").read_text())
    blob["hyper_parameters"] = {"model_params": conf.detail.model, "learning_params": conf.detail, "stage_name": "x"}
    torch.save(blob, ckpt)
    est = EmocaEstimator(head, weights=str(ckpt))
    assert est.variant["source"] == "cfg.yaml" and est.variant["jaw"] is True


@pytest.fixture(scope="module")
def smirk_pt(tmp_path_factory):
    pytest.importorskip("timm")
    return stand_ins.write_smirk_pt(tmp_path_factory.mktemp("smirk") / "SMIRK_em1.pt")


def test_smirk_loads_strictly_and_maps_outputs(smirk_pt, tmp_path, head):
    from metrics.estimators.smirk import SmirkEstimator

    est = SmirkEstimator(head, weights=str(smirk_pt), framing="ffhq")
    # force known outputs through the heads: zero weights, known biases
    pose_cam = torch.tensor([0.05, -0.2, 0.0, 8.0, 0.01, -0.02])
    expr = torch.cat([torch.linspace(-1, 1, 50), torch.tensor([1.5, 0.3]), torch.tensor([-0.1, 0.5, -0.05])])
    shape = torch.linspace(0.5, -0.5, 300)
    with torch.no_grad():
        for branch, head_name, bias in (("pose_encoder", "pose_cam_layers", pose_cam),
                                        ("shape_encoder", "shape_layers", shape),
                                        ("expression_encoder", "expression_layers", expr)):
            lin = getattr(getattr(est.net, branch), head_name)[0]
            lin.weight.zero_()
            lin.bias.copy_(bias)
    x = torch.rand(1, 3, 128, 128)
    pts = torch.tensor([[[40.0, 45.0], [90.0, 95.0]]])
    out = est.estimate_from_landmarks(x, pts, torch.ones(1), torch.ones(1, dtype=torch.bool)).validate()
    assert torch.allclose(out.shape[0], shape, atol=1e-5) and torch.allclose(out.expression[0], expr[:50], atol=1e-5)
    assert torch.allclose(out.pose[0, 6:9], torch.tensor([0.0, 0.2, -0.05]))  # ReLU, clamp +-0.2
    assert out.pose[0, :6].abs().max() == 0 and out.pose[0, 9:].abs().max() == 0
    assert est.describe()["crop"]["rule"] == "smirk"
    # wrong keys: one line
    state = torch.load(smirk_pt)
    state.pop("smirk_encoder.shape_encoder.shape_layers.0.bias")
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"1 missing \(first: shape_encoder.shape_layers.0.bias\)") as err:
        SmirkEstimator(head, weights=str(tmp_path / "bad.pt"))
    assert "\n" not in str(err.value)


def test_smirk_full_path_on_a_render(smirk_pt, head):
    from metrics.estimators.smirk import SmirkEstimator

    est = SmirkEstimator(head, weights=str(smirk_pt), detector="dlib", framing="ffhq")
    out = est.estimate(_frontal_render()).validate()
    assert out.detected.all() and out.shape.shape == (1, 300) and torch.isfinite(out.camera).all()
