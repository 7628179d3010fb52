"""``--ckpt`` / ``--generator`` -> a loaded :class:`Generator` and the result file's ``checkpoint`` block.

``--ckpt`` is a built-in generator name (``oracle``), a name a generator ships (``tiny``: see
:meth:`Generator.named_checkpoints`) or a checkpoint path; ``--generator`` is a registry name or
``module:Class``. Without ``--generator`` a path goes to the registered generator whose ``accepts(path)``
is true. Every failure is a :class:`CheckpointError` (exit 2) naming what to pass instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from omnibench.assets import sha256_file
from omnibench.errors import CheckpointError, OmnibenchError, suggest
from omnibench.generators import GENERATORS
from omnibench.generators.base import CONTROL_NAMES, Generator, read_checkpoint_kind
from omnibench.registry import load_object


def resolve_generator(ckpt: str, generator: str | None = None, device: str = "cpu",
                      options: dict[str, Any] | None = None) -> tuple[Generator, dict]:
    """Build the generator for ``--ckpt``/``--generator``; returns (generator, checkpoint block).

    ``ckpt`` is a built-in name of :data:`GENERATORS` or a checkpoint path. ``generator`` is a registry name
    or ``module:Class``; without it a path goes to the registered generator whose ``accepts(path)`` is true.
    ``options`` (``--option KEY=VALUE``): the keys the generator declares in ``Generator.options`` are passed
    to its ``load`` (and recorded in the checkpoint block).
    """
    path: Path | None = None
    named: str | None = None  # a name the generator resolves itself (e.g. a shipped checkpoint)
    if generator:
        cls = generator_class(generator)
        if Path(ckpt).exists():
            path = Path(ckpt)
        elif ckpt not in (generator, cls.name):
            if any(sep in ckpt for sep in ("/", os.sep)) or ckpt.endswith((".pt", ".pth", ".pkl", ".ckpt")):
                raise CheckpointError(f"checkpoint '{ckpt}' does not exist")
            named = ckpt
    elif ckpt in GENERATORS:
        cls = GENERATORS.get(ckpt)
    elif not Path(ckpt).exists() and (shipped := named_checkpoints().get(ckpt)) is not None:
        cls, path = shipped
    else:
        path = Path(ckpt)
        if not path.exists():
            names = [*GENERATORS.names(), *named_checkpoints()]
            raise CheckpointError(
                f"checkpoint '{ckpt}' not found: pass an existing file, a built-in generator or a shipped "
                f"checkpoint{suggest(ckpt, names)} ({', '.join(names)})"
            )
        cls = detect_generator(path)
    if path is not None:
        if not path.is_file():
            raise CheckpointError(f"checkpoint '{path}' does not exist or is not a file")
        if cls.checkpoint_kind is not None:
            kind = read_checkpoint_kind(path)
            if kind != cls.checkpoint_kind:
                what = f"a '{kind}' checkpoint" if kind else "not an omnibench checkpoint"
                raise CheckpointError(
                    f"checkpoint '{path}' is {what}, but generator '{cls.name}' needs kind '{cls.checkpoint_kind}'"
                )
    gen_options = {k: v for k, v in (options or {}).items() if k in cls.options}
    try:
        if cls.options:
            gen = cls.load(str(path) if path else named, device, options=gen_options)
        else:
            gen = cls.load(str(path) if path else named, device)
    except OmnibenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad checkpoint from the user's view
        raise CheckpointError(
            f"cannot load '{path or ckpt}' with generator '{cls.name}': {type(exc).__name__}: {exc}"
        ) from None
    if path is None and gen.path is not None and Path(gen.path).is_file():
        path = Path(gen.path)  # the generator found a shipped or cached checkpoint for a name
    info = {
        "path": str(path) if path else ckpt,
        "sha256": sha256_file(path) if path else None,
        "generator": gen.name,
        "description": gen.describe(),
        "controls": [c for c in CONTROL_NAMES if c in gen.honoured_controls()],
    }
    if gen_options:
        info["options"] = gen_options
    return gen, info


def named_checkpoints() -> dict[str, tuple[type[Generator], Path]]:
    """``{name: (generator class, path)}`` over every installed generator's :meth:`named_checkpoints`
    (e.g. ``tiny`` -> the shipped OmniAvatar checkpoint); a broken plug-in is skipped."""
    out: dict[str, tuple[type[Generator], Path]] = {}
    for gname in GENERATORS.names():
        try:
            cls = GENERATORS.get(gname)
            for name, p in cls.named_checkpoints().items():
                out.setdefault(name, (cls, Path(p)))
        except Exception:  # noqa: BLE001 - a broken plug-in must not hide the others
            continue
    return out


def generator_class(spec: str) -> type[Generator]:
    cls = load_object(spec) if ":" in spec else GENERATORS.get(spec)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise OmnibenchError(f"'{spec}' is not a subclass of omnibench.generators.Generator")
    return cls


def detect_generator(path: Path) -> type[Generator]:
    """The registered generator whose ``accepts(path)`` is true (torch-checkpoint kinds and, e.g., EG3D-family
    pickles recognised without executing them); a file nobody accepts raises naming its kind or why."""
    with warnings.catch_warnings():  # torch warns about plain pickles (e.g. EG3D snapshots) it then refuses
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive")
        try:
            kind, unreadable = read_checkpoint_kind(path), None
        except CheckpointError as exc:  # not a torch file: a generator may still read it (an EG3D pickle)
            kind, unreadable = None, exc
        for name in GENERATORS.names():
            try:
                cls = GENERATORS.get(name)
                if cls.accepts(path):
                    return cls
            except Exception:  # noqa: BLE001 - a broken plug-in must not hide the others
                continue
    if unreadable is not None:
        raise unreadable
    if kind is None:
        raise CheckpointError(f"'{path}' is not an omnibench generator checkpoint; pass --generator NAME|module:Class")
    raise CheckpointError(
        f"'{path}' is a '{kind}' checkpoint, which no installed generator reads; pass --generator NAME|module:Class"
    )
