"""The engine's :class:`omnibench.metric_api.MetricContext`: sample sets generated once into the cache.

:class:`EvalContext` owns one evaluation's generator, protocol and options. Each sample set a metric asks
for is generated once (shard by shard into the content-addressed :class:`omnibench.cache.SampleStore`, all
torchrun ranks taking part, rank 0 writing) and read back in global order; features and estimates that
several metrics share are memoised per context (:meth:`EvalContext.memo`) and, keyed by content, on disk
(:meth:`EvalContext.feature_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from filelock import FileLock

from omnibench import distributed as D
from omnibench.assets import cache_root
from omnibench.cache import SampleStore, cache_key
from omnibench.data.control_prior import SAMPLER_VERSION, sample_controls
from omnibench.errors import OmnibenchError
from omnibench.evaluation.draws import ControlSource, HeadPrior, LabelBank
from omnibench.evaluation.generation import GenerationError, generate_range
from omnibench.evaluation.real_set import default_real_path, open_real_set
from omnibench.fileio import atomic_savez
from omnibench.generators.base import Controls, Generator
from omnibench.heads import HeadModel, load_head_model
from omnibench.imagesets import ImageSet
from omnibench.metric_api import DEFAULT_BATCH_SIZE, SampleSet
from omnibench.protocol import Protocol

T = TypeVar("T")


class EvalContext:
    """What a metric sees during ``omnibench evaluate`` (the :class:`MetricContext` contract), plus the
    engine's own handles: ``generator``, ``checkpoint`` (the result file's block), ``cache_dir``, ``dist``,
    ``timings`` (seconds per phase), :meth:`ensure_set`, :meth:`store`, :meth:`control_source`, ``real_path``.

    ``device`` is normalised once (``"cuda"`` -> ``"cuda:0"`` is *not* applied: the string is what torch
    accepts, ``cuda:LOCAL_RANK`` under torchrun); ``real``: ``--real`` (default: the synthetic real set);
    ``labels``: the label bank of ``labels`` protocols (default: the real set's ``dataset.json``).
    """

    def __init__(
        self,
        protocol: Protocol,
        generator: Generator,
        checkpoint: dict[str, Any],
        *,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        real: str | os.PathLike | None = None,
        labels: str | os.PathLike | None = None,
        progress: bool = True,
        dist_info: D.DistInfo | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise OmnibenchError(f"--batch-size must be >= 1, got {batch_size}")
        self.protocol = protocol
        self.options: dict[str, Any] = dict(options or {})
        self.generator = generator
        self.generator_head: str | None = generator.head_model
        self.checkpoint = checkpoint
        self.device = str(torch.device(device))
        self.batch_size = int(batch_size)
        self.seed = protocol.seed
        self.cache_dir = cache_root()
        self.dist = dist_info or D.DistInfo()
        self._gen_dist = self.dist  # collectives only while all ranks generate; see end_collective()
        self.progress = progress and self.dist.is_main and not os.environ.get("CI")
        self._real_arg = Path(real) if real else None
        self._labels_arg = Path(labels) if labels else None
        self._real_path: Path | None = None
        self._real_set: ImageSet | None = None
        self._head: HeadModel | None = None
        self._source: ControlSource | None = None
        self._samples: dict[str, SampleSet] = {}
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.timings: dict[str, float] = {}

    # -- basics
    def end_collective(self) -> None:
        """After the shared generation phase: rank 0 runs metrics alone (no more collectives)."""
        self._gen_dist = D.DistInfo()

    def head_model(self) -> HeadModel:
        """``load_head_model(generator.head_model or 'synthetic')``, loaded once."""
        if self._head is None:
            self._head = load_head_model(self.generator_head or "synthetic")
        return self._head

    def memo(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """``compute()`` once per context and key."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # -- controls
    def control_source(self) -> ControlSource:
        """The protocol's FLAME source: a label bank (``labels``) or the head model's prior (``prior``)."""
        if self._source is None:
            if self.protocol.flame_source == "labels":
                bank = self._labels_arg or self.real_path
                if not (bank / "dataset.json" if bank.is_dir() else bank).is_file():
                    raise OmnibenchError(
                        f"protocol '{self.protocol.name}' draws controls from dataset labels: pass --labels "
                        "PATH/dataset.json or --real with an EG3D-style dataset folder"
                    )
                self._source = LabelBank.from_dataset_json(bank)
            else:
                self._source = HeadPrior(self.head_model(), sample_controls, SAMPLER_VERSION,
                                         self.protocol.camera.framing)
        return self._source

    # -- sample sets
    def store(self, set_name: str) -> SampleStore:
        """The cache store of ``set_name``, keyed by generator, protocol hash, set and control source."""
        size = self.protocol.set_size(set_name)
        ck = self.checkpoint
        gen_id = {"name": ck["generator"], "sha256": ck["sha256"], "path": None if ck["sha256"] else ck["path"],
                  "description": ck["description"]}
        source = self.control_source().describe()
        key = cache_key(gen_id, self.protocol.hash, set_name, source)
        meta = {"generator": {"generator": ck["generator"], **gen_id},
                "protocol": {"name": self.protocol.name, "version": self.protocol.version, "hash": self.protocol.hash},
                "controls": source}
        return SampleStore(self.cache_dir, set_name, ck["generator"], key, size.n, meta)

    def ensure_set(self, set_name: str) -> SampleStore:
        """Generate the missing shards of ``set_name`` (all ranks take part; rank 0 writes)."""
        store = self.store(set_name)
        dist = self._gen_dist
        missing = D.broadcast(store.missing() if dist.is_main else None, dist)
        if not missing:
            return store
        t0 = time.perf_counter()
        n_todo = sum(len(store.shard_range(s)) for s in missing)
        bar = progress_bar(n_todo, f"generate {set_name}", self.progress)
        mine = D.assign(missing, dist)
        rounds = -(-len(missing) // dist.world_size)
        for r in range(rounds):
            shard = mine[r] if r < len(mine) else None
            data = None
            if shard is not None:
                try:
                    data = generate_range(self.generator, self.protocol, set_name, store.shard_range(shard),
                                          self.control_source(), batch_size=self.batch_size, device=self.device)
                except GenerationError:
                    raise
                except OmnibenchError as exc:
                    raise GenerationError(str(exc)) from None
            gathered = D.gather_to_main((shard, data), dist)
            if gathered is not None:
                for s, d in gathered:
                    if s is not None:
                        store.write_shard(s, d)
                        bar.update(len(store.shard_range(s)))
        bar.close()
        D.barrier(dist)
        self.timings[f"generate/{set_name}"] = self.timings.get(f"generate/{set_name}", 0.0) + time.perf_counter() - t0
        return store

    def samples(self, set_name: str) -> SampleSet:
        """The whole sample set in memory (generated first if needed)."""
        if set_name not in self._samples:
            size = self.protocol.set_size(set_name)
            data = self.ensure_set(set_name).read_all()
            self._samples[set_name] = SampleSet(
                name=set_name, images=data["image"], depth=data.get("depth"), mask=data.get("mask"), z=data["z"],
                controls=Controls(data["camera"], data["shape"], data["expression"], data["pose"]),
                index=data["index"], group=data["group"], member=data["member"],
                n_groups=size.n_groups, n_members=size.n_members,
            )
        return self._samples[set_name]

    def sample_images(self, set_name: str, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """uint8 ``(B, 3, H, W)`` batches in global order, streamed shard by shard."""
        bs = batch_size or self.batch_size
        if set_name in self._samples:
            imgs = self._samples[set_name].images
            for i in range(0, len(imgs), bs):
                yield imgs[i : i + bs]
            return
        store = self.ensure_set(set_name)
        buf: list[torch.Tensor] = []
        have = 0
        for s in range(store.n_shards):
            buf.append(store.read_shard(s)["image"])
            have += len(buf[-1])
            while have >= bs:
                cat = torch.cat(buf)
                yield cat[:bs]
                buf, have = [cat[bs:]], have - bs
        if have:
            yield torch.cat(buf)

    def sample_fingerprint(self, set_name: str) -> dict[str, Any]:
        """The store key plus (name, size, mtime) of every shard file: regenerated shards get new mtimes, so
        features cached under this fingerprint never outlive the samples they came from."""
        store = self.ensure_set(set_name)
        stamps = []
        for i in range(store.n_shards):
            st = store.shard_path(i).stat()
            stamps.append([store.shard_path(i).name, st.st_size, st.st_mtime_ns])
        return {"key": store.key, "n": int(store.n), "shards": stamps}

    # -- real data
    @property
    def real_path(self) -> Path:
        """``--real`` or, when none was given, the cached default synthetic dataset (built on first use)."""
        if self._real_path is None:
            if self._real_arg is not None:
                self._real_path = self._real_arg
            else:
                self._real_path, seconds = default_real_path(
                    self.protocol, self.generator_head or "synthetic", str(self.head_model().sha256 or "na"),
                    self.cache_dir, progress=self.progress)
                if seconds:
                    self.timings["build/real"] = seconds
        return self._real_path

    @property
    def real_set(self) -> ImageSet:
        """The real image set (validated: readable, non-empty, one size)."""
        if self._real_set is None:
            self._real_set = open_real_set(self.real_path)
        return self._real_set

    def feature_cache(self, namespace: str, key: dict[str, Any],
                      compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Content-addressed ``.npz`` cache under ``cache_dir/features``: ``key`` must hash everything the
        arrays depend on (data content hash, network sha256, preprocessing). Written atomically by rank 0;
        two processes computing the same entry at once compute it once (the second waits on a file lock)."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        path = self.cache_dir / "features" / f"{namespace}-{digest[:24]}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if path.is_file():
                with np.load(path) as z:
                    return {k: z[k] for k in z.files}
            arrays = compute()
            if self.dist.is_main:
                atomic_savez(path, arrays)
            return arrays


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar on stderr, or an object with the same ``update``/``close`` that draws nothing."""
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, file=sys.stderr, unit="img", leave=False)

    class _Null:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Null()
