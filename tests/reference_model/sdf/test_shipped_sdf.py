"""The shipped tiny W (``reference_model/checkpoints/sdf-tiny.pt``) meets the Stage I targets on the 16
held-out parameter sets of ``omnibench eval-sdf`` (synthetic ``small`` head): mean |s| on the surface below
0.5 % of head height, off-surface sign accuracy above 99 %, correspondence error below 1.5 % of head height
(measured: 0.15 %, 99.07 %, 0.75 %; docs/reference-model.md)."""

import pytest

from reference_model.sdf.checkpoint import load_sdf, read_sdf_checkpoint
from reference_model.sdf.evaluate import evaluate_sdf
from reference_model.sdf.release import SHIPPED_SDF


@pytest.fixture(scope="module")
def head():
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


def test_shipped_w_is_small_self_describing_and_for_the_synthetic_head(head):
    assert SHIPPED_SDF.is_file() and SHIPPED_SDF.stat().st_size < 2_000_000
    ckpt = read_sdf_checkpoint(SHIPPED_SDF)
    assert "optimizer" not in ckpt and ckpt["config"]["name"] == "tiny" and ckpt["step"] == ckpt["config"]["steps"]
    assert ckpt["head_model"]["sha256"] == head.sha256


def test_shipped_w_meets_the_stage_one_targets_on_held_out_meshes(head):
    r = evaluate_sdf(load_sdf(SHIPPED_SDF, head=head), head, n_meshes=16)
    assert r["surface_abs_s_frac_height"] < 0.005
    assert r["offsurface_sign_accuracy"] > 0.99
    assert r["correspondence_error_frac_height"] < 0.015
