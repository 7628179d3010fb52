"""The shipped Stage II checkpoints (``reference_model/checkpoints/tiny.pt`` and ``tiny-no-prior.pt``, trained on
ffhq-framed renders for protocol v2): self-describing, resolvable by name, and the measured comparison of
docs/reference-model.md under the quick protocol. What holds for this pair (seed 0): with ``L_prior`` the surface
follows the controls (geometry, 95 % intervals apart). What no longer holds: on v2 the no-``L_prior`` twin reads back
closer on AED, ASD and APD (the v1 pair had the opposite order); the docs give the numbers."""

import pytest
import torch

from omnibench.assets import sha256_file
from reference_model.adapter import SHIPPED, OmniAvatarGenerator
from reference_model.gan.checkpoint import read_gan_checkpoint
from reference_model.sdf.release import SHIPPED_SDF

NAMES = ("tiny", "tiny-no-prior")

# The committed files were written on another machine. float32 renders and kernels differ in the last bits
# between CPUs: on a machine whose quick real set renders with another content hash, the same checkpoints score
# up to 5e-6 apart relatively (AED 0.463991 vs 0.463993). A change of code or weights that matters moves them by far more.
CROSS_MACHINE_REL = 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_shipped_checkpoint_is_small_self_describing_and_resolves_by_name(name):
    from omnibench.heads import load_head_model

    path = SHIPPED / f"{name}.pt"
    assert path.is_file() and path.stat().st_size < 6_000_000
    ck = read_gan_checkpoint(path)
    assert "training" not in ck and ck["step"] == ck["config"]["steps"]
    assert ck["sdf"]["sha256"] == sha256_file(SHIPPED_SDF)
    assert ck["head_model"]["sha256"] == load_head_model("synthetic").sha256
    assert len(ck["dataset"]["content_hash"]) == 64
    assert ck["config"]["use_prior"] == (name == "tiny")
    assert OmniAvatarGenerator.named_checkpoints()[name] == str(path)


def test_tiny_renders_deterministically_with_depth():
    gen = OmniAvatarGenerator.load("tiny")
    from omnibench.data.control_prior import sample_controls, sample_latents

    c, z = sample_controls(2, 0, "synthetic"), sample_latents(2, 0, gen.z_dim)
    a, b = gen.synthesize(z, c.fit_layout(gen.flame_layout)), gen.synthesize(z, c.fit_layout(gen.flame_layout))
    assert a.image.shape == (2, 3, 64, 64) and torch.equal(a.image, b.image)
    assert torch.isfinite(a.depth[a.mask > 0.5]).all() and (a.mask > 0.5).float().mean() > 0.2


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, synthetic_heads):
    """tiny vs tiny-no-prior under the quick protocol, v2 (the numbers of reports/runs/tiny*.json; ~1 min each), in a
    cache of their own that links the session's synthetic head (the control prior) instead of building it again.
    Generating the 500 + 72 samples of each is nearly all of the time: the four metrics need nothing else."""
    from omnibench.evaluation import evaluate

    cache = tmp_path_factory.mktemp("cache")
    (cache / "heads").symlink_to(synthetic_heads, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNIBENCH_CACHE", str(cache))
        return {n: evaluate(n, metrics=["aed", "asd", "apd", "geometry"], protocol="quick", progress=False)["metrics"]
                for n in NAMES}


def test_l_prior_gives_geometry_control(comparison):
    t, n = comparison["tiny"], comparison["tiny-no-prior"]
    # L_prior puts the surface where the FLAME controls say (mean point-to-mesh distance, metres)
    assert t["geometry"]["ci95"][1] < n["geometry"]["ci95"][0]


@pytest.mark.parametrize("key", ["aed", "asd", "apd"])
def test_both_twins_draw_faces_the_estimator_reads(comparison, key):
    # a like-for-like comparison: failures (undetected faces, scored with the null estimate) stay rare for both
    for name in NAMES:
        m = comparison[name][key]
        assert m["failures"] <= 0.05 * m["n"], (name, m["failures"])


@pytest.mark.parametrize("name", NAMES)
def test_recomputed_numbers_match_the_committed_result_files(comparison, name):
    import json
    from pathlib import Path

    committed = json.loads((Path(__file__).parents[3] / "reports" / "runs" / f"{name}.json").read_text())["metrics"]
    for key, m in comparison[name].items():
        assert m["value"] == pytest.approx(committed[key]["value"], rel=CROSS_MACHINE_REL, abs=1e-9), (name, key)
