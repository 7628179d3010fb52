"""Reader for EG3D-style datasets: ``DIR/dataset.json`` (+ optional FLAME controls) and images.

``labels`` (required) maps image paths relative to ``DIR`` to 25 camera values; ``flame`` (optional;
real EG3D datasets lack it) maps them to ``{"shape", "expression", "pose"}``. ``manifest.json``
(optional) lists per-file SHA-256 values that :meth:`HeadDataset.verify` checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.generators.base import POSE_DIM, Controls


@dataclass
class DatasetItem:
    relpath: str
    image: torch.Tensor  # (3, H, W) uint8
    camera: torch.Tensor  # (25,) float32
    shape: torch.Tensor | None = None
    expression: torch.Tensor | None = None
    pose: torch.Tensor | None = None  # (15,)


class HeadDataset:
    """An EG3D-style dataset folder. Indexing returns :class:`DatasetItem` in ``labels`` order."""

    def __init__(self, root: str | Path, verify: bool = False) -> None:
        self.root = Path(root).expanduser()
        meta_path = self.root / "dataset.json"
        if not meta_path.is_file():
            raise MissingAssetError(f"no dataset.json in '{self.root}' (is this an EG3D-style dataset folder?)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OmnibenchError(f"'{meta_path}' is not valid JSON: {exc}") from exc
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if not isinstance(labels, list) or not labels:
            raise OmnibenchError(f"'{meta_path}' has no non-empty 'labels' list")
        self.relpaths: list[str] = []
        cams = []
        for i, entry in enumerate(labels):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
                raise OmnibenchError(f"labels[{i}] must be [relpath, [25 floats]], got {str(entry)[:80]}")
            cam = np.asarray(entry[1], dtype=np.float64)
            if cam.shape != (25,) or not np.all(np.isfinite(cam)):
                raise OmnibenchError(f"labels[{i}] ('{entry[0]}'): camera must be 25 finite floats")
            if Path(entry[0]).is_absolute() or ".." in Path(entry[0]).parts:
                raise OmnibenchError(f"labels[{i}]: path '{entry[0]}' must be relative to the dataset folder")
            self.relpaths.append(entry[0])
            cams.append(cam)
        if len(set(self.relpaths)) != len(self.relpaths):
            raise OmnibenchError(f"'{meta_path}' lists an image more than once")
        self.cameras = torch.from_numpy(np.stack(cams).astype(np.float32))
        self.head_model: dict = meta.get("head_model") or {}
        self.flame: list[dict] | None = None
        if meta.get("flame") is not None:
            self.flame = self._read_flame(meta["flame"], meta_path)
        self.manifest: dict | None = None
        if (self.root / "manifest.json").is_file():
            self.manifest = json.loads((self.root / "manifest.json").read_text())
        if verify:
            self.verify()

    def _read_flame(self, flame: object, meta_path: Path) -> list[dict]:
        if not isinstance(flame, list):
            raise OmnibenchError(f"'{meta_path}': 'flame' must be a list of [relpath, {{shape, expression, pose}}]")
        by_path = {}
        for i, entry in enumerate(flame):
            if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
                raise OmnibenchError(f"flame[{i}] must be [relpath, {{...}}]")
            d = entry[1]
            try:
                rec = {k: np.asarray(d[k], dtype=np.float32).reshape(-1) for k in ("shape", "expression", "pose")}
            except (KeyError, TypeError, ValueError) as exc:
                raise OmnibenchError(f"flame[{i}] ('{entry[0]}') needs numeric shape, expression and pose: {exc}") from exc
            if rec["pose"].shape != (POSE_DIM,):
                raise OmnibenchError(f"flame[{i}] ('{entry[0]}'): pose must have {POSE_DIM} values, got {rec['pose'].shape[0]}")
            by_path[entry[0]] = rec
        missing = [p for p in self.relpaths if p not in by_path]
        if missing:
            raise OmnibenchError(f"'{meta_path}': {len(missing)} labelled images have no flame entry (e.g. '{missing[0]}')")
        out = [by_path[p] for p in self.relpaths]
        for key in ("shape", "expression"):
            if len({r[key].shape for r in out}) != 1:
                raise OmnibenchError(f"'{meta_path}': flame '{key}' vectors differ in length across images")
        return out

    def __len__(self) -> int:
        return len(self.relpaths)

    @property
    def has_flame(self) -> bool:
        return self.flame is not None

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as ``(3, H, W)`` uint8 RGB."""
        path = self.root / self.relpaths[i]
        if not path.is_file():
            raise MissingAssetError(f"image '{path}' listed in dataset.json is missing")
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)

    def images(self, indices: list[int] | range | None = None) -> torch.Tensor:
        idx = range(len(self)) if indices is None else indices
        return torch.stack([self.image(i) for i in idx])

    def __getitem__(self, i: int) -> DatasetItem:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i = i % len(self)
        item = DatasetItem(relpath=self.relpaths[i], image=self.image(i), camera=self.cameras[i])
        if self.flame is not None:
            rec = self.flame[i]
            item.shape, item.expression, item.pose = (torch.from_numpy(rec[k]) for k in ("shape", "expression", "pose"))
        return item

    def controls(self, indices: list[int] | range | None = None) -> Controls:
        """Controls of the chosen images (all by default); needs the ``flame`` block."""
        if self.flame is None:
            raise OmnibenchError(f"dataset '{self.root}' has no FLAME controls ('flame' in dataset.json)")
        idx = list(range(len(self)) if indices is None else indices)
        stack = lambda k: torch.from_numpy(np.stack([self.flame[i][k] for i in idx]))  # noqa: E731
        return Controls(camera=self.cameras[idx], shape=stack("shape"), expression=stack("expression"), pose=stack("pose"))

    def verify(self) -> None:
        """Check every file's SHA-256 against ``manifest.json``; raise :class:`OmnibenchError` on a mismatch."""
        if self.manifest is None:
            raise MissingAssetError(f"no manifest.json in '{self.root}' to verify against")
        files = self.manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise OmnibenchError(f"'{self.root / 'manifest.json'}' has no 'files' table")
        from omnibench.data.synth import content_hash

        if self.manifest.get("content_hash") != content_hash(files):
            raise OmnibenchError("manifest content_hash does not match its file table (manifest edited?)")
        for rel, expected in files.items():
            path = self.root / rel
            if not path.is_file():
                raise MissingAssetError(f"'{rel}' listed in the manifest is missing")
            if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
                raise OmnibenchError(f"'{rel}' does not match its manifest sha256 (corrupt or modified)")


def load_dataset(root: str | Path, verify: bool = False) -> HeadDataset:
    return HeadDataset(root, verify=verify)
