"""Reading an EG3D-family pickle without executing it.

EG3D, Next3D and OmniAvatar snapshots (``network-snapshot-*.pkl``) are plain pickles whose networks are
"persistent" objects: each pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {type, version, module_src, class_name, state}``, and the normal unpickler *executes* ``module_src``.
:class:`InspectUnpickler` resolves no class of the pickle: the reconstructor becomes a :class:`Persistent`
record holding ``meta``, ``dnnlib`` ``EasyDict`` a plain :class:`AttrDict`, every other non-standard class an
inert :class:`Stub` that only records its arguments and state. Tensors are either placeholders
(:class:`TensorInfo`, recognition) or real tensors read with ``torch.load(weights_only=True)`` (the rebuild
mode); nothing stored in the file runs either way.
"""

from __future__ import annotations

import ast
import collections
import hashlib
import io
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from omnibench.errors import CheckpointError

PERSISTENT_RECONSTRUCTOR = ("torch_utils.persistence", "_reconstruct_persistent_obj")
EASYDICT = {("dnnlib.util", "EasyDict"), ("dnnlib", "EasyDict")}
NETWORK_KEYS = ("G_ema", "G", "D")
_SCAN_CACHE: dict[tuple, PickleScan] = {}


class AttrDict(dict):
    """A plain dict with attribute access: what ``dnnlib.EasyDict`` becomes when read without its checkout."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Stub:
    """An instance of a class the pickle names but this reader never imports; records args and state."""

    qualname = "?"
    args: tuple = ()
    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<stub {self.qualname}>"


@dataclass
class Persistent:
    """A persistent object as stored: ``class_name``, ``module_src`` (its module's source) and ``state``."""

    meta: dict

    @property
    def class_name(self) -> str:
        return str(self.meta.get("class_name"))

    @property
    def module_src(self) -> str:
        return str(self.meta.get("module_src", ""))

    @property
    def state(self) -> dict:
        s = self.meta.get("state")
        return s if isinstance(s, dict) else {}


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's shape, read without loading its bytes."""

    shape: tuple[int, ...]


@dataclass(frozen=True)
class _StorageInfo:
    nbytes: int


def _persistent(meta: Any) -> Persistent:
    if not isinstance(meta, dict):
        raise pickle.UnpicklingError("persistent object without a meta dict")
    return Persistent(meta)


def _safe_rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *rest: Any) -> Any:
    if isinstance(storage, _StorageInfo):
        return TensorInfo(tuple(int(s) for s in size))
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, collections.OrderedDict())


def _safe_rebuild_parameter(data: Any, requires_grad: bool = False, hooks: Any = None, *rest: Any) -> Any:
    if isinstance(data, TensorInfo):
        return data
    return torch.nn.Parameter(data, requires_grad=False)


class InspectUnpickler(pickle.Unpickler):
    """Unpickler that never imports a class of the pickle (see the module docstring).

    ``load_tensors``: False gives :class:`TensorInfo` placeholders (fast), True real CPU tensors. ``globals``
    collects every ``module.name`` the stream references.
    """

    _STDLIB_OK = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
                  ("builtins", "slice"), ("builtins", "complex"), ("builtins", "bytearray"),
                  ("builtins", "range"), ("torch", "Size"), ("torch", "device")}
    _NUMPY_OK = {"dtype", "scalar", "_reconstruct", "ndarray"}

    def __init__(self, file: Any, load_tensors: bool = False) -> None:
        super().__init__(file)
        self.load_tensors = load_tensors
        self.globals: set[str] = set()
        self._stubs: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        self.globals.add(f"{module}.{name}")
        if (module, name) == PERSISTENT_RECONSTRUCTOR:
            return _persistent
        if (module, name) in EASYDICT:
            return AttrDict
        if (module, name) in self._STDLIB_OK:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name in self._NUMPY_OK:
            return super().find_class(module, name)
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return self._load_storage
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _safe_rebuild_tensor
        if (module, name) in (("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state")):
            return _safe_rebuild_parameter
        key = f"{module}.{name}"
        if key not in self._stubs:
            self._stubs[key] = type(name, (Stub,), {"qualname": key, "__module__": "omnibench.stub"})
        return self._stubs[key]

    def _load_storage(self, data: bytes) -> Any:
        if not self.load_tensors:
            return _StorageInfo(len(data))
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@dataclass
class NetworkInfo:
    """One persistent network of the pickle (``G_ema``): its class, constructor arguments and attributes."""

    key: str
    class_name: str
    module_src: str
    init_args: tuple
    init_kwargs: dict
    attrs: dict  # non-tensor attributes: rendering_kwargs, neural_rendering_resolution, z_dim, c_dim, ...
    sources: dict[str, str] = field(default_factory=dict)  # class name -> module source, every persistent object

    @property
    def rendering_kwargs(self) -> dict:
        rk = self.attrs.get("rendering_kwargs")
        return rk if isinstance(rk, dict) else {}


@dataclass
class PickleScan:
    """What :func:`scan_pickle` found: top-level keys, the networks, the globals and the embedded imports."""

    path: str
    size: int
    keys: list[str]
    networks: dict[str, NetworkInfo]
    globals: set[str]
    imports: set[str]  # modules imported by the embedded sources
    seconds: float = 0.0

    def network(self, key: str = "G_ema") -> NetworkInfo:
        if key not in self.networks:
            raise CheckpointError(f"'{self.path}' holds no persistent network '{key}' (found: "
                                  f"{', '.join(self.networks) or 'none'})")
        return self.networks[key]

    @property
    def family(self) -> str | None:
        """``eg3d``, ``next3d``, ``omniavatar``, ``other`` (persistent, not a tri-plane generator) or None."""
        net = self.networks.get("G_ema") or self.networks.get("G")
        if net is None:
            return None
        if net.class_name != "TriPlaneGenerator":
            return "other"
        if "topology_path" in net.init_kwargs or "texture_backbone" in net.module_src:
            return "next3d"
        rk = net.rendering_kwargs
        if "im3dmm_path" in rk or "feature_dim" in rk:
            return "omniavatar"
        return "eg3d"

    def summary(self) -> dict:
        net = self.networks.get("G_ema")
        return {
            "keys": self.keys, "family": self.family,
            "class": net.class_name if net else None,
            "classes": sorted(net.sources) if net else [],
            "init_kwargs_sha256": kwargs_digest(net.init_kwargs) if net else None,
            "embedded_sources": sorted({hashlib.sha256(s.encode()).hexdigest()[:12]
                                        for s in (net.sources.values() if net else [])}),
        }


def kwargs_digest(kwargs: dict) -> str:
    return hashlib.sha256(repr(_plain(kwargs)).encode()).hexdigest()


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def looks_like_pickle(path: str | os.PathLike) -> bool:
    """A pickle stream (protocol >= 2), not a zip (``torch.save``'s format) or another file."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def references_persistence(path: str | os.PathLike, limit: int = 1 << 20) -> bool:
    """Whether the first ``limit`` bytes name EG3D's persistence reconstructor (recognises truncated files)."""
    with open(path, "rb") as f:
        return b"_reconstruct_persistent_obj" in f.read(limit)


def scan_pickle(path: str | os.PathLike, load_tensors: bool = False) -> tuple[PickleScan, dict[str, Any]]:
    """Read ``path`` without executing it; returns the scan and the raw top-level objects (with real tensors
    when ``load_tensors``). Truncated or corrupt files raise :class:`CheckpointError`."""
    import time

    p = Path(path)
    t0 = time.perf_counter()
    size = p.stat().st_size
    try:
        with open(p, "rb") as f:
            up = InspectUnpickler(f, load_tensors=load_tensors)
            data = up.load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError) as exc:
        raise CheckpointError(
            f"'{p}' is truncated or corrupt ({type(exc).__name__} while reading the pickle, {size} bytes); "
            "copy or download it again"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"'{p}' is a pickle of {type(data).__name__}, not an EG3D-style snapshot dict")
    networks = {k: _network_info(k, v) for k, v in data.items() if isinstance(v, Persistent)}
    imports: set[str] = set()
    for net in networks.values():
        for src in set(net.sources.values()):
            imports |= source_imports(src)
    scan = PickleScan(str(p), size, [str(k) for k in data], networks, up.globals, imports,
                      time.perf_counter() - t0)
    return scan, data


def cached_scan(path: str | os.PathLike) -> PickleScan:
    """:func:`scan_pickle` without tensors, cached per (path, size, mtime) for this process."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SCAN_CACHE:
        _SCAN_CACHE[key] = scan_pickle(path)[0]
    return _SCAN_CACHE[key]


def _network_info(key: str, obj: Persistent) -> NetworkInfo:
    state = obj.state
    attrs = {k: v for k, v in state.items()
             if not k.startswith("_") and not isinstance(v, (Persistent, Stub, torch.Tensor, TensorInfo))}
    init_args = state.get("_init_args", ())
    init_kwargs = state.get("_init_kwargs", {})
    sources: dict[str, str] = {}
    for node in _walk(obj):
        if isinstance(node, Persistent):
            sources.setdefault(node.class_name, node.module_src)
    return NetworkInfo(key, obj.class_name, obj.module_src, tuple(init_args) if isinstance(init_args, (list, tuple)) else (),
                       dict(init_kwargs) if isinstance(init_kwargs, dict) else {}, attrs, sources)


def module_state(node: Any) -> dict:
    """The ``nn.Module.__dict__`` a persistent record or a stub carries (empty if none)."""
    if isinstance(node, Persistent):
        return node.state
    if isinstance(node, Stub):
        st = node.state[0] if isinstance(node.state, tuple) and node.state else node.state
        return st if isinstance(st, dict) else {}
    return {}


def _walk(node: Any):
    yield node
    for child in (module_state(node).get("_modules") or {}).values():
        if child is not None:
            yield from _walk(child)


def state_tensors(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``named_parameters()`` + persistent ``named_buffers()`` of a stored module tree, by dotted name."""
    st = module_state(obj)
    out: dict[str, Any] = {}
    for name, t in (st.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t
    skip = set(st.get("_non_persistent_buffers_set") or ())
    for name, t in (st.get("_buffers") or {}).items():
        if t is not None and name not in skip:
            out[prefix + name] = t
    for name, child in (st.get("_modules") or {}).items():
        if child is not None:
            out.update(state_tensors(child, f"{prefix}{name}."))
    return out


def source_imports(source: str) -> set[str]:
    """Modules a module source imports (``import a.b`` -> ``a.b``; ``from a.b import c`` -> ``a.b``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found
