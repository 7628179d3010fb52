"""The evaluation engine: protocol -> generator -> shared sample cache -> metrics -> result file.

:func:`evaluate` generates each sample set the requested metrics need exactly once (into the
content-addressed cache of :mod:`omnibench.cache`; an interrupted run resumes), runs every metric on one
:class:`EvalContext`, adds bootstrap intervals, and returns (and optionally writes) a validated result
dict with full provenance. Any bad input raises :class:`omnibench.errors.OmnibenchError` before a result
file is written.

Metric authors use only :class:`EvalContext` (see its docstring).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnibench import __version__
from omnibench import distributed as D
from omnibench.assets import cache_root, sha256_file
from omnibench.cache import SampleStore, cache_key
from omnibench.errors import CheckpointError, MissingAssetError, OmnibenchError, suggest
from omnibench.generators import GENERATORS
from omnibench.generators.base import Controls, Generator, GeneratorOutput, read_checkpoint_kind
from omnibench.metric_api import METRICS, Metric, MetricResult, bootstrap_ci, parse_metric_spec
from omnibench.protocol import SET_NAMES, Protocol, get_protocol
from omnibench.registry import load_object
from omnibench.results import SCHEMA_VERSION, dumps_result, validate_result, write_result
from omnibench.sampling import BuiltinPrior, ControlSource, HeadPrior, LabelBank, draw_samples

# ------------------------------------------------------------------------------------------------ generators


class GenerationError(OmnibenchError):
    """The generator produced unusable samples (NaN, wrong shape, mixed sizes): always fatal."""


def resolve_generator(ckpt: str, generator: str | None = None, device: str = "cpu") -> tuple[Generator, dict]:
    """Build the generator for ``--ckpt``/``--generator``; returns (generator, checkpoint block).

    ``ckpt`` is a built-in name of :data:`GENERATORS` or a checkpoint path. ``generator`` is a registry name
    or ``module:Class``; without it a path goes to the registered generator whose ``accepts(path)`` is true.
    """
    path: Path | None = None
    named: str | None = None  # a name the generator resolves itself (e.g. a shipped checkpoint)
    if generator:
        cls = _generator_class(generator)
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
        cls = _detect_generator(path)
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
    try:
        gen = cls.load(str(path) if path else named, device)
    except OmnibenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad checkpoint from the user's view
        raise CheckpointError(
            f"cannot load '{path or ckpt}' with generator '{cls.name}': {type(exc).__name__}: {exc}"
        ) from None
    resolved = getattr(gen, "path", None)
    if path is None and isinstance(resolved, (str, Path)) and Path(resolved).is_file():
        path = Path(resolved)  # the generator found a shipped or cached checkpoint for a name
    info = {
        "path": str(path) if path else ckpt,
        "sha256": sha256_file(path) if path else None,
        "generator": gen.name,
        "description": gen.describe(),
    }
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


def _generator_class(spec: str) -> type[Generator]:
    cls = load_object(spec) if ":" in spec else GENERATORS.get(spec)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise OmnibenchError(f"'{spec}' is not a subclass of omnibench.generators.Generator")
    return cls


def _detect_generator(path: Path) -> type[Generator]:
    kind = read_checkpoint_kind(path)  # raises on corrupt files
    for name in GENERATORS.names():
        try:
            cls = GENERATORS.get(name)
            if cls.accepts(path):
                return cls
        except Exception:  # noqa: BLE001 - a broken plug-in must not hide the others
            continue
    if kind is None:
        raise CheckpointError(f"'{path}' is not an omnibench generator checkpoint; pass --generator NAME|module:Class")
    raise CheckpointError(
        f"'{path}' is a '{kind}' checkpoint, which no installed generator reads; pass --generator NAME|module:Class"
    )


# ------------------------------------------------------------------------------------------------ samples


@dataclass
class SampleSet:
    """A generated sample set in global order.

    ``images`` uint8 ``(N, 3, H, W)``; ``depth`` ``(N, H, W)`` metres or None; ``mask`` ``(N, H, W)`` [0, 1]
    or None; ``z`` ``(N, z_dim)``; ``controls`` as drawn (before the generator's layout fit); ``index``,
    ``group``, ``member`` ``(N,)`` int64 (``main``: group = index, member = 0).
    """

    name: str
    images: torch.Tensor
    depth: torch.Tensor | None
    mask: torch.Tensor | None
    z: torch.Tensor
    controls: Controls
    index: torch.Tensor
    group: torch.Tensor
    member: torch.Tensor
    n_groups: int
    n_members: int

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _to_uint8(image: torch.Tensor) -> torch.Tensor:
    return GeneratorOutput(image).image_uint8()


def _resize(out: GeneratorOutput, resolution: int, policy: str) -> GeneratorOutput:
    h, w = out.image.shape[-2:]
    if (h, w) == (resolution, resolution):
        return out
    if policy == "none":
        raise OmnibenchError(
            f"generator renders {h}x{w} but the protocol needs {resolution}x{resolution} and resize_policy is 'none'"
        )
    img = out.image.float() / 255.0 if out.image.dtype == torch.uint8 else out.image.float()
    img = torch.nn.functional.interpolate(img, size=(resolution, resolution), mode="bicubic", antialias=True,
                                          align_corners=False).clamp(0, 1)
    near = lambda t: None if t is None else torch.nn.functional.interpolate(  # noqa: E731
        t[:, None].float(), size=(resolution, resolution), mode="nearest")[:, 0]
    return GeneratorOutput(img, near(out.depth), near(out.mask))


def _check_output(out: Any, n: int, set_name: str) -> GeneratorOutput:
    if not isinstance(out, GeneratorOutput):
        raise OmnibenchError(f"generator returned {type(out).__name__}, expected GeneratorOutput")
    img = out.image
    if not isinstance(img, torch.Tensor) or img.ndim != 4 or img.shape[0] != n or img.shape[1] != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise OmnibenchError(f"generator returned images of shape {shape}, expected ({n}, 3, H, W)")
    if img.dtype != torch.uint8 and not torch.isfinite(img).all():
        raise OmnibenchError(
            f"generator produced NaN/inf pixels in set '{set_name}': check the checkpoint (diverged training?) "
            "or its truncation/precision settings"
        )
    for name in ("depth", "mask"):
        t = getattr(out, name)
        if t is not None and (t.ndim != 3 or t.shape[0] != n or tuple(t.shape[-2:]) != tuple(img.shape[-2:])):
            raise OmnibenchError(f"generator returned {name} of shape {tuple(t.shape)}, expected ({n}, H, W)")
    if out.mask is not None and not torch.isfinite(out.mask).all():
        raise OmnibenchError(f"generator produced NaN mask values in set '{set_name}'")
    return out


# ------------------------------------------------------------------------------------------------ context


class EvalContext:
    """What a metric sees.

    * ``ctx.samples(set_name)`` -> :class:`SampleSet` (generated once, cached on disk and in memory)
    * ``ctx.sample_images(set_name, batch_size=None)`` -> iterator of uint8 ``(B, 3, H, W)`` in global order
    * ``ctx.real_path`` / ``ctx.real_set`` (an opened ``omnibench.imagesets`` set) for metrics requiring ``real``
    * ``ctx.feature_cache(namespace, key, compute)`` content-addressed ``.npz`` cache (e.g. real-set features)
    * ``ctx.head_model()`` the head model the generator's controls refer to (loaded lazily)
    * ``ctx.options``: metric options from ``--option KEY=VALUE`` (e.g. ``estimator``, ``identity_backbone``);
      recorded in the result because they can change numbers
    * ``ctx.device``, ``ctx.batch_size``, ``ctx.seed``, ``ctx.cache_dir``, ``ctx.protocol``, ``ctx.generator``,
      ``ctx.rank``/``ctx.world_size``
    """

    def __init__(
        self,
        protocol: Protocol,
        generator: Generator,
        checkpoint: dict,
        *,
        device: str = "cpu",
        batch_size: int = 16,
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
        self.checkpoint = checkpoint
        self.device = device
        self.batch_size = int(batch_size)
        self.cache_dir = cache_root()
        self.dist = dist_info or D.DistInfo()
        self._gen_dist = self.dist  # collectives only while all ranks generate; see end_collective()
        self.progress = progress and self.dist.is_main and not os.environ.get("CI")
        self._real_arg = Path(real) if real else None
        self._labels_arg = Path(labels) if labels else None
        self._real_path: Path | None = None
        self._real_set: Any = None
        self._head: Any = None
        self._source: ControlSource | None = None
        self._samples: dict[str, SampleSet] = {}
        self.timings: dict[str, float] = {}

    # -- basics
    @property
    def seed(self) -> int:
        return self.protocol.seed

    @property
    def rank(self) -> int:
        return self.dist.rank

    @property
    def world_size(self) -> int:
        return self.dist.world_size

    def end_collective(self) -> None:
        """After the shared generation phase: rank 0 runs metrics alone (no more collectives)."""
        self._gen_dist = D.DistInfo()

    def head_model(self) -> Any:
        """``omnibench.heads.load_head_model(generator.head_model or 'synthetic')``, loaded once."""
        if self._head is None:
            try:
                from omnibench.heads import load_head_model  # type: ignore[attr-defined]
            except ImportError:
                raise MissingAssetError("head models are not available (omnibench.heads.load_head_model)") from None
            self._head = load_head_model(self.generator.head_model or "synthetic")
        return self._head

    # -- controls
    def control_source(self) -> ControlSource:
        """The protocol's FLAME source: a label bank (``labels``) or the head model's prior (``prior``)."""
        if self._source is None:
            if self.protocol.flame_source == "labels":
                bank = self._labels_arg or self.real_path
                if bank is None or not (bank / "dataset.json" if bank.is_dir() else bank).is_file():
                    raise OmnibenchError(
                        f"protocol '{self.protocol.name}' draws controls from dataset labels: pass --labels "
                        "PATH/dataset.json or --real with an EG3D-style dataset folder"
                    )
                self._source = LabelBank.from_dataset_json(bank)
            else:
                self._source = _prior_source(self)
        return self._source

    # -- sample sets
    def store(self, set_name: str) -> SampleStore:
        size = self.protocol.set_size(set_name)
        gen_id = {"name": self.checkpoint["generator"], "sha256": self.checkpoint["sha256"],
                  "path": None if self.checkpoint["sha256"] else self.checkpoint["path"],
                  "description": self.checkpoint["description"]}
        source = self.control_source().describe()
        key = cache_key(gen_id, self.protocol.hash, set_name, source)
        meta = {"generator": {"generator": self.checkpoint["generator"], **gen_id},
                "protocol": {"name": self.protocol.name, "version": self.protocol.version, "hash": self.protocol.hash},
                "controls": source}
        return SampleStore(self.cache_dir, set_name, self.checkpoint["generator"], key, size.n, meta)

    def ensure_set(self, set_name: str) -> SampleStore:
        """Generate the missing shards of ``set_name`` (all ranks take part; rank 0 writes)."""
        store = self.store(set_name)
        dist = self._gen_dist
        missing = D.broadcast(store.missing() if dist.is_main else None, dist)
        if not missing:
            return store
        t0 = time.perf_counter()
        n_todo = sum(len(store.shard_range(s)) for s in missing)
        bar = _progress(n_todo, f"generate {set_name}", self.progress)
        mine = D.assign(missing, dist)
        rounds = -(-len(missing) // dist.world_size)
        for r in range(rounds):
            shard = mine[r] if r < len(mine) else None
            try:
                data = self._generate_shard(store, shard) if shard is not None else None
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

    @torch.no_grad()
    def _generate_shard(self, store: SampleStore, s: int) -> dict[str, torch.Tensor]:
        rng = store.shard_range(s)
        gen, p = self.generator, self.protocol
        parts: list[dict[str, torch.Tensor]] = []
        for b0 in range(rng.start, rng.stop, self.batch_size):
            idx = list(range(b0, min(rng.stop, b0 + self.batch_size)))
            spec = draw_samples(p, store.set_name, idx, gen.z_dim, self.control_source())
            ctrl = spec.controls.fit_layout(gen.flame_layout).to(self.device)
            out = gen.synthesize(spec.z.to(self.device), ctrl, p.truncation_psi)
            out = _check_output(out, len(idx), store.set_name)
            out = _resize(out, p.resolution, p.resize_policy)
            part = {
                "index": spec.index, "group": spec.group, "member": spec.member, "z": spec.z,
                "camera": spec.controls.camera, "shape": spec.controls.shape,
                "expression": spec.controls.expression, "pose": spec.controls.pose,
                "image": _to_uint8(out.image).cpu(),
            }
            keep = store.set_name in p.depth_sets
            if keep and out.depth is not None:
                part["depth"] = out.depth.detach().float().cpu()
            if keep and out.mask is not None:
                part["mask"] = out.mask.detach().float().cpu()
            if parts and set(part) != set(parts[0]):
                raise OmnibenchError("generator returned depth/mask for some batches only")
            if parts and part["image"].shape[-2:] != parts[0]["image"].shape[-2:]:
                raise OmnibenchError("generator returned images of mixed sizes")
            parts.append(part)
        return {k: torch.cat([pt[k] for pt in parts]) for k in parts[0]}

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

    # -- real data
    @property
    def real_path(self) -> Path | None:
        """``--real`` or, when none was given, the cached default synthetic dataset (built on first use)."""
        if self._real_path is None:
            self._real_path = self._real_arg if self._real_arg is not None else _default_real(self)
        return self._real_path

    @property
    def real_set(self) -> Any:
        """The real image set opened with ``omnibench.imagesets`` (validated: readable, non-empty, one size)."""
        if self._real_set is None:
            path = self.real_path
            if path is None:
                raise OmnibenchError("this metric needs real images: pass --real PATH")
            self._real_set = open_real_set(path)
        return self._real_set

    def feature_cache(self, namespace: str, key: dict, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Content-addressed ``.npz`` cache under ``cache_dir/features``: ``key`` must hash everything the
        arrays depend on (data content hash, network sha256, preprocessing). Written atomically by rank 0."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        path = self.cache_dir / "features" / f"{namespace}-{digest[:24]}.npz"
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        arrays = compute()
        if self.dist.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)
        return arrays


def _prior_source(ctx: EvalContext) -> ControlSource:
    try:
        from omnibench.data import synth  # type: ignore[attr-defined]

        sample_controls = synth.sample_controls
        version = getattr(synth, "SAMPLER_VERSION", None) or getattr(
            __import__("omnibench.data.sampling", fromlist=["x"]), "SAMPLER_VERSION", None)
    except (ImportError, AttributeError):
        sample_controls, version = None, None
    head = None
    try:
        head = ctx.head_model()
    except OmnibenchError:
        if sample_controls is not None:
            raise
    if sample_controls is not None and head is not None:
        return HeadPrior(head, sample_controls, version)
    if head is not None:
        return BuiltinPrior(int(head.n_shape), int(head.n_expression))
    return BuiltinPrior()


def _default_real(ctx: EvalContext) -> Path | None:
    """The synthetic profile's real set: ``omnibench.data.synth`` renders it once, deterministically, into
    ``cache_dir/datasets/`` (keyed by head model, size, resolution, seed and synth version)."""
    try:
        from omnibench.data import synth  # type: ignore[attr-defined]
    except ImportError:
        return None
    build = getattr(synth, "synthesize_dataset", None)
    if build is None:
        return None
    p = ctx.protocol
    n = p.real_n or p.main.n
    head = ctx.generator.head_model or "synthetic"
    head_sha = getattr(ctx.head_model(), "sha256", None) or "na"
    name = f"synth-{_safe_name(head)}-{str(head_sha)[:12]}-n{n}-r{p.resolution}-s{p.seed}-v{getattr(synth, 'SYNTH_VERSION', '0')}"
    out = ctx.cache_dir / "datasets" / name
    if not (out / "manifest.json").is_file():
        workers = max(1, min(4, os.cpu_count() or 1))
        print(f"omnibench: building the default synthetic real set ({n} images at {p.resolution} px, one-off) "
              f"in {out}", file=sys.stderr)
        t0 = time.perf_counter()
        build(out, n, resolution=p.resolution, head=head, seed=p.seed, workers=workers, force=True,
              command=["omnibench", "evaluate (default real set)"], progress=ctx.progress)
        ctx.timings["build/real"] = time.perf_counter() - t0
    return out


def _safe_name(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:32]


def open_real_set(path: Path) -> Any:
    """Open ``path`` with ``omnibench.imagesets`` (folder, zip, dataset folder or statistics file)."""
    if not path.exists():
        raise OmnibenchError(f"real set '{path}' does not exist: pass --real with an image folder, zip, "
                             "dataset folder or statistics file")
    try:
        from omnibench import imagesets  # type: ignore[attr-defined]
    except ImportError:
        raise MissingAssetError("reading real image sets needs omnibench.imagesets, which is not installed") from None
    opener = getattr(imagesets, "open_image_set", None) or getattr(imagesets, "load_image_set", None)
    if opener is None:
        raise MissingAssetError("omnibench.imagesets has no open_image_set()")
    return opener(path)


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, file=sys.stderr, unit="img", leave=False)

    class _Null:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Null()


# ------------------------------------------------------------------------------------------------ metrics


def resolve_metrics(specs: Sequence[str] | None) -> tuple[list[tuple[str, type[Metric], str]], dict[str, str]]:
    """``[(result key, class, variant)]`` for the given specs, or every registered metric when None.

    Specs are ``name``, ``name@variant`` or ``module:Class[@variant]``. With ``specs=None`` a metric that
    cannot be imported is skipped (reason returned); an explicit unknown name raises with a suggestion.
    """
    out: list[tuple[str, type[Metric], str]] = []
    skipped: dict[str, str] = {}
    if specs is None:
        from omnibench.metric_api import load_metric_plugins

        load_metric_plugins()
        for name in METRICS.names():
            try:
                cls, variant = parse_metric_spec(name)
            except OmnibenchError as exc:
                skipped[name] = str(exc)
                continue
            out.append((name, cls, variant))
        return out, skipped
    seen: set[str] = set()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        base, _, variant = spec.partition("@")
        if ":" in base:
            cls = load_object(base)
            if not (isinstance(cls, type) and issubclass(cls, Metric)):
                raise OmnibenchError(f"'{base}' is not a subclass of omnibench.metric_api.Metric")
            variant = variant or cls.default_variant
            if variant not in cls.variants:
                raise OmnibenchError(f"unknown variant '{variant}' of metric '{cls.name}'{suggest(variant, cls.variants)}")
        else:
            cls, variant = parse_metric_spec(spec)
        key = cls.name if variant == cls.default_variant else f"{cls.name}@{variant}"
        if key not in seen:
            seen.add(key)
            out.append((key, cls, variant))
    if not out:
        raise OmnibenchError("--metrics is empty")
    return out, skipped


def _metric_entry(cls: type[Metric], variant: str, res: MetricResult, protocol: Protocol, seconds: float) -> dict:
    if not isinstance(res, MetricResult):
        raise OmnibenchError(f"metric '{cls.name}' returned {type(res).__name__}, expected MetricResult")
    details = dict(res.details)
    per_sample = details.pop("per_sample", None)
    ci = res.ci95
    if ci is None and per_sample is not None:
        ci = bootstrap_ci(np.asarray(per_sample), n_boot=protocol.bootstrap, seed=protocol.seed)
    value = None if res.value is None else float(res.value)
    entry: dict[str, Any] = {
        "value": value,
        "higher_is_better": bool(cls.higher_is_better),
        "n": int(res.n),
        "ci95": [float(ci[0]), float(ci[1])] if ci is not None else None,
        "version": int(cls.version),
        "variant": variant,
        "failures": int(res.failures),
        "details": details,
        "seconds": round(seconds, 4),
    }
    unit = res.unit or cls.unit
    if unit:
        entry["unit"] = unit
    return json.loads(json.dumps(entry, default=_jsonable))


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# ------------------------------------------------------------------------------------------------ provenance


def git_sha() -> str | None:
    """Commit of the omnibench source tree, or None when not in a git checkout."""
    src = Path(__file__).resolve().parent.parent
    try:
        r = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = r.stdout.strip()
    if r.returncode != 0 or not sha:
        return None
    dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def environment(device: str, world_size: int = 1) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": device,
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env


# ------------------------------------------------------------------------------------------------ run loop


def evaluate(
    ckpt: str,
    *,
    generator: str | None = None,
    protocol: str | Protocol = "quick",
    metrics: Sequence[str] | None = None,
    real: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 16,
    seed: int | None = None,
    progress: bool = True,
    options: dict[str, Any] | None = None,
) -> dict | None:
    """Run one evaluation and return the result dict (None on ranks other than 0 under torchrun).

    ``out``: result file path, written atomically by rank 0 after validation (nothing is written on error).
    """
    t_start = time.perf_counter()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OmnibenchError("--device cuda requested but no CUDA device is available; use --device cpu")
    proto = protocol.with_seed(seed) if isinstance(protocol, Protocol) else get_protocol(protocol, seed)
    chosen, skipped = resolve_metrics(metrics)
    if out is not None and Path(out).is_dir():
        raise OmnibenchError(f"--out '{out}' is a folder; give a file name such as results/run.json")
    if real is not None and not Path(real).exists():
        raise OmnibenchError(f"real set '{real}' does not exist: pass --real with an image folder, zip, "
                             "dataset folder or statistics file")
    info = D.init_from_env(device)
    try:
        dev = f"cuda:{info.local_rank}" if device == "cuda" and info.active else device
        gen, ckpt_block = resolve_generator(ckpt, generator, dev)
        if gen.resolution != proto.resolution:
            native = gen.at_resolution(proto.resolution)
            if native is not gen:
                gen = native
                ckpt_block = {**ckpt_block, "description": gen.describe()}
        ctx = EvalContext(proto, gen, ckpt_block, device=dev, batch_size=batch_size, real=real, labels=labels,
                          progress=progress, dist_info=info, options=options)
        if info.active and proto.flame_source == "labels" and labels is None and real is None:
            if info.is_main:  # the default label bank is the synthetic real set: rank 0 builds it once
                ctx.real_path  # noqa: B018
            D.barrier(info)
        needs_real = any("real" in cls.requires for _, cls, _ in chosen)
        if needs_real and info.is_main:
            ctx.real_set  # noqa: B018 - open and validate the real set before spending time on generation
        chosen = _precheck(chosen, ctx, skipped, explicit=metrics is not None)
        if info.active:  # every rank must take part in generation; single-process runs generate lazily
            for set_name in SET_NAMES:
                if any(set_name in cls.requires for _, cls, _ in chosen):
                    ctx.ensure_set(set_name)
        ctx.end_collective()
        if not info.is_main:
            return None
        results: dict[str, dict] = {}
        backbones: dict[str, dict] = {}
        for key, cls, variant in chosen:
            t0 = time.perf_counter()
            gen0 = _generation_seconds(ctx)
            try:
                res = cls().compute(ctx, variant)
            except OmnibenchError as exc:
                # "all available metrics": skip those that cannot run here, never hide a bad generator
                if metrics is None and not isinstance(exc, (GenerationError, CheckpointError)):
                    skipped[key] = str(exc)
                    continue
                raise
            dt = time.perf_counter() - t0 - (_generation_seconds(ctx) - gen0)
            ctx.timings[f"metric/{key}"] = dt
            results[key] = _metric_entry(cls, variant, res, proto, dt)
            for role, bb in (res.backbones or {}).items():
                name = str(bb.get("name", role))
                backbones[name] = {"name": name, "sha256": bb.get("sha256"), "role": role}
        if not results:
            why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no metric registered"
            raise OmnibenchError(f"no metric could run ({why}); install the metric families or pass --metrics")
        ctx.timings["total"] = time.perf_counter() - t_start
        result = {
            "schema_version": SCHEMA_VERSION,
            "omnibench_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_sha": git_sha(),
            "checkpoint": ckpt_block,
            "protocol": proto.summary(),
            "backbones": backbones,
            "environment": environment(dev, info.world_size),
            "sampling": {
                s: {"n": proto.set_size(s).n, "cache_key": ctx.store(s).key, "controls": ctx.control_source().describe()}
                for s in SET_NAMES if any(s in cls.requires for _, cls, _ in chosen)
            },
            "real": _real_block(ctx) if needs_real else None,
            "metrics": results,
            "skipped": skipped,
            "options": ctx.options,
            "run": {"batch_size": batch_size, "device": dev, "world_size": info.world_size},
            "timings": {k: round(v, 4) for k, v in ctx.timings.items()},
        }
        result = json.loads(dumps_result(json.loads(json.dumps(result, default=_jsonable))))
        if out is not None:
            write_result(out, result)
        else:
            validate_result(result)
        return result
    finally:
        D.shutdown(info)


def _precheck(chosen: list[tuple[str, type[Metric], str]], ctx: EvalContext, skipped: dict[str, str], *,
              explicit: bool) -> list[tuple[str, type[Metric], str]]:
    """Call each metric's optional ``check(ctx, variant)`` (assets, backbones) before any generation.

    A failing check raises for explicitly requested metrics and skips the metric in a default run.
    """
    kept = []
    for key, cls, variant in chosen:
        check = getattr(cls, "check", None)
        if callable(check):
            try:
                check(ctx, variant)
            except OmnibenchError as exc:
                if explicit or isinstance(exc, (GenerationError, CheckpointError)):
                    raise
                skipped[key] = str(exc)
                continue
        kept.append((key, cls, variant))
    return kept


def _generation_seconds(ctx: EvalContext) -> float:
    return sum(v for k, v in ctx.timings.items() if k.startswith(("generate/", "build/")))


def _real_block(ctx: EvalContext) -> dict:
    rs = ctx.real_set
    block = {"path": str(ctx.real_path)}
    for attr in ("content_hash", "sha256", "hash"):
        v = getattr(rs, attr, None)
        if isinstance(v, str):
            block["hash"] = v
            break
    try:
        block["n"] = len(rs)
    except TypeError:
        pass
    return block
