"""The shipped Stage II checkpoints (``reference_model/checkpoints/tiny.pt`` and ``tiny-no-prior.pt``):
self-describing, resolvable by name, and the measured comparison of docs/reference-model.md under the quick
protocol: with ``L_prior`` the surface follows the controls (geometry) and the pose is read back (APD)."""

import pytest
import torch

from omnibench.assets import sha256_file
from reference_model.adapter import SHIPPED, OmniAvatarGenerator
from reference_model.gan.checkpoint import read_gan_checkpoint
from reference_model.sdf.release import SHIPPED_SDF

NAMES = ("tiny", "tiny-no-prior")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoint_is_small_self_describing_and_resolves_by_name(name):
    from omnibench.heads import load_head_model

    path = SHIPPED / f"{name}.pt"
    assert path.is_file() and path.stat().st_size < 5_000_000
    ck = read_gan_checkpoint(path)
    assert "training" not in ck and ck["step"] == ck["config"]["steps"]
    assert ck["sdf"]["sha256"] == sha256_file(SHIPPED_SDF)
    assert ck["head_model"]["sha256"] == load_head_model("synthetic").sha256
    assert len(ck["dataset"]["content_hash"]) == 64
    assert ck["config"]["use_prior"] == (name == "tiny")
    assert OmniAvatarGenerator.named_checkpoints()[name] == str(path)


def test_tiny_renders_deterministically_with_depth():
    gen = OmniAvatarGenerator.load("tiny")
    from omnibench.data.sampling import sample_controls, sample_latents

    c, z = sample_controls(4, 0, "synthetic"), sample_latents(4, 0, gen.z_dim)
    a, b = gen.synthesize(z, c.fit_layout(gen.flame_layout)), gen.synthesize(z, c.fit_layout(gen.flame_layout))
    assert a.image.shape == (4, 3, 64, 64) and torch.equal(a.image, b.image)
    assert torch.isfinite(a.depth[a.mask > 0.5]).all() and (a.mask > 0.5).float().mean() > 0.2


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """tiny vs tiny-no-prior under the quick protocol (the numbers of reports/runs/tiny*.json; ~1 min each)."""
    from omnibench.evaluation import evaluate

    mp = pytest.MonkeyPatch()
    mp.setenv("OMNIBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    try:
        return {n: evaluate(n, metrics=["aed", "asd", "apd", "geometry"], protocol="quick", progress=False)["metrics"]
                for n in NAMES}
    finally:
        mp.undo()


def test_l_prior_gives_geometry_and_pose_control(comparison):
    t, n = comparison["tiny"], comparison["tiny-no-prior"]
    # L_prior puts the surface where the FLAME controls say (geometry, metres) ...
    assert t["geometry"]["value"] < 0.3 * n["geometry"]["value"]
    # ... so the estimator finds a face posed as asked; without it training collapsed (docs/reference-model.md)
    assert t["apd"]["failures"] <= 0.05 * t["apd"]["n"] and n["apd"]["failures"] >= 0.9 * n["apd"]["n"]
    assert t["apd"]["ci95"][1] < n["apd"]["ci95"][0]


@pytest.mark.xfail(strict=True, reason="issue #7: the estimator now separates oracle-noexpr/-noshape (calibration), but "
                   "tiny's faces read as expressions and shapes it was not given (AED/ASD above the null estimate "
                   "that tiny-no-prior's undetected faces score); docs/reference-model.md")
def test_l_prior_gives_expression_and_shape_control(comparison):
    t, n = comparison["tiny"], comparison["tiny-no-prior"]
    for key in ("aed", "asd"):
        assert t[key]["ci95"][1] < n[key]["ci95"][0], key
