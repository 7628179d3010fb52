"""Stage I training loop: ``omnibench train sdf --config tiny|full [--device cuda] [--resume]``.

Data-parallel under ``torchrun`` (:func:`omnibench.distributed.init_from_env`: gloo on CPU, nccl on CUDA with
rank ``r`` on ``cuda:LOCAL_RANK``): each rank draws disjoint mesh slots of the
same step (``SDFDataSource.training_batch``), gradients are averaged over ranks
(:func:`omnibench.distributed.average_gradients`), rank 0 writes checkpoints and the ``log.jsonl`` beside them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from omnibench.distributed import average_gradients, init_from_env
from omnibench.errors import OmnibenchError
from reference_model.sdf.checkpoint import load_sdf, read_sdf_checkpoint, save_sdf
from reference_model.sdf.config import CONFIGS, SDFConfig
from reference_model.sdf.data import SDFBatch, SDFDataSource, StepStream
from reference_model.sdf.losses import stage1_losses
from reference_model.sdf.model import SemanticSDF, sdf_and_gradient


def load_head(name: str):
    from omnibench.heads import load_head_model

    return load_head_model(name)


def build_model(cfg: SDFConfig, source: SDFDataSource) -> SemanticSDF:
    lo, hi = source.canonical.min(0), source.canonical.max(0)
    center = (lo + hi) / 2
    radius = float((hi - lo).max() / 2 + cfg.volume_pad)
    return SemanticSDF(cfg, center.astype(np.float32), radius)


def step_losses(model, batch: SDFBatch, cfg: SDFConfig, device: torch.device) -> dict[str, torch.Tensor]:
    cond = batch.params.to(device)
    s_surf, xbar_surf, g_surf = sdf_and_gradient(model, batch.surface.to(device), cond)
    s_off, _, g_off = sdf_and_gradient(model, batch.off.to(device), cond)
    return stage1_losses(
        s_surf, g_surf, xbar_surf, batch.normals.to(device), batch.canonical.to(device),
        s_off, g_off, batch.off_sdf.to(device), cfg,
    )


def train(
    cfg: SDFConfig,
    out: Path,
    device: str = "cpu",
    resume: bool = False,
    head=None,
    quiet: bool = False,
) -> Path:
    """Train W and write ``out`` (the final checkpoint); returns ``out``."""
    info = init_from_env(device)
    world, rank = info.world_size, info.rank
    dev = torch.device(info.device_for(device))
    torch.manual_seed(cfg.seed)
    head = head if head is not None else load_head(cfg.head)
    source = SDFDataSource(head, cfg)
    model = build_model(cfg, source).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = 0
    if resume and out.exists():
        ckpt = read_sdf_checkpoint(out)
        loaded = load_sdf(out, head=head)
        model.load_state_dict(loaded.state_dict())
        if "optimizer" in ckpt:
            opt.load_state_dict(ckpt["optimizer"])
        start = int(ckpt["step"])
    if world > 1:  # every rank starts from rank 0's weights
        for t in model.state_dict().values():
            torch.distributed.broadcast(t, 0)
    loader = torch.utils.data.DataLoader(
        StepStream(source, start, cfg.steps, rank, world), batch_size=None, num_workers=1, prefetch_factor=4
    ) if cfg.steps > start else []
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_suffix(".log.jsonl")
    t0 = time.time()
    for step, batch in loader:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.lr_decay ** (step // cfg.lr_decay_every)
        terms = step_losses(model, batch, cfg, dev)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        average_gradients(model.parameters(), world)
        opt.step()
        done = step + 1
        if rank == 0 and (done % cfg.log_every == 0 or done == cfg.steps):
            rec = {"step": done, "time_s": round(time.time() - t0, 1), **{k: float(v.detach()) for k, v in terms.items()}}
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
            if not quiet:
                print(
                    f"[sdf] step {done}/{cfg.steps} total {rec['total']:.4f} |s| {rec['surface'] * 1e3:.2f}mm "
                    f"normal {rec['normal']:.3f} eik {rec['eikonal']:.4f} sem {rec['semantic'] * 1e3:.2f}mm "
                    f"off {rec['offsurface'] * 1e3:.2f}mm ({rec['time_s']}s)",
                    file=sys.stderr,
                )
        if rank == 0 and (done % cfg.ckpt_every == 0 or done == cfg.steps):
            save_sdf(out, model, head, done, opt)
    if rank == 0 and not out.exists():
        save_sdf(out, model, head, start, opt)
    if world > 1:
        torch.distributed.barrier()
    return out


def config_from_name(name: str) -> SDFConfig:
    if name not in CONFIGS:
        raise OmnibenchError(f"unknown SDF config '{name}'; available: {', '.join(CONFIGS)}")
    return CONFIGS[name]
