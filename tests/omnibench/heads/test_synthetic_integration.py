"""The synthflame files through the project's own loader and forward pass (omnibench.heads).

The production LBS must agree with the generator's independent float64 reference, every serialisation
(plain, chumpy, npz, 2023 alias) must load to the same model, and the dynamic contour rows must be the
ones the forward pass selects for a given yaw (DECA's +yaw convention).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from omnibench import heads
from omnibench.heads.synthetic import make_synthetic_head, reference_lbs
from omnibench.heads.synthetic.landmarks import evaluate


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_head("tiny", 0, tmp_path_factory.mktemp("synth_tiny"))


@pytest.fixture(scope="module")
def tiny_model(tiny_dir: Path) -> dict:
    with open(tiny_dir / "generic_model.pkl", "rb") as fh:
        return pickle.load(fh, encoding="latin1")


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-6)])
def test_forward_pass_matches_reference(tiny_dir: Path, tiny_model: dict, dtype: str, tol: float) -> None:
    dt = getattr(torch, dtype)
    model = heads.load_head_model(str(tiny_dir / "generic_model.pkl"), dtype=dt)
    rng = np.random.default_rng(7)
    beta, psi = 0.5 * rng.standard_normal((3, 300)), 0.5 * rng.standard_normal((3, 100))
    pose = 0.2 * rng.standard_normal((3, 15))
    out = model(shape=torch.tensor(beta, dtype=dt), expression=torch.tensor(psi, dtype=dt),
                pose=torch.tensor(pose, dtype=dt))
    for b in range(3):
        ref = reference_lbs(tiny_model, beta[b], psi[b], pose[b]).vertices
        assert np.abs(out.vertices[b].double().numpy() - ref).max() < tol


@pytest.mark.parametrize("name", ["generic_model_chumpy.pkl", "flame/FLAME_NEUTRAL.npz", "flame2023.pkl"])
def test_all_serialisations_load_identically(tiny_dir: Path, tiny_model: dict, name: str) -> None:
    model = heads.load_head_model(str(tiny_dir / name), dtype=torch.float64)
    pose = torch.zeros(1, 15, dtype=torch.float64)
    pose[0, 6] = 0.2
    beta = torch.linspace(-1, 1, 300, dtype=torch.float64)[None]
    out = model(shape=beta, pose=pose)
    ref = reference_lbs(tiny_model, beta[0].numpy(), None, pose[0].numpy()).vertices
    np.testing.assert_allclose(out.vertices[0].numpy(), ref, atol=1e-12)


def test_dynamic_rows_match_the_forward_pass(tiny_dir: Path, tiny_model: dict) -> None:
    model = heads.load_head_model(str(tiny_dir), dtype=torch.float64)
    deca = np.load(tiny_dir / "landmark_embedding.npy", allow_pickle=True)[()]
    faces = tiny_model["f"].astype(np.int64)
    for yaw, row in ((20, 20), (-20, 59), (39, 39), (-39, 78), (0, 0)):
        pose = torch.zeros(1, 15, dtype=torch.float64)
        pose[0, 1] = np.deg2rad(yaw)
        lmk = model(pose=pose).landmarks[0, :17].numpy()
        verts = reference_lbs(tiny_model, None, None, pose[0].numpy()).vertices
        expect = evaluate(verts, faces, deca["dynamic_lmk_faces_idx"][row].numpy(),
                          deca["dynamic_lmk_bary_coords"][row].double().numpy())
        np.testing.assert_allclose(lmk, expect, atol=1e-6)
