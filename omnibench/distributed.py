"""Multi-process evaluation (``torchrun``; gloo on CPU, nccl-free): deterministic work split, ordered gather.

Work is split by cache shard: rank ``r`` of ``w`` generates the shards at positions ``r, r + w, ...`` of
the missing-shard list that rank 0 broadcasts. Each round every rank hands its shard to rank 0
(``gather_object``), which writes it; metrics then run on rank 0 and only rank 0 writes the result file.
Because every sample is keyed by its global index (see :mod:`omnibench.sampling`), numbers do not depend
on the number of processes.
"""

from __future__ import annotations

import os
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


def init_from_env(device: str = "cpu") -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else a single-process DistInfo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        here = True
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local, initialized_here=here) \
        if dist.is_initialized() else DistInfo(rank=rank, world_size=world, local_rank=local)


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
