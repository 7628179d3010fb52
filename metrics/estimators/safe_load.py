"""Reading the field's estimator checkpoints without executing pickled code, and strict key checks.

* :func:`read_torch_file`: ``torch.load(weights_only=True)`` first; a file that pickles other objects (EMOCA's
  Lightning checkpoints carry OmegaConf hyper-parameters, which the weights-only loader refuses) is read
  again with :class:`StubUnpickler`, which resolves only tensor-rebuilding globals and plain containers and
  turns every other class into an inert :class:`Stub` holding its arguments and state: nothing from the
  file runs.
* :func:`load_strict`: ``module.load_state_dict(state, strict=True)`` with one clear line when keys or
  shapes differ.
"""

from __future__ import annotations

import builtins
import collections
import pickle
from pathlib import Path
from typing import Any

import torch

from omnibench.errors import CheckpointError, MissingAssetError

# (module, name) pairs that rebuild tensors or plain containers: what a weights-only load also resolves.
_SAFE_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
                  "bytearray", "slice"}
_SAFE_TORCH_UTILS = {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                     "_rebuild_parameter_with_state", "_rebuild_sparse_tensor", "_rebuild_qtensor",
                     "_rebuild_device_tensor_from_numpy", "_rebuild_wrapper_subclass"}


class Stub:
    """Stand-in for a class the file names but we do not trust: keeps the call arguments and the state."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __setitem__(self, key: Any, value: Any) -> None:  # dict-like classes pickle their items
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:  # list-like classes pickle their items
        self.__dict__.setdefault("values", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("values", []).extend(values)

    def __repr__(self) -> str:
        return f"<stub {self.qualname}>"


def _stub_class(module: str, name: str) -> type:
    return type(name, (Stub,), {"qualname": f"{module}.{name}", "__module__": "metrics.estimators.safe_load"})


def _inert_reconstructor(cls: Any, base: Any, state: Any) -> Stub:
    """``copyreg._reconstructor`` without calling ``base.__new__``/``__init__`` of anything from the file."""
    return cls() if isinstance(cls, type) and issubclass(cls, Stub) else _stub_class("copyreg", "object")()


class StubUnpickler(pickle.Unpickler):
    """Resolves tensor-rebuilding globals, ``OrderedDict`` and plain builtins; every other global becomes a
    :class:`Stub` subclass (so REDUCE, NEWOBJ and BUILD only record data)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if module == "torch._utils" and name in _SAFE_TORCH_UTILS:
            import torch._utils as tu

            return getattr(tu, name)
        if module == "torch" and (name.endswith("Storage") or name == "Size"):
            return getattr(torch, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            import torch._tensor as tt

            return tt._rebuild_from_type_v2
        if module == "torch" and name == "Tensor":
            return torch.Tensor
        if module == "copyreg" and name == "_reconstructor":
            return _inert_reconstructor
        return _stub_class(module, name)


class _StubPickleModule:
    """A ``pickle_module`` for ``torch.load`` whose ``Unpickler`` is :class:`StubUnpickler`."""

    Unpickler = StubUnpickler
    load = staticmethod(pickle.load)
    __name__ = "metrics.estimators.safe_load"


def read_torch_file(path: str | Path, what: str) -> tuple[Any, bool]:
    """``(object, stubbed)``: the file's content on the CPU; ``stubbed`` is True when it held objects other than
    tensors and containers (read with :class:`StubUnpickler`). ``what`` names the file in errors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingAssetError(f"{what} '{path}' not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True), False
    except pickle.UnpicklingError:
        pass  # objects beyond tensors: read them inert below
    except Exception as exc:  # noqa: BLE001 - any reader failure is a corrupt file for the user
        raise CheckpointError(f"{what} '{path}' could not be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_StubPickleModule), True
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{what} '{path}' could not be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None


def load_strict(module: torch.nn.Module, state: Any, what: str) -> None:
    """Load ``state`` into ``module`` with exactly its keys and shapes, else one :class:`CheckpointError` line
    naming how many keys are missing/unexpected/mis-shaped, with the first of each."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} is not a state dict of tensors")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(v)} {label} (first: {v[0]})" for label, v in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)) if v]
        raise CheckpointError(f"{what} does not fit the expected network: " + "; ".join(parts))
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def sub_state(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``state`` under ``prefix`` (e.g. ``"deca.E_flame."``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
