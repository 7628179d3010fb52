"""Restricted unpickling of FLAME-family files, without chumpy and without arbitrary code execution.

The FLAME model pickles were written by Python 2 with chumpy installed: ``shapedirs`` (and in related
SMPL-family files other entries) is a ``chumpy.ch.Ch`` object whose pickled state holds the wrapped array
under key ``'x'``. :class:`RestrictedUnpickler` resolves *only* an allow-list of globals:

* any ``chumpy.*`` class -> :class:`ChumpyStandIn` (replaced by ``np.asarray(state['x'])`` afterwards;
  a stand-in without ``'x'`` is an error);
* numpy array/dtype/scalar reconstructors (both ``numpy.core`` and ``numpy._core`` spellings);
* ``scipy.sparse`` matrix/array classes (any historical module path);
* torch tensor rebuilding (DECA's ``landmark_embedding.npy`` pickles torch tensors); storages are
  decoded with ``torch.load(weights_only=True)``; ``torch.tensor(<numeric ndarray>)`` calls (as the synthetic
  generator writes them) are allowed through a checking wrapper;
* a few harmless builtins (``set``, ``frozenset``, ``object``, ``_codecs.encode``, ``copy_reg._reconstructor``,
  ``collections.OrderedDict``).

Everything else is refused with :class:`~omnibench.errors.OmnibenchError`.
"""

from __future__ import annotations

import copyreg
import io
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from omnibench.errors import OmnibenchError


class ChumpyStandIn:
    """Placeholder for any pickled chumpy object; keeps the pickled state dict."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _load_torch_storage(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _tensor_from_array(data: Any, *args: Any, **kwargs: Any) -> Any:
    """Safe stand-in for a pickled ``torch.tensor(ndarray)`` call (numeric arrays only, no extra arguments)."""
    import torch

    arr = np.asarray(data)
    if args or kwargs or arr.dtype.kind not in "biuf":
        raise OmnibenchError("refusing a pickled torch.tensor(...) call that is not torch.tensor(<numeric array>)")
    return torch.tensor(arr)


def _numpy_global(module: str, name: str) -> Any | None:
    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
    if (module, name) not in allowed:
        return None
    if name in ("ndarray", "dtype"):
        return getattr(np, name)
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 vs 1
    sub = core.multiarray if module.endswith("multiarray") else core.numeric
    return getattr(sub, name)


_SPARSE_NAMES = {
    "csc_matrix", "csr_matrix", "coo_matrix", "lil_matrix", "dok_matrix", "bsr_matrix", "dia_matrix",
    "csc_array", "csr_array", "coo_array",
}
_BUILTINS = {"set": set, "frozenset": frozenset, "object": object, "slice": slice, "bytearray": bytearray}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the allow-listed globals described in the module docstring."""

    def __init__(self, file: BinaryIO, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - see class docstring
        if module == "chumpy" or module.startswith("chumpy."):
            return ChumpyStandIn
        if module.startswith("numpy"):
            obj = _numpy_global(module, name)
            if obj is not None:
                return obj
        if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            import scipy.sparse

            return getattr(scipy.sparse, name)
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return _BUILTINS[name]
        if (module, name) in (("_codecs", "encode"), ("codecs", "encode")):
            import codecs

            return codecs.encode
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return copyreg._reconstructor  # type: ignore[attr-defined]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) in (("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")):
            import torch._utils

            return getattr(torch._utils, name)
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return _load_torch_storage
        if (module, name) == ("torch", "tensor"):
            return _tensor_from_array
        raise OmnibenchError(
            f"refusing to unpickle global '{module}.{name}' from {self._source}: only numpy, scipy.sparse, "
            "torch tensors and chumpy arrays are allowed in FLAME files"
        )


def _replace_chumpy(obj: Any, source: str) -> Any:
    """Recursively replace :class:`ChumpyStandIn` by ``np.asarray(state['x'])``."""
    if isinstance(obj, ChumpyStandIn):
        state = obj.state
        if not isinstance(state, dict) or "x" not in state:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise OmnibenchError(
                f"{source}: a pickled chumpy object has no 'x' array (state: {keys}); convert the file with "
                "chumpy (e.g. smplx tools/clean_ch.py) to plain numpy arrays"
            )
        return np.asarray(_replace_chumpy(state["x"], source))
    if isinstance(obj, dict):
        return {k: _replace_chumpy(v, source) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_chumpy(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_replace_chumpy(v, source) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        out = np.empty(obj.shape, dtype=object)
        for idx in np.ndindex(obj.shape):
            out[idx] = _replace_chumpy(obj[idx], source)
        return out
    return obj


def load_pickle(path: Path) -> Any:
    """Load a (possibly Python-2, possibly chumpy) pickle through the allow-list; chumpy -> ndarray."""
    with open(path, "rb") as fh:
        try:
            obj = RestrictedUnpickler(fh, source=str(path)).load()
        except OmnibenchError:
            raise
        except Exception as exc:  # corrupt or truncated files raise many types
            raise OmnibenchError(f"cannot unpickle {path}: {type(exc).__name__}: {exc}") from exc
    return _replace_chumpy(obj, str(path))


def load_npy_stream(fh: BinaryIO, source: str) -> Any:
    """Read one ``.npy`` stream; object arrays (0-d dicts as RingNet/DECA write) go through the allow-list.

    Returns the array, or for a 0-d object array the wrapped Python object.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:  # (3, 0) only differs in utf8 field names; numpy's reader handles it
            dtype = None
    except ValueError as exc:
        raise OmnibenchError(f"{source} is not a valid .npy file: {exc}") from exc
    if dtype is None or not dtype.hasobject:
        fh.seek(0)
        try:
            return np.load(fh, allow_pickle=False)
        except ValueError as exc:
            raise OmnibenchError(f"cannot read {source}: {exc}") from exc
    try:
        arr = RestrictedUnpickler(fh, source=source).load()
    except OmnibenchError:
        raise
    except Exception as exc:  # corrupt or truncated files raise many types
        raise OmnibenchError(f"cannot unpickle {source}: {type(exc).__name__}: {exc}") from exc
    arr = _replace_chumpy(arr, source)
    if isinstance(arr, np.ndarray) and arr.shape == () and arr.dtype == object:
        return arr.item()
    return arr


def load_npy(path: Path) -> Any:
    """:func:`load_npy_stream` on a file path."""
    with open(path, "rb") as fh:
        return load_npy_stream(fh, str(path))
