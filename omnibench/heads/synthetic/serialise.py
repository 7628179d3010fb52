"""Byte-exact serialisation of a synthflame head in the FLAME file formats (flame.md §5.14, §1.5-1.7).

Everything is produced in memory as ``{relative path: bytes}`` so validation can compare two generations
byte for byte before anything is written. Pickles use protocol 2 like the Python-2 originals; npz archives
are written with fixed zip timestamps so they are reproducible.
"""

from __future__ import annotations

import importlib.util
import io
import pickle
import sys
import threading
import types
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp

from omnibench.heads.synthetic.model import SynthHead

MODEL_KEYS = ("f", "J_regressor", "kintree_table", "J", "weights", "posedirs", "v_template", "shapedirs",
              "bs_style", "bs_type")
PICKLE_PROTOCOL = 2
_CHUMPY_LOCK = threading.Lock()


def npy_bytes(arr: object) -> bytes:
    """``np.save`` output as bytes (object arrays are pickled)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An ``np.load``-compatible npz archive with fixed timestamps (stored, not compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy_bytes(np.asarray(arr)))
    return buf.getvalue()


def pickle_bytes(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=PICKLE_PROTOCOL)


@contextmanager
def fake_chumpy() -> Iterator[type]:
    """Temporarily register throwaway ``chumpy``/``chumpy.ch`` modules holding a stand-in class ``Ch``.

    Only for the duration of a dump: afterwards ``sys.modules`` is restored exactly (a real chumpy, if
    one was imported, comes back), so later loads in this process cannot succeed spuriously.
    """
    with _CHUMPY_LOCK:
        saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
        pkg = types.ModuleType("chumpy")
        mod = types.ModuleType("chumpy.ch")
        ch = type("Ch", (), {"__module__": "chumpy.ch"})
        mod.Ch = ch
        pkg.ch = mod
        pkg.__path__ = []
        sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
        try:
            yield ch
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v


def model_dict(head: SynthHead, *, columns: int = 400, f_dtype: str = "uint32") -> dict[str, object]:
    """The FLAME-layout dict in key order; ``columns`` != 400 truncates/zero-pads shapedirs (invalid files)."""
    m = head.model
    out = {k: m[k] for k in MODEL_KEYS}
    out["f"] = np.asarray(m["f"]).astype(np.uint32 if f_dtype == "uint32" else np.int64)
    sd = np.asarray(m["shapedirs"])
    if columns != sd.shape[2]:
        padded = np.zeros(sd.shape[:2] + (columns,))
        n = min(columns, sd.shape[2])
        padded[:, :, :n] = sd[:, :, :n]
        out["shapedirs"] = padded
    return out


def chumpy_pickle_bytes(model: Mapping[str, object]) -> bytes:
    """The model pickle with ``shapedirs`` as a ``chumpy.ch.Ch`` object (NEWOBJ + BUILD of its state)."""
    with fake_chumpy() as ch:
        obj = ch.__new__(ch)
        obj.__dict__.update({"x": np.asarray(model["shapedirs"]), "_dirty_vars": set(), "_itr": None,
                             "_make_dense": False, "_make_sparse": False})
        d = dict(model)
        d["shapedirs"] = obj
        return pickle_bytes(d)


def smplx_npz_bytes(model: Mapping[str, object]) -> bytes:
    """``FLAME_NEUTRAL.npz``: the same keys, dense ``J_regressor``, strings as 0-d arrays."""
    arrays = {}
    for k, v in model.items():
        if sp.issparse(v):
            arrays[k] = v.toarray()
        elif isinstance(v, str):
            arrays[k] = np.array(v)
        else:
            arrays[k] = np.asarray(v)
    return npz_bytes(arrays)


def obj_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """Wavefront OBJ of the template (1-based faces, no UVs)."""
    lines = ["# synthflame template (synthetic, not FLAME)"]
    lines += [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    return ("\n".join(lines) + "\n").encode("ascii")


class TorchTensorStub:
    """Marker for an ndarray to be pickled exactly like a CPU ``torch.Tensor`` (see :class:`_StubPickler`)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = np.ascontiguousarray(array)


class _GlobalRef:
    """Marker pickled as the global ``module.name`` (GLOBAL opcode) without importing the module."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class _StorageRef:
    """Marker for the single storage of a legacy ``torch.save`` stream (pickled as a persistent id)."""

    def __init__(self, storage_type: str, numel: int) -> None:
        self.storage_type, self.numel = storage_type, numel


_TORCH_STORAGE = {np.dtype(np.int64): "LongStorage", np.dtype(np.float32): "FloatStorage",
                  np.dtype(np.float64): "DoubleStorage", np.dtype(np.int32): "IntStorage"}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _StubPickler(pickle._Pickler):  # the pure-Python pickler lets us emit opcodes for the markers
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _StorageRef):
            return ("storage", _GlobalRef("torch", obj.storage_type), "0", "cpu", obj.numel, None)
        return None

    def save(self, obj: object, save_persistent_id: bool = True) -> None:
        if isinstance(obj, _GlobalRef):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
            return
        if isinstance(obj, TorchTensorStub):
            a = obj.array
            self.write(pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n" + pickle.MARK)
            self.write(pickle.GLOBAL + b"torch.storage\n_load_from_bytes\n")
            self.save(_torch_legacy_storage_bytes(a))
            self.write(pickle.TUPLE1 + pickle.REDUCE)
            strides = tuple(int(s // a.itemsize) for s in a.strides)
            for item in (0, tuple(int(n) for n in a.shape), strides, False):
                self.save(item)
            self.write(pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE)
            self.write(pickle.TUPLE + pickle.REDUCE)
            return
        super().save(obj, save_persistent_id)


def _torch_legacy_storage_bytes(a: np.ndarray) -> bytes:
    """The bytes ``torch.save(storage, _use_new_zipfile_serialization=False)`` writes, with storage key '0'.

    Torch itself uses the storage's memory address as key, which makes pickled tensors irreproducible.
    """
    buf = io.BytesIO()
    for header in (_TORCH_LEGACY_MAGIC, _TORCH_LEGACY_PROTOCOL,
                   {"protocol_version": _TORCH_LEGACY_PROTOCOL, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        buf.write(pickle.dumps(header, protocol=2))
    _StubPickler(buf, protocol=2).dump(_StorageRef(_TORCH_STORAGE[a.dtype], a.size))
    buf.write(pickle.dumps(["0"], protocol=2))
    buf.write(np.int64(a.size).astype("<i8").tobytes())
    buf.write(a.astype(a.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue()


def deca_embedding(head: SynthHead) -> tuple[dict[str, object], bool]:
    """DECA/MICA ``landmark_embedding.npy`` dict; dynamic entries become torch tensors on load.

    The tensors are written opcode for opcode the way ``pickle`` writes a CPU tensor (``_rebuild_tensor_v2``
    of a legacy ``_load_from_bytes`` storage), but with a fixed storage key, without importing torch. Without
    torch installed they stay ndarrays and the manifest says ``deca_tensor_compat: false``.
    """
    lm = head.landmarks
    d: dict[str, object] = {
        "static_lmk_faces_idx": lm.full.faces[17:].astype(np.int64),
        "static_lmk_bary_coords": lm.full.bary[17:].astype(np.float64),
        "dynamic_lmk_faces_idx": lm.dyn_faces.astype(np.int64),
        "dynamic_lmk_bary_coords": lm.dyn_bary.astype(np.float32),
        "full_lmk_faces_idx": lm.full.faces[None].astype(np.int64),
        "full_lmk_bary_coords": lm.full.bary[None].astype(np.float32),
    }
    if importlib.util.find_spec("torch") is None:  # pragma: no cover - torch is a project dependency
        return d, False
    for k in ("dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords"):
        d[k] = TorchTensorStub(d[k])
    return d, True


def object_npy(d: dict[str, object]) -> bytes:
    """``np.save`` of a 0-d object array wrapping ``d`` (protocol 2, tensor stubs allowed)."""
    arr = np.empty((), dtype=object)
    arr[()] = d
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    _StubPickler(buf, protocol=PICKLE_PROTOCOL).dump(arr)
    return buf.getvalue()


def serialise(head: SynthHead, *, columns: int = 400, f_dtype: str = "uint32") -> tuple[dict[str, bytes], dict]:
    """All data files of the set as ``{relpath: bytes}`` plus flags for the manifest."""
    model = model_dict(head, columns=columns, f_dtype=f_dtype)
    plain = pickle_bytes(model)
    lm = head.landmarks
    static = {"lmk_face_idx": lm.full.faces[17:].astype(np.uint32), "lmk_b_coords": lm.full.bary[17:].astype(np.float64)}
    static68 = {"lmk_face_idx": lm.full.faces.astype(np.uint32), "lmk_b_coords": lm.full.bary.astype(np.float64)}
    dynamic = object_npy({
        "lmk_face_idx": [row.astype(np.uint32) for row in lm.dyn_faces],
        "lmk_b_coords": [row.astype(np.float64) for row in lm.dyn_bary],
    })
    deca, deca_ok = deca_embedding(head)
    masks = {k: np.flatnonzero(v).astype(np.int64) for k, v in head.regions.masks.items()}
    static_b = pickle_bytes(static)
    files = {
        "generic_model.pkl": plain,
        "generic_model_chumpy.pkl": chumpy_pickle_bytes(model),
        "flame2023.pkl": plain,
        "flame/FLAME_NEUTRAL.pkl": plain,
        "flame/FLAME_NEUTRAL.npz": smplx_npz_bytes(model),
        "flame/flame_static_embedding.pkl": static_b,
        "flame/flame_dynamic_embedding.npy": dynamic,
        "flame_static_embedding.pkl": static_b,
        "flame_static_embedding_68.pkl": pickle_bytes(static68),
        "flame_dynamic_embedding.npy": dynamic,
        "landmark_embedding.npy": object_npy(deca),
        "FLAME_masks.pkl": pickle_bytes(masks),
        "l_eyelid.npy": npy_bytes(head.l_eyelid),
        "r_eyelid.npy": npy_bytes(head.r_eyelid),
        "head_template.obj": obj_bytes(head.mesh.vertices, head.mesh.faces),
    }
    return files, {"deca_tensor_compat": deca_ok}
