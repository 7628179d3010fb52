"""Content-addressed sample cache: generated samples are produced once and shared by every metric.

Layout: ``cache_root()/samples/<set>-<generator>-<key[:16]>/`` with ``meta.json`` and
``shard_00000.pt`` ... Each shard holds the fixed global index range ``[s * shard_size, (s + 1) * shard_size)``
(independent of batch size and process count) as a dict of tensors:

* ``index``, ``group``, ``member`` ``(n,)`` int64; ``z`` ``(n, z_dim)`` float32
* ``camera (n, 25)``, ``shape``, ``expression``, ``pose (n, 15)`` float32: the controls as drawn
* ``image`` ``(n, 3, H, W)`` uint8; optional ``depth`` ``(n, H, W)`` float32 metres and ``mask`` ``(n, H, W)``
  float32 in [0, 1]

Key = sha256 of (cache format, generator identity: checkpoint sha256 or built-in name plus ``describe()``,
protocol hash, set name, control-source description). Shards are written to a temporary file and renamed,
so a shard either exists complete or not at all; an interrupted run regenerates only missing shards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_torch_save, atomic_write_text

CACHE_FORMAT = 1
SHARD_SIZE = 128


def cache_key(generator: dict, protocol_hash: str, set_name: str, controls: dict) -> str:
    """Hex sha256 identifying one generated sample set."""
    blob = json.dumps(
        {"format": CACHE_FORMAT, "shard_size": SHARD_SIZE, "generator": generator, "protocol": protocol_hash,
         "set": set_name, "controls": controls},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:40]


@dataclass
class SampleStore:
    """One cached sample set: ``n`` samples in shards of :data:`SHARD_SIZE`."""

    root: Path
    set_name: str
    generator_name: str
    key: str
    n: int
    meta: dict

    @property
    def dir(self) -> Path:
        return self.root / "samples" / f"{_safe(self.set_name)}-{_safe(self.generator_name)}-{self.key[:16]}"

    @property
    def n_shards(self) -> int:
        return -(-self.n // SHARD_SIZE)

    def shard_range(self, s: int) -> range:
        return range(s * SHARD_SIZE, min(self.n, (s + 1) * SHARD_SIZE))

    def shard_path(self, s: int) -> Path:
        return self.dir / f"shard_{s:05d}.pt"

    def missing(self) -> list[int]:
        return [s for s in range(self.n_shards) if not self.shard_path(s).is_file()]

    def complete(self) -> bool:
        return not self.missing()

    def prepare(self) -> None:
        """Create the folder and write ``meta.json`` (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "meta.json"
        if not meta.is_file():
            atomic_write_text(meta, json.dumps({**self.meta, "key": self.key, "set": self.set_name, "n": self.n,
                                                "shard_size": SHARD_SIZE, "format": CACHE_FORMAT}, indent=2) + "\n")

    def write_shard(self, s: int, data: dict[str, torch.Tensor]) -> None:
        """Atomically store shard ``s``; ``data['index']`` must equal its global index range."""
        expected = list(self.shard_range(s))
        if data["index"].tolist() != expected:
            raise OmnibenchError(f"internal: shard {s} of '{self.set_name}' holds the wrong indices")
        self.prepare()
        atomic_torch_save({k: v.contiguous() for k, v in data.items() if v is not None}, self.shard_path(s))

    def read_shard(self, s: int) -> dict[str, torch.Tensor]:
        path = self.shard_path(s)
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
            raise OmnibenchError(
                f"sample cache shard {path} is unreadable ({type(exc).__name__}); remove it with "
                f"'omnibench cache rm {self.key[:16]}' and rerun"
            ) from None
        if data.get("index") is None or data["index"].tolist() != list(self.shard_range(s)):
            raise OmnibenchError(f"sample cache shard {path} does not match its index range; "
                                 f"run 'omnibench cache rm {self.key[:16]}'")
        return data

    def read_all(self) -> dict[str, torch.Tensor]:
        """Every shard concatenated in global order."""
        if not self.complete():
            raise OmnibenchError(f"internal: sample set '{self.set_name}' is incomplete")
        shards = [self.read_shard(s) for s in range(self.n_shards)]
        keys = shards[0].keys() if shards else []
        return {k: torch.cat([sh[k] for sh in shards]) for k in keys}


def list_entries(root: Path) -> list[dict]:
    """One record per cached sample set (meta plus completed shards and bytes on disk)."""
    out = []
    base = root / "samples"
    if not base.is_dir():
        return out
    for d in sorted(p for p in base.iterdir() if p.is_dir()):
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
        shards = sorted(d.glob("shard_*.pt"))
        n = int(meta.get("n", 0))
        total = -(-n // int(meta.get("shard_size", SHARD_SIZE))) if n else None
        out.append({
            "id": d.name,
            "key": meta.get("key", ""),
            "set": meta.get("set"),
            "generator": meta.get("generator", {}).get("generator") if isinstance(meta.get("generator"), dict) else None,
            "protocol": meta.get("protocol", {}).get("name") if isinstance(meta.get("protocol"), dict) else None,
            "n": n,
            "shards": f"{len(shards)}/{total}" if total is not None else str(len(shards)),
            "bytes": sum(f.stat().st_size for f in d.iterdir() if f.is_file()),
            "path": str(d),
        })
    return out


def remove_entries(root: Path, selectors: list[str], all_: bool = False) -> list[str]:
    """Delete sample sets whose folder name or key starts with a selector (or all); returns removed ids."""
    removed = []
    for e in list_entries(root):
        if all_ or any(e["id"] == s or e["id"].startswith(s) or (e["key"] and e["key"].startswith(s))
                       or e["id"].endswith(s) for s in selectors):
            shutil.rmtree(e["path"], ignore_errors=True)
            removed.append(e["id"])
    return removed
