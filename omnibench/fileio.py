"""Atomic file writes: nothing half-written is ever left at the destination.

Every file the suite writes (result files, tables, reports, checkpoints, cache shards, datasets) goes through
:func:`atomic_path`: the content is written to a temporary file in the destination's folder and moved into place
with ``os.replace`` only when complete; on any error the temporary file is removed and the destination is
untouched. The temporary is created with mode ``0666`` and the kernel applies the process umask, so the file gets
the permissions a plain ``open(path, "w")`` would give (``0644`` under the usual ``022``), not ``mkstemp``'s
private ``0600``. Folders written as a whole (datasets, the synthetic head's file set) go through
:func:`atomic_directory` the same way: filled under a temporary name, renamed into place in one step, created
with mode ``0777`` less the umask as ``mkdir`` would (not ``mkdtemp``'s ``0700``).

Writers: :func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_torch_save`, :func:`atomic_savez`;
anything else (PIL, a library that wants a path) writes to the path :func:`atomic_path` yields.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _create_temporary(p: Path, folder: bool = False, tag: str = "tmp") -> Path:
    """Create (exclusively) an empty ``.NAME.<random>.<tag>`` beside ``p``: a file of mode 0666 or, with
    ``folder``, a folder of mode 0777, less the umask either way."""
    while True:
        tmp = p.parent / f".{p.name}.{secrets.token_hex(6)}.{tag}"
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` to write to; it replaces ``path`` when the block succeeds."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(p)
    try:
        yield tmp
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` through :func:`atomic_path`."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, Any]) -> None:
    """``np.savez`` (uncompressed) of ``arrays`` through :func:`atomic_path`; ``path`` is used as given (no
    ``.npz`` is appended)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


@contextmanager
def atomic_directory(path: str | os.PathLike, keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path`` to fill; it becomes ``path`` when the block succeeds.

    An existing ``path`` (file or folder) is moved aside, replaced in one rename, then deleted; on any error
    the temporary is deleted and ``path`` is left as it was. ``keep_existing(path)`` is asked when ``path``
    exists at the end (another process may have finished the same work meanwhile): True keeps it and drops
    the temporary.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(p, folder=True)
    try:
        yield tmp
        if keep_existing is not None and p.exists() and keep_existing(p):
            return
        if not (p.exists() or p.is_symlink()):
            try:
                os.replace(tmp, p)
                return
            except OSError:  # another process put a (non-empty) folder there first
                if keep_existing is not None and keep_existing(p):
                    return
                if not p.exists():
                    raise
        aside = _create_temporary(p, folder=True, tag="old")
        try:
            os.replace(p, aside / "old")
            try:
                os.replace(tmp, p)
            except BaseException:
                os.replace(aside / "old", p)
                raise
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
