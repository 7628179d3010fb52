"""Find and load FLAME-layout head models (real FLAME files or the synthetic stand-in) into numpy arrays.

Model files (flame.md §1.2): FLAME 2020 ``generic_model.pkl``, FLAME 2023 ``flame2023.pkl``, the smplx layout
``flame/FLAME_NEUTRAL.pkl|npz``, or any ``.npz`` with the same keys. Pickles are read through a restricted
unpickler (no chumpy needed, nothing outside an allow-list is executed; see :mod:`._pickle`) and converted
once to an npz cache ``<cache_root>/heads/flame-v1-<sha256>.npz`` keyed by the source file's SHA-256.

Side files, looked up next to the model file (also in ``flame/``, ``blendshapes/``, ``FLAME_masks/`` below it,
and in the parent when the model sits in a folder named ``flame``):

* landmarks: DECA/MICA ``landmark_embedding.npy`` (preferred: static 51 + dynamic 79x17 + full 68), else
  RingNet/smplx ``flame_static_embedding.pkl`` (51 points, assumed to be RingNet's, not TF_FLAME's 51) +
  ``flame_dynamic_embedding.npy``; the full 68 from DECA or TF_FLAME ``flame_static_embedding_68.pkl``;
* FLAME 2023 eyelid blendshapes ``l_eyelid.npy``/``r_eyelid.npy`` (V, 3);
* vertex masks ``FLAME_masks.pkl`` (dict of index arrays).

Location: an explicit path (file or folder), else ``$OMNIBENCH_FLAME``, else ``<cache_root>/flame/``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omnibench.assets import cache_root, sha256_file
from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.fileio import atomic_savez
from omnibench.heads import landmarks as lm
from omnibench.heads._pickle import load_npy, load_npy_stream, load_pickle

N_JOINTS = 5
POSE_DIM = 3 * N_JOINTS  # FLAME axis-angle pose [global|neck|jaw|leye|reye]: the one definition
N_SHAPEDIRS = 400  # 300 shape + 100 expression; expressions start at column 300
SHAPE_COLUMNS = 300
EXPRESSION_COLUMNS = 100
N_POSEDIRS = 9 * (N_JOINTS - 1)
FLAME_PARENTS = (-1, 0, 1, 1, 1)
CACHE_FORMAT = "flame-v1"
ENV_VAR = "OMNIBENCH_FLAME"

#: file names tried, in order, when a folder is given (FLAME 2020 first: regressors output 2020 coefficients)
MODEL_NAMES = (
    "generic_model.pkl", "flame2023.pkl", "flame2023_Open.pkl", "FLAME_NEUTRAL.pkl", "FLAME_NEUTRAL.npz",
    "flame/FLAME_NEUTRAL.pkl", "flame/FLAME_NEUTRAL.npz", "FLAME2020/generic_model.pkl", "FLAME2023/flame2023.pkl",
)
_REQUIRED = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")


@dataclass
class FlameData:
    """A FLAME-layout model as float64/int64 numpy arrays (V vertices, F faces, 5 joints).

    ``shapedirs`` (V, 3, 400): columns 0..299 shape, 300..399 expression. ``posedirs`` (V, 3, 36), column
    ``9*(j-1) + 3*r + c`` for joint j in 1..4 and element (r, c) of ``R_j - I``. ``J_regressor`` (5, V) dense.
    ``parents`` (5,) with ``parents[0] == -1``. Embeddings are ``None`` when no side file was found;
    ``eyelids`` is (2, V, 3) = [left (+x eye), right] or ``None``.
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    sha256: str = ""
    name: str = "flame"
    source: Path | None = None
    static_lmk: lm.Embedding | None = None
    dynamic_lmk: lm.Embedding | None = None
    full_lmk: lm.Embedding | None = None
    eyelids: np.ndarray | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    side_files: dict[str, str] = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])


# ------------------------------------------------------------------------------------------ file helpers


def _load_npz(path: Path) -> dict[str, Any]:
    """Read every member of an npz; object members go through the restricted unpickler."""
    out: dict[str, Any] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                key = member[:-4] if member.endswith(".npy") else member
                out[key] = load_npy_stream(io.BytesIO(zf.read(member)), f"{path}:{member}")
    except zipfile.BadZipFile as exc:
        raise OmnibenchError(f"{path} is not a valid .npz archive: {exc}") from exc
    return out


def _read_raw(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        raw = _load_npz(path)
    elif suffix in (".pkl", ".pickle"):
        raw = load_pickle(path)
    else:
        raise OmnibenchError(f"{path}: unsupported head model file type '{suffix}' (expected .pkl or .npz)")
    if not isinstance(raw, dict):
        raise OmnibenchError(f"{path}: expected a pickled dict of FLAME arrays, got {type(raw).__name__}")
    return raw


def _dense(value: Any) -> np.ndarray:
    if hasattr(value, "toarray") and not isinstance(value, np.ndarray):  # scipy.sparse
        return np.asarray(value.toarray())
    return np.asarray(value)


def _as_str(value: Any) -> str:
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def validate_arrays(raw: dict[str, Any], source: str) -> dict[str, np.ndarray]:
    """Check keys, shapes and column counts; return the canonical float64/int64 array dict."""
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise OmnibenchError(f"{source}: not a FLAME model file, missing keys {missing} (found {sorted(raw)})")
    for key, want in (("bs_style", "lbs"), ("bs_type", "lrotmin")):
        if key in raw and _as_str(raw[key]) != want:
            raise OmnibenchError(f"{source}: {key}={_as_str(raw[key])!r}, only {want!r} FLAME files are supported")
    v = np.asarray(raw["v_template"], dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise OmnibenchError(f"{source}: v_template must be (V, 3), got {v.shape}")
    n_v = v.shape[0]
    faces = np.asarray(raw["f"])
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise OmnibenchError(f"{source}: f must be an integer (F, 3) array, got {faces.dtype} {faces.shape}")
    faces = faces.astype(np.int64)
    if faces.min() < 0 or faces.max() >= n_v:
        raise OmnibenchError(f"{source}: face indices out of range [0, {n_v})")
    shapedirs = np.asarray(raw["shapedirs"], dtype=np.float64)
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (n_v, 3) or shapedirs.shape[2] != N_SHAPEDIRS:
        raise OmnibenchError(
            f"{source}: shapedirs has shape {shapedirs.shape}; FLAME files have (V, 3, {N_SHAPEDIRS}) = "
            f"({n_v}, 3, {SHAPE_COLUMNS} shape + {EXPRESSION_COLUMNS} expression columns). "
            "Re-export the model with the full 400-column basis"
        )
    posedirs = np.asarray(raw["posedirs"], dtype=np.float64)
    if posedirs.shape != (n_v, 3, N_POSEDIRS):
        raise OmnibenchError(f"{source}: posedirs has shape {posedirs.shape}, expected ({n_v}, 3, {N_POSEDIRS})")
    jreg = _dense(raw["J_regressor"]).astype(np.float64)
    if jreg.shape != (N_JOINTS, n_v):
        raise OmnibenchError(f"{source}: J_regressor has shape {jreg.shape}, expected ({N_JOINTS}, {n_v})")
    weights = np.asarray(raw["weights"], dtype=np.float64)
    if weights.shape != (n_v, N_JOINTS):
        raise OmnibenchError(f"{source}: weights has shape {weights.shape}, expected ({n_v}, {N_JOINTS})")
    kin = np.asarray(raw["kintree_table"])
    if kin.shape != (2, N_JOINTS):
        raise OmnibenchError(f"{source}: kintree_table has shape {kin.shape}, expected (2, {N_JOINTS})")
    parents = kin[0].astype(np.int64)
    parents[0] = -1  # SMPL-family files store the uint32 sentinel 4294967295 here
    if tuple(int(p) for p in parents) != FLAME_PARENTS or list(kin[1]) != list(range(N_JOINTS)):
        raise OmnibenchError(f"{source}: kinematic tree {kin.tolist()} is not FLAME's (parents {list(FLAME_PARENTS)})")
    for key, arr in (("v_template", v), ("shapedirs", shapedirs), ("posedirs", posedirs),
                     ("J_regressor", jreg), ("weights", weights)):
        if not np.all(np.isfinite(arr)):
            raise OmnibenchError(f"{source}: {key} contains non-finite values")
    return {"v_template": v, "f": faces, "shapedirs": shapedirs, "posedirs": posedirs,
            "J_regressor": jreg, "weights": weights, "parents": parents}


# ---------------------------------------------------------------------------------------------- location


def find_model_file(path: str | os.PathLike[str] | None = None) -> Path:
    """Resolve the model file: ``path`` (file or folder), else ``$OMNIBENCH_FLAME``, else ``<cache_root>/flame/``."""
    origin = "the given path"
    if path is None:
        env = os.environ.get(ENV_VAR)
        path, origin = (env, f"${ENV_VAR}") if env else (cache_root() / "flame", "the cache folder")
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        for name in MODEL_NAMES:
            if (p / name).is_file():
                return p / name
        raise MissingAssetError(
            f"no FLAME model file in {p} ({origin}); expected one of {', '.join(MODEL_NAMES)}. "
            f"Put FLAME 2020 generic_model.pkl there or set {ENV_VAR}; see docs/head-model.md"
        )
    raise MissingAssetError(
        f"FLAME model not found at {p} ({origin}). Download FLAME 2020 from https://flame.is.tue.mpg.de "
        f"(licence required) and pass the file, set {ENV_VAR}, or copy it to {cache_root() / 'flame'}; "
        "use 'synthetic' for the bundled stand-in"
    )


def _side_dirs(model_path: Path) -> list[Path]:
    d = model_path.parent
    dirs = [d, d / "flame", d / "blendshapes", d / "FLAME_masks", d / "flame" / "blendshapes"]
    if d.name.lower() == "flame":
        dirs += [d.parent, d.parent / "blendshapes", d.parent / "FLAME_masks"]
    return [x for x in dirs if x.is_dir()]


def _find_side(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


# ------------------------------------------------------------------------------------------------ loading


def _load_model_arrays(path: Path, sha: str, use_cache: bool) -> dict[str, np.ndarray]:
    if path.suffix.lower() == ".npz" or not use_cache:
        return validate_arrays(_read_raw(path), str(path))
    cache = cache_root() / "heads" / f"{CACHE_FORMAT}-{sha}.npz"
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile):
            cache.unlink(missing_ok=True)  # corrupt cache: rebuild below
    arrays = validate_arrays(_read_raw(path), str(path))
    atomic_savez(cache, arrays)
    return arrays


def _load_side_files(data: FlameData, dirs: list[Path]) -> None:
    n_f = data.faces.shape[0]
    n_v = data.n_vertices
    deca = _find_side(dirs, "landmark_embedding.npy")
    if deca is not None:
        static, dynamic, full = lm.parse_deca(load_npy(deca), str(deca))
        data.static_lmk = static.validate(n_f, (lm.N_STATIC,), f"{deca} static")
        data.dynamic_lmk = dynamic.validate(n_f, (lm.N_DYNAMIC_ROWS, lm.N_CONTOUR), f"{deca} dynamic")
        data.full_lmk = full.validate(n_f, (68,), f"{deca} full")
        data.side_files.update(static="deca:" + str(deca), dynamic="deca:" + str(deca), full68="deca:" + str(deca))
    else:
        static_p = _find_side(dirs, "flame_static_embedding.pkl")
        dyn_p = _find_side(dirs, "flame_dynamic_embedding.npy")
        if static_p is not None:
            data.static_lmk = lm.parse_ringnet(load_pickle(static_p), str(static_p)).validate(
                n_f, (lm.N_STATIC,), str(static_p))
            data.side_files["static"] = "ringnet:" + str(static_p)
        if dyn_p is not None:
            data.dynamic_lmk = lm.parse_ringnet(load_npy(dyn_p), str(dyn_p)).validate(
                n_f, (lm.N_DYNAMIC_ROWS, lm.N_CONTOUR), str(dyn_p))
            data.side_files["dynamic"] = "ringnet:" + str(dyn_p)
        s68 = _find_side(dirs, "flame_static_embedding_68.pkl")
        if s68 is not None:
            data.full_lmk = lm.parse_ringnet(load_pickle(s68), str(s68)).validate(n_f, (68,), str(s68))
            data.side_files["full68"] = "tf_flame:" + str(s68)
    lids = [_find_side(dirs, n) for n in ("l_eyelid.npy", "r_eyelid.npy")]
    if all(p is not None for p in lids):
        arrs = [np.asarray(load_npy(p), dtype=np.float64) for p in lids]  # type: ignore[arg-type]
        for p, a in zip(lids, arrs):
            if a.shape != (n_v, 3):
                raise OmnibenchError(f"{p}: eyelid blendshape has shape {a.shape}, expected ({n_v}, 3)")
        data.eyelids = np.stack(arrs)
        data.side_files["eyelids"] = str(lids[0].parent)  # type: ignore[union-attr]
    masks_p = _find_side(dirs, "FLAME_masks.pkl")
    if masks_p is not None:
        raw = load_pickle(masks_p)
        if not isinstance(raw, dict):
            raise OmnibenchError(f"{masks_p}: expected a dict of vertex index arrays")
        for key, idx in raw.items():
            arr = np.asarray(idx).astype(np.int64).reshape(-1)
            if arr.size and (arr.min() < 0 or arr.max() >= n_v):
                raise OmnibenchError(f"{masks_p}: mask '{key}' has vertex indices outside [0, {n_v})")
            data.masks[str(key)] = arr
        data.side_files["masks"] = str(masks_p)


def synthetic_identity(model_path: Path, file_sha256: str) -> str | None:
    """The identity of an unmodified ``synthflame`` head, or None for any other model file.

    The synthetic head is rebuilt on each machine, and its float64 bases pass through LAPACK (Householder
    QR), whose last bits differ between numpy/BLAS builds: the same spec gives files whose bytes differ at
    the 1e-16 level. Checkpoints and weights trained on it must still match, so its identity is the SHA-256
    of its spec (generator, version, preset, seed, options from ``manifest.json``), used only when the
    manifest lists this very file with this very hash (an edited file falls back to its byte hash).
    """
    man_path = model_path.parent / "manifest.json"
    try:
        man = json.loads(man_path.read_text())
        listed = man["files"][model_path.name]["sha256"]
        spec = {k: man[k] for k in ("generator", "generator_version", "preset", "seed", "options")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if spec["generator"] != "synthflame" or listed != file_sha256:
        return None
    return hashlib.sha256(("synthflame-spec\n" + json.dumps(spec, sort_keys=True)).encode()).hexdigest()


def load_flame_data(path: str | os.PathLike[str] | None = None, *, name: str | None = None,
                    use_cache: bool = True, side_files: bool = True) -> FlameData:
    """Load a FLAME-layout model file (and its side files) into :class:`FlameData`.

    ``path``: model file or folder; ``None`` -> ``$OMNIBENCH_FLAME`` or ``<cache_root>/flame/``.
    Pickles are converted once to ``<cache_root>/heads/flame-v1-<sha256>.npz``.
    """
    model_path = find_model_file(path)
    sha = sha256_file(model_path)
    arrays = _load_model_arrays(model_path, sha, use_cache)
    data = FlameData(
        v_template=arrays["v_template"], faces=arrays["f"], shapedirs=arrays["shapedirs"],
        posedirs=arrays["posedirs"], J_regressor=arrays["J_regressor"], weights=arrays["weights"],
        parents=arrays["parents"], sha256=synthetic_identity(model_path, sha) or sha, name=name or model_path.stem,
        source=model_path,
    )
    if side_files:
        _load_side_files(data, _side_dirs(model_path))
    return data
