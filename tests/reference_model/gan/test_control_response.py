"""``omnibench control-response``: known answers from generators that ignore a control."""

import json
import subprocess
import sys

import pytest
import torch

from omnibench.cameras import orbit_camera
from omnibench.generators.base import Controls
from omnibench.generators.oracle import OracleGenerator, OracleNoExprGenerator, OracleNoShapeGenerator
from reference_model.adapter import OmniAvatarGenerator
from reference_model.gan.config import GANConfig
from reference_model.gan.control_response import column_correlation, control_response, neutral
from reference_model.gan.generator import OmniAvatarG

SMALL = GANConfig(z_dim=8, w_dim=8, mapping_layers=1, n_shape=4, n_expression=4, triplane_res=8, triplane_channels=4,
                  synthesis_channels=8, neural_res=8, image_res=16, samples_coarse=4, samples_fine=4, decoder_hidden=8,
                  feature_channels=4, expr_embed=4, sr_channels=4, d_channels=4, density_shift=1.0, use_sdf=False,
                  use_prior=False)
META = {"head_model": {"spec": "synthetic"}, "sdf": {"config": {"head": "synthetic"}}}


def _controls(n: int) -> Controls:
    g = torch.Generator().manual_seed(0)
    return Controls(camera=orbit_camera(0.3 * torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g)),
                    shape=0.8 * torch.randn(n, 10, generator=g), expression=0.8 * torch.randn(n, 10, generator=g),
                    pose=torch.cat([torch.zeros(n, 6), 0.2 * torch.rand(n, 1, generator=g), torch.zeros(n, 8)], 1))


def test_neutral_zeroes_one_group_only():
    c = _controls(3)
    n = neutral(c, "jaw")
    assert torch.all(n.pose[:, 6:9] == 0) and torch.equal(n.pose[:, :6], c.pose[:, :6]) and torch.equal(n.expression, c.expression)
    assert torch.all(neutral(c, "expression").expression == 0) and torch.all(neutral(c, "shape").shape == 0)
    with pytest.raises(ValueError):
        neutral(c, "gaze")


def test_column_correlation_known_answers():
    x = torch.randn(50, 1)
    est = torch.cat([2 * x + 1, -x, torch.zeros_like(x)], 1)
    assert column_correlation(est, x.expand(-1, 3)) == pytest.approx([1.0, -1.0, 0.0], abs=1e-5)


def test_oracles_that_ignore_a_control_score_zero_for_it():
    z, c = torch.randn(4, OracleGenerator.load(None).z_dim), _controls(4)
    full = control_response(OracleGenerator.load(None), z, c, batch=2)["groups"]
    noexpr = control_response(OracleNoExprGenerator.load(None), z, c, batch=2, reference=OracleGenerator.load(None))
    noshape = control_response(OracleNoShapeGenerator.load(None), z, c, batch=2)["groups"]
    assert noexpr["groups"]["expression"] == {"mean_abs": 0.0, "p99_abs": 0.0}
    assert noshape["shape"] == {"mean_abs": 0.0, "p99_abs": 0.0}
    for g in ("expression", "shape", "jaw"):
        assert full[g]["p99_abs"] > 0.01 and full[g]["p99_abs"] >= full[g]["mean_abs"]
    assert noexpr["reference_groups"] == full  # the reference is measured on the same z and controls
    assert noexpr["groups"]["shape"]["mean_abs"] > 0 and noshape["expression"]["mean_abs"] > 0


def test_omniavatar_ablations_respond_only_through_their_paths():
    """eg3d without the dynamic decoder has no path from any FLAME control to the image; the dynamic decoder
    (phi) adds expression and jaw but not shape; the encoder's readout is reported when E exists."""
    torch.manual_seed(0)
    z, c = torch.randn(3, 8), _controls(3)
    static = OmniAvatarGenerator(OmniAvatarG(GANConfig(**{**SMALL.to_dict(), "dynamic": False}), None).eval(), None, META, "x")
    res = control_response(static, z, c, batch=2)["groups"]
    assert all(res[g]["mean_abs"] == 0.0 for g in ("expression", "shape", "jaw"))
    from reference_model.gan.encoder import ControlEncoder

    dyn = OmniAvatarGenerator(OmniAvatarG(SMALL, None).eval(), ControlEncoder(4, res=16).eval(), META, "x")
    res = control_response(dyn, z, c, batch=2)
    assert res["groups"]["expression"]["mean_abs"] > 0 and res["groups"]["jaw"]["mean_abs"] > 0
    assert res["groups"]["shape"]["mean_abs"] == 0.0
    assert res["encoder"]["columns"] == 4 and len(res["encoder"]["correlation"]["generated"]) == 4


def test_cli_writes_json_and_rejects_bad_input(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "omnibench", "control-response", "--ckpt", "oracle-noexpr", "--reference",
                        "oracle", "--n", "3", "--batch", "2", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["n"] == 3 and res["groups"]["expression"]["mean_abs"] == 0.0
    assert res["reference_groups"]["expression"]["mean_abs"] > 0
    bad = subprocess.run([sys.executable, "-m", "omnibench", "control-response", "--ckpt", "oracle", "--n", "1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--n" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "omnibench", "control-response", "--ckpt", str(tmp_path / "nope.pt")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.pt" in missing.stderr
