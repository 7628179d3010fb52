"""Two ways to turn a scanned EG3D-family pickle into a generator module, chosen explicitly by the user.

* :func:`rebuild` (the default): build the generator class *from the user's checkout* with the constructor
  arguments stored in the pickle, then load the tensors read by :mod:`.scan` (parameters and buffers into the
  module, tensors it kept as plain attributes onto it); no code stored in the pickle runs.
* :func:`load_trusted` (``--option trust_code=true``): the checkout's own ``legacy.load_network_pkl``, which
  executes the module sources stored in the pickle (what EG3D's scripts do).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any

import torch

from omnibench.errors import CheckpointError
from omnibench.generators.eg3d.checkout import Checkout
from omnibench.generators.eg3d.scan import AttrDict, Persistent, scan_pickle, state_tensors

COPIED_ATTRIBUTES = ("neural_rendering_resolution", "rendering_kwargs")  # set after construction by training
# Buffers the training loops register on G after construction (EG3D's and Next3D's training_loop.py:
# ``G.register_buffer('dataset_label_std', ...)``, copied into G_ema): every training snapshot has them, a freshly
# built generator does not, so the rebuild registers them before loading the tensors.
ADDED_BUFFERS = ("dataset_label_std",)


def rebuild(path: str, checkout: Checkout, default_module: str, key: str = "G_ema") -> tuple[torch.nn.Module, dict]:
    """The network ``key`` rebuilt from ``checkout``; returns (module, facts for ``describe()``)."""
    scan, data = scan_pickle(path, load_tensors=True)
    stored = data.get(key)
    if not isinstance(stored, Persistent):
        raise CheckpointError(f"'{path}' holds no persistent network '{key}'")
    module_name, identical = _class_module(checkout, stored, default_module)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - the checkout's own import failure, reported in one line
        raise CheckpointError(f"cannot import {module_name} from the checkout '{checkout.root}': "
                              f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, stored.class_name, None)
    if cls is None:
        raise CheckpointError(f"the checkout's {checkout.module_file(module_name)} defines no {stored.class_name}: "
                              "pass --option repo=PATH of the code the pickle was trained with")
    net = scan.network(key)
    easydict = getattr(sys.modules.get("dnnlib"), "EasyDict", dict)
    args, kwargs = _native(net.init_args, easydict), _native(net.init_kwargs, easydict)
    # the constructor's random init must not move the caller's RNG; it runs in the checkout's folder, as the
    # family's scripts do (Next3D's reads data/ffhq/uv_face_eye_mask.png and its topology_path relative to it)
    with torch.random.fork_rng(devices=[]), _working_dir(checkout.root):
        try:
            G = cls(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"the checkout's {stored.class_name} cannot be built with the pickle's arguments "
                f"({type(exc).__name__}: {exc}; run in '{checkout.root}'); use the checkout it was trained with "
                "(with its data files), or --option trust_code=true"
            ) from None
    tensors = state_tensors(stored)
    added = [name for name in ADDED_BUFFERS if isinstance(tensors.get(name), torch.Tensor)
             and name not in dict(G.named_buffers()) and not hasattr(G, name)]
    for name in added:
        G.register_buffer(name, torch.empty_like(tensors[name]))
    result = G.load_state_dict(tensors, strict=False)
    if result.missing_keys or result.unexpected_keys:
        what = [f"missing {', '.join(result.missing_keys[:3])}" if result.missing_keys else "",
                f"unexpected {', '.join(result.unexpected_keys[:3])}" if result.unexpected_keys else ""]
        raise CheckpointError(
            f"the checkout's {stored.class_name} does not match the pickle's tensors ({'; '.join(w for w in what if w)}):"
            " use the checkout the pickle was trained with, or --option trust_code=true"
        )
    for name in COPIED_ATTRIBUTES:
        if name in net.attrs:
            setattr(G, name, _native(net.attrs[name], dict if name == "rendering_kwargs" else easydict))
    plain = {k: v for k, v in stored.state.items()  # tensors kept as plain attributes (e.g. Next3D's uv_face_mask)
             if not k.startswith("_") and isinstance(v, torch.Tensor) and k not in tensors}
    for name, value in plain.items():
        setattr(G, name, value)
    facts = {"class_module": checkout.module_file(module_name), "source_identical_to_pickle": identical,
             "tensors": len(tensors), "plain_tensor_attributes": sorted(plain), "buffers_added_after_construction": added}
    return G, facts


@contextlib.contextmanager
def _working_dir(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def load_trusted(path: str, key: str = "G_ema") -> torch.nn.Module:
    """The checkout's ``legacy.load_network_pkl(f)[key]`` (executes the sources stored in the pickle)."""
    legacy = importlib.import_module("legacy")
    with torch.random.fork_rng(devices=[]), open(path, "rb") as f:
        try:
            data = legacy.load_network_pkl(f)
        except Exception as exc:  # noqa: BLE001 - the checkout's loader failing on this file
            raise CheckpointError(f"the checkout's legacy.load_network_pkl failed on '{path}': "
                                  f"{type(exc).__name__}: {exc}") from None
    G = data.get(key) if isinstance(data, dict) else None
    if not isinstance(G, torch.nn.Module):
        raise CheckpointError(f"'{path}' holds no network '{key}' after loading with the checkout")
    return G


def _class_module(checkout: Checkout, stored: Persistent, default: str) -> tuple[str, bool]:
    """The checkout module defining the stored class: the one whose text equals the stored source, else
    ``default`` (the family's usual place). Returns (module name, source identical)."""
    src = stored.module_src
    default_file = checkout.root / checkout.module_file(default)
    if default_file.is_file() and default_file.read_text(errors="replace") == src:
        return default, True
    for top in sorted(p for p in checkout.root.iterdir() if p.is_dir() and p.name.startswith("training")):
        for f in sorted(top.rglob("*.py")):
            if f.stat().st_size == len(src.encode()) and f.read_text(errors="replace") == src:
                rel = f.relative_to(checkout.root).with_suffix("")
                return ".".join(rel.parts), True
    if not default_file.is_file():
        raise CheckpointError(f"your checkout '{checkout.root}' lacks {Path(checkout.module_file(default))}: pass "
                              "--option repo=PATH of the code the pickle was trained with")
    return default, False


def _native(x: Any, easydict: type) -> Any:
    """Stored containers as the checkout's types: :class:`AttrDict` -> its ``dnnlib.EasyDict``."""
    if isinstance(x, AttrDict):
        return easydict({k: _native(v, easydict) for k, v in x.items()})
    if isinstance(x, dict):
        return {k: _native(v, easydict) for k, v in x.items()}
    if isinstance(x, list):
        return [_native(v, easydict) for v in x]
    if isinstance(x, tuple):
        return tuple(_native(v, easydict) for v in x)
    return x
