"""FLAME file loading: chumpy-free unpickling, formats, location, cache, side files, validation errors."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from toyflame import build_toy_flame, dump_chumpy_pickle, write_toy_dir

from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.heads import find_model_file, load_flame_data, load_head_model
from omnibench.heads import loader as loader_mod
from omnibench.heads._pickle import load_pickle

ARRAY_FIELDS = ("v_template", "faces", "shapedirs", "posedirs", "J_regressor", "weights", "parents")


def _assert_same_arrays(a, b):
    for name in ARRAY_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_chumpy_pickle_needs_no_chumpy_and_matches_plain_and_npz(toy_dir):
    with open(toy_dir / "generic_model_chumpy.pkl", "rb") as fh, pytest.raises(ModuleNotFoundError, match="chumpy"):
        pickle.load(fh, encoding="latin1")
    plain = load_flame_data(toy_dir / "generic_model.pkl")
    chumpy = load_flame_data(toy_dir / "generic_model_chumpy.pkl")
    npz = load_flame_data(toy_dir / "flame" / "FLAME_NEUTRAL.npz")
    _assert_same_arrays(plain, chumpy)
    _assert_same_arrays(plain, npz)
    model, _ = build_toy_flame(0)
    np.testing.assert_array_equal(chumpy.shapedirs, model["shapedirs"])
    np.testing.assert_array_equal(chumpy.J_regressor, model["J_regressor"].toarray())
    assert chumpy.faces.dtype == np.int64 and plain.parents.tolist() == [-1, 0, 1, 1, 1]
    # and the forward passes agree
    pose = torch.tensor([[0.1, 0.2, 0.0, 0.05, 0.0, 0.1, 0.2, 0, 0, 0, 0, 0, 0, 0.1, 0]])
    outs = [load_head_model(p, dtype=torch.float64)(shape=torch.ones(1, 5), pose=pose).vertices
            for p in (toy_dir / "generic_model_chumpy.pkl", toy_dir / "flame" / "FLAME_NEUTRAL.npz")]
    assert torch.equal(outs[0], outs[1])


def test_chumpy_object_without_x_fails_loudly(tmp_path):
    class NoX:
        def __getstate__(self):
            return {"_dirty_vars": set()}

    NoX.__module__, NoX.__qualname__ = "chumpy.reordering", "Select"
    import sys
    import types

    mod_r, mod = types.ModuleType("chumpy.reordering"), types.ModuleType("chumpy")
    mod_r.Select = NoX
    sys.modules["chumpy"], sys.modules["chumpy.reordering"] = mod, mod_r
    try:
        with open(tmp_path / "bad.pkl", "wb") as fh:
            pickle.dump({"shapedirs": NoX()}, fh, protocol=2)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.reordering"]
    with pytest.raises(OmnibenchError, match="no 'x' array"):
        load_pickle(tmp_path / "bad.pkl")


def test_any_chumpy_class_with_x_becomes_an_array(tmp_path):
    arr = np.arange(6.0).reshape(2, 3)
    dump_chumpy_pickle({"a": arr, "b": [arr]}, tmp_path / "ch.pkl", keys=("a",))
    out = load_pickle(tmp_path / "ch.pkl")
    assert isinstance(out["a"], np.ndarray) and np.array_equal(out["a"], arr)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_unlisted_globals_are_refused(tmp_path):
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"v_template": _Evil()}, fh, protocol=2)
    with pytest.raises(OmnibenchError, match="refusing to unpickle global"):
        load_pickle(tmp_path / "evil.pkl")
    np.save(tmp_path / "evil.npy", np.array({"x": _Evil()}, dtype=object), allow_pickle=True)
    (tmp_path / "flame").mkdir()
    shutil.copy(tmp_path / "evil.npy", tmp_path / "landmark_embedding.npy")
    from omnibench.heads._pickle import load_npy

    with pytest.raises(OmnibenchError, match="refusing"):
        load_npy(tmp_path / "evil.npy")


def test_wrong_column_counts_and_keys_are_rejected(tmp_path):
    model, _ = build_toy_flame(0, n_columns=350)
    with open(tmp_path / "m350.pkl", "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    with pytest.raises(OmnibenchError, match=r"shapedirs has shape \(\d+, 3, 350\).*400"):
        load_flame_data(tmp_path / "m350.pkl")
    model, _ = build_toy_flame(0)
    bad = dict(model, posedirs=model["posedirs"][:, :, :27])
    np.savez(tmp_path / "pd.npz", **{k: (v.toarray() if k == "J_regressor" else np.asarray(v)) for k, v in bad.items()})
    with pytest.raises(OmnibenchError, match="posedirs has shape"):
        load_flame_data(tmp_path / "pd.npz")
    missing = {k: v for k, v in model.items() if k != "weights"}
    with open(tmp_path / "nokey.pkl", "wb") as fh:
        pickle.dump(missing, fh, protocol=2)
    with pytest.raises(OmnibenchError, match=r"missing keys \['weights'\]"):
        load_flame_data(tmp_path / "nokey.pkl")
    with open(tmp_path / "style.pkl", "wb") as fh:
        pickle.dump(dict(model, bs_type="lrotmin_x"), fh, protocol=2)
    with pytest.raises(OmnibenchError, match="bs_type"):
        load_flame_data(tmp_path / "style.pkl")
    (tmp_path / "x.obj").write_text("v 0 0 0\n")
    with pytest.raises(OmnibenchError, match="unsupported"):
        load_flame_data(tmp_path / "x.obj")


def test_kintree_minus_one_and_sentinel_both_work(tmp_path):
    model, _ = build_toy_flame(0)
    model["kintree_table"] = np.array([[-1, 0, 1, 1, 1], [0, 1, 2, 3, 4]])
    with open(tmp_path / "k.pkl", "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    assert load_flame_data(tmp_path / "k.pkl").parents.tolist() == [-1, 0, 1, 1, 1]
    model["kintree_table"] = np.array([[-1, 0, 0, 1, 1], [0, 1, 2, 3, 4]])
    with open(tmp_path / "k2.pkl", "wb") as fh:
        pickle.dump(model, fh, protocol=2)
    with pytest.raises(OmnibenchError, match="kinematic tree"):
        load_flame_data(tmp_path / "k2.pkl")


def test_location_explicit_env_cache_and_smplx_layout(toy_dir, tmp_path, monkeypatch):
    assert find_model_file(toy_dir) == toy_dir / "generic_model.pkl"
    smplx_only = tmp_path / "smplx"
    shutil.copytree(toy_dir / "flame", smplx_only / "flame")
    assert find_model_file(smplx_only) == smplx_only / "flame" / "FLAME_NEUTRAL.npz"
    data = load_flame_data(smplx_only)  # RingNet side files next to FLAME_NEUTRAL.npz
    assert data.side_files["static"].startswith("ringnet:") and data.full_lmk is None
    monkeypatch.setenv("OMNIBENCH_FLAME", str(smplx_only))
    assert find_model_file() == smplx_only / "flame" / "FLAME_NEUTRAL.npz"
    monkeypatch.delenv("OMNIBENCH_FLAME")
    with pytest.raises(MissingAssetError, match="OMNIBENCH_FLAME"):
        find_model_file()
    cache_flame = loader_mod.cache_root() / "flame"
    shutil.copytree(toy_dir / "flame", cache_flame)
    assert find_model_file() == cache_flame / "FLAME_NEUTRAL.npz"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingAssetError, match="no FLAME model file"):
        find_model_file(empty)
    with pytest.raises(MissingAssetError, match="not found"):
        load_head_model(tmp_path / "nope.pkl")


def test_pickle_is_converted_once_to_a_sha_keyed_cache(toy_dir, monkeypatch):
    src = toy_dir / "generic_model_chumpy.pkl"
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    first = load_flame_data(src)
    assert first.sha256 == sha
    cached = loader_mod.cache_root() / "heads" / f"flame-v1-{sha}.npz"
    assert cached.is_file()

    def boom(path):
        raise AssertionError("cache not used")

    monkeypatch.setattr(loader_mod, "_read_raw", boom)
    second = load_flame_data(src)
    _assert_same_arrays(first, second)
    cached.write_bytes(b"garbage")  # a corrupt cache is rebuilt
    monkeypatch.undo()
    third = load_flame_data(src)
    _assert_same_arrays(first, third)
    assert load_head_model(src).sha256 == sha


def test_side_files_deca_ringnet_tf_flame_eyelids_masks(toy_dir, tmp_path):
    _, side = build_toy_flame(0)
    deca = load_flame_data(toy_dir)
    assert deca.side_files["static"].startswith("deca:")
    np.testing.assert_array_equal(deca.static_lmk.face_idx, side["static"][0])
    np.testing.assert_array_equal(deca.dynamic_lmk.face_idx, side["dynamic"][0])
    np.testing.assert_allclose(deca.dynamic_lmk.bary, side["dynamic"][1], atol=1e-7)  # stored as float32
    np.testing.assert_array_equal(deca.full_lmk.face_idx, side["full"][0])
    np.testing.assert_array_equal(deca.eyelids, side["eyelids"])
    assert set(deca.masks) == set(side["masks"]) and deca.masks["scalp"].dtype == np.int64
    np.testing.assert_array_equal(deca.masks["lips"], side["masks"]["lips"])
    # without the DECA file: RingNet static + dynamic, TF_FLAME 68
    ring = tmp_path / "ring"
    shutil.copytree(toy_dir, ring)
    (ring / "landmark_embedding.npy").unlink()
    rn = load_flame_data(ring)
    assert rn.side_files["dynamic"].startswith("ringnet:") and rn.side_files["full68"].startswith("tf_flame:")
    np.testing.assert_array_equal(rn.static_lmk.face_idx, deca.static_lmk.face_idx)
    np.testing.assert_allclose(rn.dynamic_lmk.bary, side["dynamic"][1], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rn.full_lmk.face_idx, deca.full_lmk.face_idx)
    # DECA-style file with plain ndarrays (no torch tensors) is accepted too
    obj = np.load(toy_dir / "landmark_embedding.npy", allow_pickle=True).item()
    obj = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in obj.items()}
    np.save(ring / "landmark_embedding.npy", np.array(obj, dtype=object), allow_pickle=True)
    np.testing.assert_array_equal(load_flame_data(ring).dynamic_lmk.face_idx, deca.dynamic_lmk.face_idx)
    # masks / embeddings that do not fit the mesh are rejected
    with open(ring / "FLAME_masks.pkl", "wb") as fh:
        pickle.dump({"face": np.array([0, 10 ** 6])}, fh, protocol=2)
    with pytest.raises(OmnibenchError, match="mask 'face'"):
        load_flame_data(ring)
    (ring / "FLAME_masks.pkl").unlink()
    obj["static_lmk_faces_idx"] = obj["static_lmk_faces_idx"] + 10 ** 6
    np.save(ring / "landmark_embedding.npy", np.array(obj, dtype=object), allow_pickle=True)
    with pytest.raises(OmnibenchError, match="face index out of range"):
        load_flame_data(ring)
    np.save(ring / "l_eyelid.npy", np.zeros((3, 3)))
    (ring / "landmark_embedding.npy").unlink()
    with pytest.raises(OmnibenchError, match="eyelid blendshape has shape"):
        load_flame_data(ring)


def test_model_without_side_files_has_no_landmarks(tmp_path):
    root = write_toy_dir(tmp_path / "t")
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(root / "generic_model.pkl", only / "generic_model.pkl")
    model = load_head_model(only)
    out = model(pose=torch.zeros(2, 15))
    assert out.landmarks is None and out.landmarks3d is None and not model.has_landmarks
    assert model.masks == {} and not model.has_eyelids
    with pytest.raises(OmnibenchError, match="no eyelid blendshapes"):
        model(eyelids=torch.ones(1, 2))


def test_torch_tensor_calls_only_accept_numeric_arrays(tmp_path):
    good = pickle.PROTO + b"\x02" + b"ctorch\ntensor\n" + pickle.dumps(np.arange(3), protocol=2)[2:-1] + b"\x85R."
    (tmp_path / "good.pkl").write_bytes(good)
    assert torch.equal(load_pickle(tmp_path / "good.pkl"), torch.arange(3))
    bad = pickle.PROTO + b"\x02" + b"ctorch\ntensor\nX\x02\x00\x00\x00hi\x85R."
    (tmp_path / "bad.pkl").write_bytes(bad)
    with pytest.raises(OmnibenchError, match="torch.tensor"):
        load_pickle(tmp_path / "bad.pkl")
