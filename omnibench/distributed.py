"""Multi-process evaluation (``torchrun``; gloo on CPU, nccl-free): deterministic work split, ordered gather.

Work is split by cache shard: rank ``r`` of ``w`` generates the shards at positions ``r, r + w, ...`` of
the missing-shard list that rank 0 broadcasts. Each round every rank hands its shard to rank 0
(``gather_object``), which writes it; metrics then run on rank 0 and only rank 0 writes the result file.
Because every sample is keyed by its global index (see :mod:`omnibench.evaluation.draws`), numbers do not depend
on the number of processes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device_for(self, device: str) -> str:
        """The device this process computes on when ``device`` is asked for: a bare ``"cuda"`` becomes
        ``"cuda:LOCAL_RANK"`` under torchrun (each rank its own GPU); anything else (``"cpu"``, an explicit
        ``"cuda:N"``, a single process's ``"cuda"``) is used as given."""
        return f"cuda:{self.local_rank}" if device == "cuda" and self.active else device


def env_info(environ: Mapping[str, str] | None = None) -> DistInfo:
    """What torchrun's ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` say (a pure function: joins nothing)."""
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(rank=int(env.get("RANK", "0")), world_size=world, local_rank=int(env.get("LOCAL_RANK", "0")))


def init_from_env(device: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else a single-process DistInfo.

    The one process-group set-up of the suite (evaluation and both reference-model trainers): nccl when
    ``device`` is CUDA and CUDA is available (after pinning this process to ``cuda:LOCAL_RANK``, see
    :meth:`DistInfo.device_for`), gloo otherwise.
    """
    info = env_info()
    if not info.active:
        return info
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(torch.device(info.device_for(device)))
        dist.init_process_group(backend=backend)
        here = True
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=info.local_rank,
                    initialized_here=here)


def shutdown(info: DistInfo) -> None:
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def assign(items: list[Any], info: DistInfo) -> list[Any]:
    """This rank's share of ``items``: positions ``rank, rank + world, ...`` (deterministic)."""
    return items[info.rank :: info.world_size]


def broadcast(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_to_main(obj: Any, info: DistInfo) -> list[Any] | None:
    """List of every rank's ``obj`` in rank order on rank 0; None elsewhere."""
    if not info.active:
        return [obj]
    out: list[Any] | None = [None] * info.world_size if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def gather_in_order(local: list[Any], local_indices: list[int], info: DistInfo) -> list[Any] | None:
    """Items from all ranks, sorted by their global index, on rank 0 (None elsewhere)."""
    parts = gather_to_main(list(zip(local_indices, local)), info)
    if parts is None:
        return None
    merged = sorted((pair for part in parts for pair in part), key=lambda p: p[0])
    return [item for _, item in merged]


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def average_gradients(params: Any, world_size: int) -> None:
    """Data-parallel training step: replace each parameter's ``.grad`` by its mean over ranks (a missing
    gradient counts as zero). Done by hand rather than through ``DistributedDataParallel`` because the
    trainers call ``forward`` several times per step and differentiate through ``autograd.grad``
    (gradient penalties, SDF normals), which DDP's reducer does not follow. No-op in one process."""
    if world_size <= 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world_size
