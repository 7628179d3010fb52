"""Real and generated image sets on disk: folders, zips, EG3D-style dataset folders, statistics files.

:func:`open_image_set` validates a set up front (exists, non-empty, every file a readable 8-bit image,
one resolution) and gives an :class:`ImageSet` with a deterministic order (sorted relative POSIX
names) and a content hash over ``name, size, sha256`` of every image. A folder and a zip holding the
same files hash alike. A ``.npz`` statistics file (``mu``, ``sigma``, optional ``features``) is a set
too: it has statistics but no images (:class:`FeatureStats`).

Per-file hashes of folders and zips are memoized under ``<cache_root>/imagesets/`` keyed by
``(name, size, mtime_ns)`` so re-opening a large unchanged set does not re-read it
(``trust_mtime=False`` re-hashes everything).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from omnibench.assets import cache_root as _cache_root
from omnibench.assets import sha256_file as _file_sha256
from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.fileio import atomic_savez, atomic_write_bytes

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff"})
LOSSY_EXTS = frozenset({".jpg", ".jpeg", ".webp"})
STATS_EXTS = frozenset({".npz"})
_BAD_MODES = ("I", "F", "I;16", "I;16B", "I;16L", "I;16N")  # > 8 bit: convert("RGB") would clip
_MEMO_VERSION = 1
_SHOW = 3  # offending names listed in error messages


def _names(items: list[str]) -> str:
    more = f" (and {len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return ", ".join(items[:_SHOW]) + more


# ----------------------------------------------------------------------------------------------------
# statistics files


@dataclass
class FeatureStats:
    """Feature statistics of a set: ``mu (D,)`` and ``sigma (D, D)`` float64, raw ``features (N, D)``.

    ``meta`` records provenance (extractor, weights sha256, resize policy, set hash, format version).
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray | None
    n: int
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write an ``.npz`` (uncompressed) atomically."""
        arrays: dict[str, np.ndarray] = {
            "mu": np.asarray(self.mu, np.float64),
            "sigma": np.asarray(self.sigma, np.float64),
            "n": np.asarray(self.n, np.int64),
            "meta_json": np.asarray(json.dumps(self.meta, sort_keys=True)),
        }
        if self.features is not None:
            arrays["features"] = np.asarray(self.features)
        atomic_savez(path, arrays)

    @classmethod
    def load(cls, path: Path) -> FeatureStats:
        """Read a statistics ``.npz`` (ours, or any file with ``mu``/``sigma`` and/or ``features``)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise OmnibenchError(f"cannot read statistics file '{path}': {exc}") from exc
        feats = data.get("features")
        if feats is not None and (feats.ndim != 2 or feats.shape[0] < 2):
            raise OmnibenchError(f"statistics file '{path}': 'features' must be (N>=2, D), got {feats.shape}")
        if "mu" in data and "sigma" in data:
            mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
        elif feats is not None:
            f64 = feats.astype(np.float64)
            mu, sigma = f64.mean(axis=0), np.cov(f64, rowvar=False)
        else:
            raise OmnibenchError(
                f"statistics file '{path}' has neither 'mu'+'sigma' nor 'features' arrays (found: {', '.join(data)})"
            )
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise OmnibenchError(f"statistics file '{path}': mu {mu.shape} and sigma {sigma.shape} do not match")
        if feats is not None and feats.shape[1] != mu.shape[0]:
            raise OmnibenchError(f"statistics file '{path}': features {feats.shape} do not match mu {mu.shape}")
        if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
            raise OmnibenchError(f"statistics file '{path}' contains NaN/inf")
        meta: dict[str, Any] = {}
        if "meta_json" in data:
            try:
                meta = json.loads(str(data["meta_json"]))
            except ValueError as exc:
                raise OmnibenchError(f"statistics file '{path}': unreadable meta_json") from exc
        if "n" in data:
            n = int(data["n"])
        elif feats is not None:
            n = int(feats.shape[0])
        else:
            n = int(meta.get("n", 0))
        return cls(mu=mu, sigma=sigma, features=feats, n=n, meta=meta)


# ----------------------------------------------------------------------------------------------------
# image sets


@dataclass(frozen=True)
class ImageEntry:
    """One image: ``name`` (relative POSIX path inside the set), ``size`` (bytes), ``sha256``."""

    name: str
    size: int
    sha256: str


@dataclass
class ImageSet:
    """A validated set of same-sized 8-bit images (or a statistics file, ``kind == "stats"``).

    ``resolution`` is ``(H, W)``; :meth:`iter_batches` yields uint8 ``(B, 3, H, W)`` tensors in
    :attr:`entries` order.
    """

    kind: str  # "folder" | "zip" | "dataset" | "zip-dataset" | "stats"
    path: Path
    entries: tuple[ImageEntry, ...]
    resolution: tuple[int, int] | None
    content_hash: str
    lossy: bool = False
    _root: Path | None = None  # folder the names are relative to (folders and datasets)
    _stats: FeatureStats | None = None

    def __len__(self) -> int:
        if self.kind == "stats":
            assert self._stats is not None
            return self._stats.n
        return len(self.entries)

    @property
    def is_stats(self) -> bool:
        return self.kind == "stats"

    def stats(self) -> FeatureStats:
        """The statistics of a ``stats`` set."""
        if self._stats is None:
            raise OmnibenchError(f"'{self.path}' is an image set, not a statistics file")
        return self._stats

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for result files."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "n": len(self),
            "resolution": list(self.resolution) if self.resolution else None,
            "content_hash": self.content_hash,
        }

    def read_bytes(self, i: int) -> bytes:
        name = self.entries[i].name
        if self.kind in ("zip", "zip-dataset"):
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(name)
        assert self._root is not None
        return (self._root / name).read_bytes()

    def _decode(self, name: str, data: bytes) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise OmnibenchError(f"cannot read image '{name}' in '{self.path}': {exc}") from exc
        if self.resolution is not None and arr.shape[:2] != self.resolution:
            raise OmnibenchError(
                f"image '{name}' in '{self.path}' decodes to {arr.shape[1]}x{arr.shape[0]}, "
                f"expected {self.resolution[1]}x{self.resolution[0]}"
            )
        return arr.transpose(2, 0, 1)

    def iter_batches(self, batch_size: int = 64) -> Iterator[torch.Tensor]:
        """uint8 ``(B, 3, H, W)`` batches in set order (decoding with PIL ``convert("RGB")``)."""
        if self.kind == "stats":
            raise OmnibenchError(f"'{self.path}' is a statistics file; it holds no images")
        if batch_size < 1:
            raise OmnibenchError(f"batch size must be >= 1, got {batch_size}")
        zf = zipfile.ZipFile(self.path) if self.kind in ("zip", "zip-dataset") else None
        try:
            buf: list[np.ndarray] = []
            for e in self.entries:
                data = zf.read(e.name) if zf is not None else (self._root / e.name).read_bytes()  # type: ignore[operator]
                buf.append(self._decode(e.name, data))
                if len(buf) == batch_size:
                    yield torch.from_numpy(np.stack(buf))
                    buf = []
            if buf:
                yield torch.from_numpy(np.stack(buf))
        finally:
            if zf is not None:
                zf.close()


def _content_hash(entries: list[ImageEntry]) -> str:
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.name}\t{e.size}\t{e.sha256}\n".encode())
    return h.hexdigest()


def _is_hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


class _Memo:
    """Per-set memo ``name -> [size, mtime_ns, sha256, width, height, mode]`` stored in the cache."""

    def __init__(self, set_path: Path, enabled: bool) -> None:
        key = hashlib.sha256(str(set_path.resolve()).encode()).hexdigest()[:32]
        self.file = _cache_root() / "imagesets" / f"{key}.json"
        self.enabled = enabled
        self.data: dict[str, list[Any]] = {}
        self.dirty = False
        if enabled:
            try:
                blob = json.loads(self.file.read_text())
                if blob.get("version") == _MEMO_VERSION:
                    self.data = blob["entries"]
            except (OSError, ValueError, KeyError):
                self.data = {}

    def get(self, name: str, size: int, mtime_ns: int) -> list[Any] | None:
        rec = self.data.get(name)
        if self.enabled and rec is not None and rec[0] == size and rec[1] == mtime_ns:
            return rec
        return None

    def put(self, name: str, rec: list[Any]) -> None:
        self.data[name] = rec
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        if not self.dirty:
            return
        data = {k: v for k, v in self.data.items() if k in keep}
        try:
            atomic_write_bytes(self.file, json.dumps({"version": _MEMO_VERSION, "entries": data}).encode())
        except OSError:
            pass  # a read-only cache only costs speed


def _probe(set_path: Path, name: str, data: bytes) -> tuple[str, int, int, str]:
    """sha256 and header (width, height, mode) of one image; unreadable files raise."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            mode = im.mode
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise OmnibenchError(f"cannot read image '{name}' in '{set_path}': {exc}") from exc
    return hashlib.sha256(data).hexdigest(), w, h, mode


def _finish(kind: str, path: Path, recs: list[tuple[str, list[Any]]], root: Path | None) -> ImageSet:
    if not recs:
        raise OmnibenchError(
            f"image set '{path}' contains no images (expected {', '.join(sorted(IMAGE_EXTS))} files, a zip of "
            "them, a dataset folder with dataset.json, or a .npz statistics file)"
        )
    sizes: dict[tuple[int, int], str] = {}
    for name, rec in recs:
        if rec[5] in _BAD_MODES:
            raise OmnibenchError(
                f"image '{name}' in '{path}' has mode {rec[5]} (more than 8 bits a channel); convert it to 8-bit RGB"
            )
        sizes.setdefault((rec[3], rec[4]), name)
    if len(sizes) > 1:
        (s0, n0), (s1, n1) = list(sizes.items())[:2]
        raise OmnibenchError(
            f"image set '{path}' mixes image sizes: '{n0}' is {s0[0]}x{s0[1]} but '{n1}' is {s1[0]}x{s1[1]}; "
            "resize all images to one resolution"
        )
    ((w, h),) = sizes
    entries = [ImageEntry(name, rec[0], rec[2]) for name, rec in recs]
    lossy = any(Path(name).suffix.lower() in LOSSY_EXTS for name, _ in recs)
    if lossy:
        warnings.warn(
            f"image set '{path}' contains lossy (JPEG/WebP) files; compression artefacts move FID", stacklevel=3
        )
    return ImageSet(kind, path, tuple(entries), (h, w), _content_hash(entries), lossy, _root=root)


def _check_names(path: Path, names: list[str]) -> None:
    bad = [n for n in names if Path(n).suffix.lower() not in IMAGE_EXTS]
    if bad:
        raise OmnibenchError(
            f"image set '{path}' contains non-image files: {_names(bad)}; remove them or point to a folder "
            f"holding only images ({', '.join(sorted(IMAGE_EXTS))})"
        )


def _dataset_names(path: Path, meta_bytes: bytes, available: set[str], img_prefix: str) -> list[str] | None:
    """Image names listed in an EG3D ``dataset.json`` (``labels``); None when it lists none."""
    try:
        meta = json.loads(meta_bytes)
    except ValueError as exc:
        raise OmnibenchError(f"'{path}': dataset.json is not valid JSON: {exc}") from exc
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not labels:
        return None
    names: list[str] = []
    missing: list[str] = []
    for item in labels:
        if not (isinstance(item, (list, tuple)) and item and isinstance(item[0], str)):
            raise OmnibenchError(f"'{path}': dataset.json 'labels' entries must be [relpath, label], got {item!r}")
        rel = item[0].replace("\\", "/")
        for cand in (rel, f"{img_prefix}{rel}"):
            if cand in available:
                names.append(cand)
                break
        else:
            missing.append(rel)
    if missing:
        raise OmnibenchError(f"'{path}': dataset.json lists images that do not exist: {_names(missing)}")
    return sorted(set(names))


def _open_folder(path: Path, trust_mtime: bool) -> ImageSet:
    files: dict[str, os.stat_result] = {}
    for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        rel_dir = os.path.relpath(dirpath, path)
        for fn in filenames:
            rel = fn if rel_dir == "." else f"{Path(rel_dir).as_posix()}/{fn}"
            if _is_hidden(rel):
                continue
            files[rel] = os.stat(os.path.join(dirpath, fn))
    kind = "folder"
    names: list[str] | None = None
    if (path / "dataset.json").is_file():
        kind = "dataset"
        available = {n for n in files if Path(n).suffix.lower() in IMAGE_EXTS}
        names = _dataset_names(path, (path / "dataset.json").read_bytes(), available, "images/")
        if names is None:  # no labels: every image in the folder
            names = sorted(available)
    else:
        names = sorted(files)
        _check_names(path, names)
    memo = _Memo(path, trust_mtime)
    recs: list[tuple[str, list[Any]]] = []
    for name in names:
        st = files[name]
        rec = memo.get(name, st.st_size, st.st_mtime_ns)
        if rec is None:
            try:
                data = (path / name).read_bytes()
            except OSError as exc:
                raise OmnibenchError(f"cannot read image '{name}' in '{path}': {exc}") from exc
            sha, w, h, mode = _probe(path, name, data)
            rec = [len(data), st.st_mtime_ns, sha, w, h, mode]
            memo.put(name, rec)
        recs.append((name, rec))
    memo.save(set(names))
    return _finish(kind, path, recs, root=path)


def _open_zip(path: Path, trust_mtime: bool) -> ImageSet:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise OmnibenchError(f"cannot read zip '{path}': {exc}") from exc
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir() and not _is_hidden(i.filename)}
        kind = "zip"
        if "dataset.json" in infos:
            kind = "zip-dataset"
            available = {n for n in infos if Path(n).suffix.lower() in IMAGE_EXTS}
            names = _dataset_names(path, zf.read("dataset.json"), available, "images/")
            if names is None:
                names = sorted(available)
        else:
            names = sorted(infos)
            _check_names(path, names)
        st = path.stat()
        memo = _Memo(path, trust_mtime)
        recs: list[tuple[str, list[Any]]] = []
        for name in names:
            info = infos[name]
            stamp = st.st_mtime_ns ^ info.CRC  # member unchanged iff zip unchanged and same CRC
            rec = memo.get(name, info.file_size, stamp)
            if rec is None:
                try:
                    data = zf.read(name)
                except (OSError, zipfile.BadZipFile) as exc:
                    raise OmnibenchError(f"cannot read '{name}' from zip '{path}': {exc}") from exc
                sha, w, h, mode = _probe(path, name, data)
                rec = [len(data), stamp, sha, w, h, mode]
                memo.put(name, rec)
            recs.append((name, rec))
        memo.save(set(names))
    return _finish(kind, path, recs, root=None)


def _open_stats(path: Path) -> ImageSet:
    stats = FeatureStats.load(path)
    return ImageSet("stats", path, (), None, _file_sha256(path), _stats=stats)


def open_image_set(path: str | os.PathLike[str] | ImageSet, *, trust_mtime: bool = True) -> ImageSet:
    """Open and validate an image set: a folder, a ``.zip``, a dataset folder/zip with ``dataset.json``
    (the images its ``labels`` list), or a ``.npz`` statistics file.

    Errors (missing, empty, unreadable, non-image files, mixed sizes, >8-bit images) raise
    :class:`OmnibenchError` naming the offending files.
    """
    if isinstance(path, ImageSet):
        return path
    p = Path(path).expanduser()
    if not p.exists():
        raise MissingAssetError(f"image set '{p}' does not exist")
    if p.is_dir():
        return _open_folder(p, trust_mtime)
    suffix = p.suffix.lower()
    if suffix == ".zip":
        return _open_zip(p, trust_mtime)
    if suffix in STATS_EXTS:
        return _open_stats(p)
    raise OmnibenchError(
        f"'{p}' is not an image set: give a folder of images, a .zip, a dataset folder with dataset.json, "
        "or a .npz statistics file"
    )
