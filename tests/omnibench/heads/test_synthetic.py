"""Tests of the synthflame generator (flame.md §5.15-5.16): file layout, formats, determinism, validation."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from omnibench.errors import OmnibenchError
from omnibench.heads.synthetic import GENERATOR_VERSION, SynthValidationError, make_synthetic_head
from omnibench.heads.synthetic.mesh import build_mesh
from omnibench.heads.synthetic.model import build_head
from omnibench.heads.synthetic.presets import PRESETS
from omnibench.heads.synthetic.serialise import MODEL_KEYS
from omnibench.heads.synthetic.validate import validate_head

FILES = {
    "generic_model.pkl", "generic_model_chumpy.pkl", "flame2023.pkl", "flame/FLAME_NEUTRAL.pkl",
    "flame/FLAME_NEUTRAL.npz", "flame/flame_static_embedding.pkl", "flame/flame_dynamic_embedding.npy",
    "flame_static_embedding.pkl", "flame_static_embedding_68.pkl", "flame_dynamic_embedding.npy",
    "landmark_embedding.npy", "FLAME_masks.pkl", "l_eyelid.npy", "r_eyelid.npy", "head_template.obj",
}
MASK_KEYS = {"face", "lips", "nose", "left_eye_region", "right_eye_region", "eye_region", "forehead", "scalp",
             "left_ear", "right_ear", "neck", "boundary", "left_eyeball", "right_eyeball"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic_head("tiny", 0, tmp_path_factory.mktemp("tiny"))


def _load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


class _ChStub:
    def __setstate__(self, state: dict) -> None:
        self.state = state


class _ChumpyFreeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: ANN201
        if module.startswith("chumpy"):
            return _ChStub
        return super().find_class(module, name)


def test_file_set_and_manifest(tiny: Path) -> None:
    man = json.loads((tiny / "manifest.json").read_text())
    assert set(man["files"]) == FILES
    for rel, meta in man["files"].items():
        assert hashlib.sha256((tiny / rel).read_bytes()).hexdigest() == meta["sha256"], rel
    assert man["generator"] == "synthflame" and man["generator_version"] == GENERATOR_VERSION
    assert "synthetic, not FLAME" in man["statement"]
    assert man["counts"]["vertices"] == PRESETS["tiny"].expect_v
    assert man["flags"]["deca_tensor_compat"] is True
    plain = (tiny / "generic_model.pkl").read_bytes()
    assert (tiny / "flame2023.pkl").read_bytes() == plain == (tiny / "flame/FLAME_NEUTRAL.pkl").read_bytes()
    assert len(man["mirror_idx"]) == man["counts"]["vertices"]
    assert set(man["versions"]) == {"numpy", "scipy", "torch"} and man["versions"]["numpy"] == np.__version__
    assert man["expressions"]["semantic"]["300"] == "jaw_drop" and len(man["expressions"]["semantic"]) == 16
    assert np.asarray(man["landmarks"]["targets_68"]).shape == (68, 3)
    assert man["joints"]["names"] == ["global", "neck", "jaw", "left_eye", "right_eye"]
    assert man["eyelids"]["apply"].startswith("after LBS")
    assert man["flags"]["kintree_sentinel"] == 4294967295 and man["flags"]["f_dtype"] == "uint32"
    assert man["boundary_loops"] == {"neck": 24, "mouth": 4}
    assert all(v["ok"] for v in man["validation"].values())


def test_model_pickle_layout(tiny: Path) -> None:
    m = _load(tiny / "generic_model.pkl")
    assert list(m) == list(MODEL_KEYS)
    n_v = PRESETS["tiny"].expect_v
    assert m["v_template"].shape == (n_v, 3) and m["v_template"].dtype == np.float64
    assert m["f"].shape == (PRESETS["tiny"].expect_f, 3) and m["f"].dtype == np.uint32
    assert m["shapedirs"].shape == (n_v, 3, 400) and m["posedirs"].shape == (n_v, 3, 36)
    assert isinstance(m["J_regressor"], sp.csc_matrix) and m["J_regressor"].shape == (5, n_v)
    assert m["J"].shape == (5, 3) and m["weights"].shape == (n_v, 5)
    assert m["kintree_table"].tolist() == [[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]]
    assert m["bs_style"] == "lbs" and m["bs_type"] == "lrotmin"
    np.testing.assert_allclose(m["J_regressor"].toarray() @ m["v_template"], m["J"], atol=1e-15)
    with open(tiny / "generic_model.pkl", "rb") as fh:  # python-3 bytes: loads without latin1 too
        assert pickle.load(fh)["shapedirs"].shape[2] == 400


def test_chumpy_variant(tiny: Path) -> None:
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    with open(tiny / "generic_model_chumpy.pkl", "rb") as fh, pytest.raises(ModuleNotFoundError) as exc:
        pickle.load(fh, encoding="latin1")
    assert exc.value.name == "chumpy"
    with open(tiny / "generic_model_chumpy.pkl", "rb") as fh:
        ch = _ChumpyFreeUnpickler(fh, encoding="latin1").load()
    stub = ch["shapedirs"]
    assert isinstance(stub, _ChStub)
    assert set(stub.state) == {"x", "_dirty_vars", "_itr", "_make_dense", "_make_sparse"}
    plain = _load(tiny / "generic_model.pkl")
    np.testing.assert_array_equal(stub.state["x"], plain["shapedirs"])
    for k in MODEL_KEYS:
        if k != "shapedirs" and k != "J_regressor":
            np.testing.assert_array_equal(np.asarray(ch[k]), np.asarray(plain[k]))
    assert b"chumpy.ch" in (tiny / "generic_model_chumpy.pkl").read_bytes()


def test_smplx_npz(tiny: Path) -> None:
    plain = _load(tiny / "generic_model.pkl")
    with np.load(tiny / "flame/FLAME_NEUTRAL.npz", allow_pickle=False) as z:
        assert set(z.files) == set(MODEL_KEYS)
        np.testing.assert_array_equal(z["J_regressor"], plain["J_regressor"].toarray())
        np.testing.assert_array_equal(z["shapedirs"], plain["shapedirs"])
        assert str(z["bs_type"]) == "lrotmin"


def test_landmark_mask_and_eyelid_formats(tiny: Path) -> None:
    n_f = PRESETS["tiny"].expect_f
    st = _load(tiny / "flame_static_embedding.pkl")
    assert st["lmk_face_idx"].shape == (51,) and st["lmk_face_idx"].dtype == np.uint32
    assert st["lmk_b_coords"].shape == (51, 3) and st["lmk_b_coords"].dtype == np.float64
    s68 = _load(tiny / "flame_static_embedding_68.pkl")
    np.testing.assert_array_equal(s68["lmk_face_idx"][17:], st["lmk_face_idx"])
    dyn = np.load(tiny / "flame_dynamic_embedding.npy", allow_pickle=True, encoding="latin1")[()]
    assert isinstance(dyn["lmk_face_idx"], list) and len(dyn["lmk_face_idx"]) == 79
    assert dyn["lmk_face_idx"][0].dtype == np.uint32 and dyn["lmk_face_idx"][0].shape == (17,)
    assert np.array(dyn["lmk_b_coords"]).shape == (79, 17, 3)
    assert np.array(dyn["lmk_face_idx"]).max() < n_f
    deca = np.load(tiny / "landmark_embedding.npy", allow_pickle=True, encoding="latin1")[()]
    assert isinstance(deca["dynamic_lmk_faces_idx"], torch.Tensor) and deca["dynamic_lmk_faces_idx"].dtype == torch.int64
    assert deca["dynamic_lmk_bary_coords"].dtype == torch.float32 and tuple(deca["dynamic_lmk_bary_coords"].shape) == (79, 17, 3)
    assert deca["static_lmk_faces_idx"].dtype == np.int64 and deca["full_lmk_faces_idx"].shape == (1, 68)
    assert deca["full_lmk_bary_coords"].dtype == np.float32
    np.testing.assert_array_equal(deca["full_lmk_faces_idx"][0, 17:], deca["static_lmk_faces_idx"])
    np.testing.assert_array_equal(deca["dynamic_lmk_faces_idx"].numpy(), np.array(dyn["lmk_face_idx"]))
    masks = _load(tiny / "FLAME_masks.pkl")
    assert set(masks) == MASK_KEYS and all(v.dtype == np.int64 for v in masks.values())
    assert masks["left_eyeball"].size == masks["right_eyeball"].size == 50
    for name in ("l_eyelid.npy", "r_eyelid.npy"):
        e = np.load(tiny / name)
        assert e.shape == (PRESETS["tiny"].expect_v, 3) and e.dtype == np.float64


def test_deterministic_bytes_and_seed_dependence(tiny: Path, tmp_path: Path) -> None:
    again = make_synthetic_head("tiny", 0, tmp_path / "again")
    for rel in FILES | {"manifest.json"}:
        assert (again / rel).read_bytes() == (tiny / rel).read_bytes(), rel
    other = _load(make_synthetic_head("tiny", 1, tmp_path / "seed1") / "generic_model.pkl")
    base = _load(tiny / "generic_model.pkl")
    np.testing.assert_array_equal(other["v_template"], base["v_template"])
    assert not np.array_equal(other["shapedirs"][:, :, 316:], base["shapedirs"][:, :, 316:])


def test_reuse_and_regenerate(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    d = make_synthetic_head("tiny", 3)
    assert d == tmp_path / "cache" / "heads" / f"synthflame-tiny-s3-v{GENERATOR_VERSION}"
    calls = []
    import omnibench.heads.synthetic.generate as gen

    real = gen.generate_files
    monkeypatch.setattr(gen, "generate_files", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert make_synthetic_head("tiny", 3) == d and not calls  # reused
    (d / "l_eyelid.npy").write_bytes(b"corrupt")
    make_synthetic_head("tiny", 3)
    assert calls == [1]
    data = bytearray((d / "r_eyelid.npy").read_bytes())  # same size, one byte flipped
    data[-1] ^= 0xFF
    (d / "r_eyelid.npy").write_bytes(bytes(data))
    make_synthetic_head("tiny", 3)
    assert calls == [1, 1]
    assert np.load(d / "l_eyelid.npy").shape == (PRESETS["tiny"].expect_v, 3)


def test_invalid_column_override(tmp_path: Path) -> None:
    d = make_synthetic_head("tiny", 0, tmp_path, columns=350)
    assert _load(d / "generic_model.pkl")["shapedirs"].shape[2] == 350
    man = json.loads((d / "manifest.json").read_text())
    assert man["flags"]["valid_flame_layout"] is False and man["counts"]["shapedirs_columns"] == 350


def test_bad_arguments() -> None:
    with pytest.raises(OmnibenchError, match="did you mean 'tiny'"):
        make_synthetic_head("tinyy")
    with pytest.raises(OmnibenchError, match="seed"):
        make_synthetic_head("tiny", -1)
    with pytest.raises(OmnibenchError, match="columns"):
        make_synthetic_head("tiny", 0, columns=0)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_counts_per_preset(preset: str) -> None:
    p = PRESETS[preset]
    m = build_mesh(p)
    assert (m.n_vertices, m.faces.shape[0]) == (p.expect_v, p.expect_f)
    if preset == "flame-count":
        assert (m.n_vertices, m.faces.shape[0]) == (5023, 9976)
        assert m.n_head == 4039 and m.left_eye.stop - m.left_eye.start == 492
    # exact mirror symmetry of the template
    flipped = m.vertices[m.mirror_idx] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(flipped, m.vertices)


def test_validation_rejects_broken_models() -> None:
    head = build_head("tiny", 0)
    validate_head(head)  # the untouched head passes
    w = head.model["weights"]
    w[5, 0] += 1e-6
    with pytest.raises(SynthValidationError, match="rig.weights_sum"):
        validate_head(head)
    w[5, 0] -= 1e-6
    sd = head.model["shapedirs"]
    sd[:, :, 7] += 0.01 * sd[:, :, 6]
    with pytest.raises(SynthValidationError, match="bases.shape_orthogonal"):
        validate_head(head)
    sd[:, :, 7] -= 0.01 * sd[:, :, 6]
    pd = head.model["posedirs"]
    pd[head.mesh.rows[-1], 1, 16] = 1e-3  # a jaw corrective on the root-only neck ring
    with pytest.raises(SynthValidationError, match="lbs.jaw_moves_only_jaw_weighted"):
        validate_head(head)


def test_sys_modules_clean_after_dump() -> None:
    from omnibench.heads.synthetic.serialise import chumpy_pickle_bytes

    data = chumpy_pickle_bytes({"shapedirs": np.zeros((2, 3, 4))})
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(data)
    assert _ChumpyFreeUnpickler(io.BytesIO(data)).load()["shapedirs"].state["x"].shape == (2, 3, 4)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from omnibench.cli import main

    assert main(["heads", "make-synthetic", "--preset", "tiny", "--seed", "0", "--out", str(tmp_path / "o")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["vertices"] == PRESETS["tiny"].expect_v and out["generator"] == "synthflame"
    assert main(["heads", "make-synthetic", "--preset", "tiny", "--columns", "0", "--out", str(tmp_path / "x")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["heads", "make-synthetic", "--preset", "huge"])
    assert exc.value.code == 2


def test_golden_statistics_of_tiny_seed0() -> None:
    """Regression guard: any change to these numbers must come with a GENERATOR_VERSION bump."""
    h = build_head("tiny", 0)
    m = h.model
    np.testing.assert_allclose(m["v_template"].sum(), -1.6327702010498122, rtol=1e-12)
    np.testing.assert_allclose(np.abs(m["shapedirs"]).sum(), 29.656308261900598, rtol=1e-9)
    np.testing.assert_allclose(np.abs(m["posedirs"]).sum(), 0.2234312708451887, rtol=1e-9)
    assert int(h.landmarks.full.faces.sum()) == 26321 and int(h.landmarks.dyn_faces.sum()) == 636050
    assert GENERATOR_VERSION == "1"


def test_orthonormalise_replaces_dependent_columns() -> None:
    from omnibench.heads.synthetic.bases import _orthonormalise
    from omnibench.heads.synthetic.mesh import symmetrise

    mesh = build_mesh(PRESETS["tiny"])
    rng = np.random.default_rng(0)
    raw = symmetrise(rng.standard_normal((3, mesh.n_vertices, 3)).transpose(1, 2, 0), mesh.mirror_idx, 1)
    raw = np.moveaxis(raw, -1, 0).copy()
    raw[2] = 2.0 * raw[0] - raw[1]  # dependent
    calls = []

    def fallback(k: int, par: int) -> np.ndarray:
        calls.append((k, par))
        return symmetrise(rng.standard_normal((mesh.n_vertices, 3)), mesh.mirror_idx, par)

    q = _orthonormalise(raw, np.ones(3, dtype=np.int64), mesh, fallback)
    assert calls == [(2, 1)]
    flat = q.reshape(3, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(3), atol=1e-12)
    assert float(flat[0] @ raw[0].reshape(-1)) > 0


def test_deca_file_without_torch_falls_back_to_ndarrays(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from omnibench.heads.synthetic import serialise as ser

    real = importlib.util.find_spec
    monkeypatch.setattr(ser.importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    head = build_head("tiny", 0)
    files, flags = ser.serialise(head)
    assert flags == {"deca_tensor_compat": False}
    deca = np.load(io.BytesIO(files["landmark_embedding.npy"]), allow_pickle=True)[()]
    assert isinstance(deca["dynamic_lmk_faces_idx"], np.ndarray)
    with pytest.raises(AttributeError):  # DECA calls .long() on the dynamic entries
        deca["dynamic_lmk_faces_idx"].long()


@pytest.mark.slow
def test_flame_count_generates_and_validates(tmp_path: Path) -> None:
    d = make_synthetic_head("flame-count", 0, tmp_path)
    m = _load(d / "generic_model.pkl")
    assert m["v_template"].shape == (5023, 3) and m["f"].shape == (9976, 3)
    man = json.loads((d / "manifest.json").read_text())
    assert man["boundary_loops"] == {"neck": 48, "mouth": 14}
    assert man["validation"]["landmarks.static_within_tol"]["ok"]


def test_int64_faces_and_minus_one_root_options(tmp_path: Path) -> None:
    d = make_synthetic_head("tiny", 0, tmp_path, f_dtype="int64", kintree_sentinel=False)
    m = _load(d / "generic_model.pkl")
    assert m["f"].dtype == np.int64 and m["kintree_table"][0, 0] == -1
    assert json.loads((d / "manifest.json").read_text())["flags"]["kintree_sentinel"] == -1
