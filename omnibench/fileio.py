"""Atomic file writes: nothing half-written is ever left at the destination.

Every file the suite writes (result files, tables, reports, checkpoints, cache shards, datasets) goes through
:func:`atomic_path`: the content is written to a temporary file in the destination's folder and moved into place
with ``os.replace`` only when complete; on any error the temporary file is removed and the destination is
untouched. The temporary is created with mode ``0666`` and the kernel applies the process umask, so the file gets
the permissions a plain ``open(path, "w")`` would give (``0644`` under the usual ``022``), not ``mkstemp``'s
private ``0600``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _create_temporary(p: Path) -> Path:
    """Create (O_EXCL) an empty ``.NAME.<random>.tmp`` beside ``p``, mode 0666 less the umask."""
    while True:
        tmp = p.parent / f".{p.name}.{secrets.token_hex(6)}.tmp"
        try:
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
