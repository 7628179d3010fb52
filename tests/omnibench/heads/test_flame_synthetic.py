"""The forward pass on the synthetic FLAME-format head (omnibench.heads.synthetic): all serialisations load to
the same model, anatomy-level behaviour (jaw opens the mouth, scalp stays, eyelids close), and the pinned
dynamic-contour sign convention is the geometrically right one on this head."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from omnibench.heads import HeadModel, load_flame_data, load_head_model, synthetic


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return synthetic.make_synthetic_head(preset="tiny", seed=0, out_dir=tmp_path_factory.mktemp("synth-tiny"))


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    return synthetic.make_synthetic_head(preset="small", seed=0, out_dir=tmp_path_factory.mktemp("synth-small"))


@pytest.fixture(scope="module")
def small_data(small_dir):
    return load_flame_data(small_dir)


def test_all_serialisations_give_the_same_model(tiny_dir):
    with open(tiny_dir / "generic_model_chumpy.pkl", "rb") as fh, pytest.raises(ModuleNotFoundError):
        pickle.load(fh, encoding="latin1")
    paths = [tiny_dir / "generic_model.pkl", tiny_dir / "generic_model_chumpy.pkl"]
    paths += [p for p in (tiny_dir / "flame2023.pkl", tiny_dir / "flame" / "FLAME_NEUTRAL.pkl",
                          tiny_dir / "flame" / "FLAME_NEUTRAL.npz") if p.is_file()]
    ref = load_flame_data(paths[0])
    for p in paths[1:]:
        other = load_flame_data(p)
        for name in ("v_template", "faces", "shapedirs", "posedirs", "J_regressor", "weights", "parents"):
            np.testing.assert_array_equal(getattr(ref, name), getattr(other, name), err_msg=f"{p}: {name}")
    model = HeadModel(ref)
    assert model.has_landmarks and model.has_landmarks3d
    assert torch.equal(model().vertices[0], model.template)


def test_load_head_model_synthetic_spec(monkeypatch, tiny_dir):
    model = load_head_model("synthetic:tiny")
    assert model.name == "synthflame-tiny-seed0" and len(model.sha256) == 64
    assert model.faces.dtype == torch.int64 and model.n_shape == 300 and model.n_expression == 100
    assert {"scalp", "lips", "face"} <= set(model.masks)


def _lmk(out, i):
    return out.landmarks[:, i]


def test_jaw_opens_the_mouth_and_leaves_the_scalp(small_data):
    model = HeadModel(small_data, dtype=torch.float64)
    jaw = torch.zeros(3, 15, dtype=torch.float64)
    jaw[:, 6] = torch.tensor([0.0, 0.2, 0.4])
    out = model(pose=jaw)
    gap = (_lmk(out, 62) - _lmk(out, 66)).norm(dim=-1)
    assert gap[1] > gap[0] + 2e-3 and gap[2] > gap[1] + 2e-3  # inner lips part (millimetres)
    scalp = model.masks["scalp"]
    moved = (out.vertices - model.template).norm(dim=-1)
    assert moved[:, scalp].max() < 1e-12
    assert moved[2, model.masks["lips"]].max() > 5e-3
    expr = torch.zeros(1, 100, dtype=torch.float64)
    expr[0, 0] = 1.0  # semantic column 300: jaw_drop
    moved = (model(expression=expr).vertices[0] - model.template).norm(dim=-1)
    assert moved[scalp].max() < 1e-12 and moved[model.masks["lips"]].max() > 1e-3


def test_eyelids_close_the_upper_lids(small_data):
    model = HeadModel(small_data, dtype=torch.float64)
    assert model.has_eyelids
    open_, closed = model(), model(eyelids=torch.tensor([[1.0, 1.0]]))
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        before = (_lmk(open_, up) - _lmk(open_, low)).norm()
        after = (_lmk(closed, up) - _lmk(closed, low)).norm()
        assert after < 0.5 * before, (up, low, float(before), float(after))


def _face_normals(verts, faces):
    tri = verts[:, faces]
    n = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    return n / n.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("yaw_deg", [20.0, 35.0, -20.0, -35.0])
def test_deca_sign_picks_the_silhouette_row(small_data, yaw_deg):
    """Head yawed about +y, camera on +z: the side turning away must use contour points on the silhouette
    (normal perpendicular to the view, n_z ~ 0). The pinned +yaw convention does; the flipped one does not."""
    data = small_data
    pose = torch.zeros(1, 15, dtype=torch.float64)
    pose[0, 1] = np.radians(yaw_deg)
    away = slice(9, 17) if yaw_deg > 0 else slice(0, 8)  # iBUG 9..16 are on +x, 0..7 on -x
    scores = {}
    for sign in (1, -1):
        model = HeadModel(data, yaw_sign=sign, dtype=torch.float64)
        out = model(pose=pose)
        row = int(out.contour_rows[0])
        faces = torch.from_numpy(data.dynamic_lmk.face_idx[row][away])
        normals = _face_normals(out.vertices, model.faces)[0, faces]
        scores[sign] = normals[:, 2].abs().mean().item()
    assert scores[1] < 0.5 * scores[-1], scores  # measured ~0.07 vs ~0.18 at 20 deg, 0.03 vs 0.32 at 35


def test_matches_the_generators_own_reference_lbs(tiny_dir):
    """Cross-check against the synthetic generator's independent float64 LBS (a second reference)."""
    with open(tiny_dir / "generic_model.pkl", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    model = load_head_model(tiny_dir, dtype=torch.float64)
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = dict(shape=rng.normal(size=300), expression=rng.normal(size=100), pose=rng.normal(size=15) * 0.3,
                 translation=rng.normal(size=3) * 0.02)
        ref = synthetic.reference_lbs(raw, **p)
        out = model(**p)
        np.testing.assert_allclose(out.vertices[0].numpy(), ref.vertices, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.joints[0].numpy(), ref.joints, rtol=0, atol=1e-10)


def test_generator_variants_load_or_fail_clearly(tmp_path, tiny_dir):
    from omnibench.errors import OmnibenchError

    bad = synthetic.make_synthetic_head(preset="tiny", seed=0, out_dir=tmp_path / "c350", columns=350)
    with pytest.raises(OmnibenchError, match="350.*400"):
        load_head_model(bad / "generic_model_chumpy.pkl")
    alt = synthetic.make_synthetic_head(preset="tiny", seed=0, out_dir=tmp_path / "alt", f_dtype="int64",
                                        kintree_sentinel=False)
    ref = load_flame_data(tiny_dir)
    other = load_flame_data(alt)
    np.testing.assert_array_equal(other.faces, ref.faces)
    assert other.parents.tolist() == ref.parents.tolist() == [-1, 0, 1, 1, 1]


def test_synthetic_identity_is_its_spec_not_its_last_bits(tiny_dir, tmp_path):
    """LAPACK builds differ in the last bits of the bases, so a synthflame head is identified by its spec;
    an edited model file (no longer the one its manifest lists) is identified by its bytes."""
    import hashlib
    import json
    import shutil

    ref = load_flame_data(tiny_dir / "generic_model.pkl")
    assert ref.sha256 != hashlib.sha256((tiny_dir / "generic_model.pkl").read_bytes()).hexdigest()
    assert load_head_model(tiny_dir).sha256 == ref.sha256 == load_head_model("synthetic:tiny").sha256
    copy = tmp_path / "rebuilt"
    shutil.copytree(tiny_dir, copy)
    blob = bytearray((copy / "generic_model.pkl").read_bytes())
    blob[len(blob) // 2] ^= 1  # one bit of the array payload, as another BLAS build would leave it
    (copy / "generic_model.pkl").write_bytes(bytes(blob))
    edited_sha = hashlib.sha256(bytes(blob)).hexdigest()
    assert load_flame_data(copy / "generic_model.pkl", use_cache=False).sha256 == edited_sha  # manifest disagrees
    man = json.loads((copy / "manifest.json").read_text())
    man["files"]["generic_model.pkl"]["sha256"] = edited_sha  # the generator's own output on that machine
    (copy / "manifest.json").write_text(json.dumps(man))
    assert load_flame_data(copy / "generic_model.pkl", use_cache=False).sha256 == ref.sha256
    man["seed"] = 1  # another spec is another head
    (copy / "manifest.json").write_text(json.dumps(man))
    assert load_flame_data(copy / "generic_model.pkl", use_cache=False).sha256 != ref.sha256
