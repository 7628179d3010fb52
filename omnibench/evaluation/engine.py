"""The evaluation engine: protocol -> generator -> shared sample cache -> metrics -> result file.

:func:`evaluate` checks every argument first, then generates each sample set the requested metrics need
exactly once (into the content-addressed cache of :mod:`omnibench.cache`; an interrupted run resumes),
runs every metric on one :class:`EvalContext`, adds bootstrap intervals, and returns (and optionally
writes) a validated result dict with full provenance. Any bad input raises
:class:`omnibench.errors.OmnibenchError` before a result file is written.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from omnibench import __version__
from omnibench import distributed as D
from omnibench.errors import CheckpointError, OmnibenchError
from omnibench.evaluation.context import EvalContext
from omnibench.evaluation.generation import GenerationError
from omnibench.evaluation.provenance import (
    environment,
    git_sha,
    metric_entry,
    not_applicable_entry,
    real_block,
)
from omnibench.generators.base import CONTROL_NAMES, Generator, check_controls
from omnibench.generators.resolve import resolve_generator
from omnibench.metric_api import DEFAULT_BATCH_SIZE, Metric, resolve_metrics
from omnibench.protocol import SET_NAMES, Protocol, get_protocol
from omnibench.results import SCHEMA_VERSION, json_safe, validate_result, write_result

Chosen = list[tuple[str, type[Metric], str]]
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


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
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int | None = None,
    progress: bool = True,
    options: dict[str, Any] | None = None,
    label: str | None = None,
) -> dict | None:
    """Run one evaluation and return the result dict (None on ranks other than 0 under torchrun).

    ``ckpt``: a checkpoint path, a built-in generator (``oracle``) or a shipped checkpoint name (``tiny``);
    ``generator``: registry name or ``module:Class`` reading ``ckpt`` (default: detected);
    ``protocol``: ``quick``/``standard``/``paper`` or a :class:`Protocol`; ``metrics``: ``name``,
    ``name@variant`` or ``module:Class`` specs (None: every registered metric that can run here, the others
    listed under ``skipped``); ``real``: real image set (folder, zip, dataset folder, statistics file;
    default: the synthetic profile's rendered set); ``labels``: ``dataset.json`` for ``labels`` protocols;
    ``out``: result file, written atomically by rank 0 after validation (nothing is written on error);
    ``device``: ``cpu``, ``cuda`` or ``cuda:N`` (torchrun: ``cuda`` becomes ``cuda:LOCAL_RANK``);
    ``batch_size``: images per generator/metric forward pass (never changes a number); ``seed``: overrides
    the protocol seed (changes its hash); ``progress``: progress bars on stderr; ``options``: metric options
    (``--option KEY=VALUE``), recorded in the result; ``label``: the model's row label in tables
    (``checkpoint.label``; runs of one model that differ only in training seed share it).
    """
    t_start = time.perf_counter()
    if label is not None and not str(label).strip():
        raise OmnibenchError("--label is empty: give the row label tables should show, or leave it out")
    proto, chosen, skipped = _check_arguments(ckpt, protocol, metrics, real, labels, out, device, batch_size, seed)
    info = D.init_from_env(device)
    try:
        with _exact_float32():
            dev = info.device_for(device)
            gen, ckpt_block = resolve_generator(ckpt, generator, dev, options)
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
            requested = [key for key, _, _ in chosen]
            chosen, not_applicable = split_not_applicable(chosen, gen)
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
            results, backbones = _run_metrics(chosen, ctx, skipped, explicit=metrics is not None,
                                              not_applicable=not_applicable)
            results = {k: results[k] for k in requested if k in results}  # the order asked for
        ctx.timings["total"] = time.perf_counter() - t_start
        if label is not None:
            ckpt_block = {**ckpt_block, "label": str(label).strip()}
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
            "real": real_block(ctx.real_path, ctx.real_set) if needs_real else None,
            "metrics": results,
            "skipped": skipped,
            "options": ctx.options,
            "run": {"batch_size": batch_size, "device": dev, "world_size": info.world_size},
            "timings": {k: round(v, 4) for k, v in ctx.timings.items()},
        }
        result = json_safe(result)
        if out is not None:
            write_result(out, result)
        else:
            validate_result(result)
        return result
    finally:
        D.shutdown(info)


def _check_arguments(ckpt: str, protocol: str | Protocol, metrics: Sequence[str] | None,
                     real: str | os.PathLike | None, labels: str | os.PathLike | None,
                     out: str | os.PathLike | None, device: str, batch_size: int,
                     seed: int | None) -> tuple[Protocol, Chosen, dict[str, str]]:
    """Every argument checked before any work (no generation, no real-set build); the protocol and metrics."""
    if not ckpt:
        raise OmnibenchError("--ckpt is empty: pass a checkpoint file, a built-in generator or a shipped name")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise OmnibenchError(f"--seed must be a non-negative integer, got {seed!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise OmnibenchError(f"--batch-size must be >= 1, got {batch_size!r}")
    if not _DEVICE_RE.match(str(device)):
        raise OmnibenchError(f"--device must be cpu, cuda or cuda:N, got '{device}'")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise OmnibenchError("--device cuda requested but no CUDA device is available; use --device cpu")
    proto = protocol.with_seed(seed) if isinstance(protocol, Protocol) else get_protocol(protocol, seed)
    chosen, skipped = resolve_metrics(metrics)
    if out is not None and Path(out).is_dir():
        raise OmnibenchError(f"--out '{out}' is a folder; give a file name such as results/run.json")
    if real is not None and not Path(real).exists():
        raise OmnibenchError(f"real set '{real}' does not exist: pass --real with an image folder, zip, "
                             "dataset folder or statistics file")
    if labels is not None and not Path(labels).exists():
        raise OmnibenchError(f"label bank '{labels}' does not exist: pass --labels PATH/dataset.json")
    return proto, chosen, skipped


@contextmanager
def _exact_float32() -> Iterator[None]:
    """TF32 off for the run (metrics compare to 1e-4), restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _precheck(chosen: Chosen, ctx: EvalContext, skipped: dict[str, str], *, explicit: bool) -> Chosen:
    """Each metric's ``check(ctx, variant)`` (assets, backbones) before any generation: a failing check raises
    for explicitly requested metrics and skips the metric in a default run."""
    kept = []
    for key, cls, variant in chosen:
        try:
            cls.check(ctx, variant)
        except OmnibenchError as exc:
            if explicit or isinstance(exc, (GenerationError, CheckpointError)):
                raise
            skipped[key] = str(exc)
            continue
        kept.append((key, cls, variant))
    return kept


def split_not_applicable(chosen: Chosen, gen: Generator) -> tuple[Chosen, dict[str, dict]]:
    """``(metrics to run, result entries of those not applicable)``: a metric whose variant needs a control
    the generator ignores (:meth:`Metric.required_controls` vs :meth:`Generator.honoured_controls`) is not run;
    its entry has ``value`` null and ``not_applicable`` the reason."""
    honoured = gen.honoured_controls()
    run: Chosen = []
    na: dict[str, dict] = {}
    for key, cls, variant in chosen:
        required = check_controls(cls.required_controls(variant), f"metric '{key}'")
        missing = [c for c in CONTROL_NAMES if c in required and c not in honoured]
        if not missing:
            run.append((key, cls, variant))
            continue
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        na[key] = not_applicable_entry(cls, variant, f"generator '{gen.display_name}' ignores the {names} "
                                                     f"control{'s' if len(missing) > 1 else ''} this metric measures")
    return run, na


def _run_metrics(chosen: Chosen, ctx: EvalContext, skipped: dict[str, str], *, explicit: bool,
                 not_applicable: dict[str, dict] | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """``(metric entries by result key, backbones by name)``; generation time is not billed to a metric.
    ``not_applicable`` entries (:func:`split_not_applicable`) are included."""
    results: dict[str, dict] = dict(not_applicable or {})
    backbones: dict[str, dict] = {}
    for key, cls, variant in chosen:
        t0 = time.perf_counter()
        gen0 = _generation_seconds(ctx)
        try:
            res = cls().compute(ctx, variant)
        except OmnibenchError as exc:
            # "all available metrics": skip those that cannot run here, never hide a bad generator
            if not explicit and not isinstance(exc, (GenerationError, CheckpointError)):
                skipped[key] = str(exc)
                continue
            raise
        dt = time.perf_counter() - t0 - (_generation_seconds(ctx) - gen0)
        ctx.timings[f"metric/{key}"] = dt
        results[key] = metric_entry(cls, variant, res, ctx.protocol, dt)
        for role, bb in (res.backbones or {}).items():
            name = str(bb.get("name", role))
            backbones[name] = {"name": name, "sha256": bb.get("sha256"), "role": role}
    if not results:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "no metric registered"
        raise OmnibenchError(f"no metric could run ({why}); install the metric families or pass --metrics")
    return results, backbones


def _generation_seconds(ctx: EvalContext) -> float:
    return sum(v for k, v in ctx.timings.items() if k.startswith(("generate/", "build/")))
