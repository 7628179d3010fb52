"""Training and held-out evaluation of the ``regressor`` estimator.

Data: an EG3D-style labelled dataset (``DIR/dataset.json`` with ``labels`` (cameras) and ``flame``
entries, see docs/architecture.md), either given (``--data DIR``) or rendered for a head model by
``omnibench.data.synth.synthesize_dataset`` (the ``oracle`` generator with FFHQ-like controls) into the
cache. Targets: shape (first ``n_shape``), expression (first ``n_expression``), neck and jaw axis-angle,
camera yaw/pitch (:func:`omnibench.cameras.yaw_pitch_of`), each standardised by its training mean/std.
Face/no-face: a logit trained with procedurally generated non-face images (iid noise at several block
sizes, smoothed noise, colour gradients, patch-shuffled renders) so pure-noise images are reported as
undetected. Everything is seeded; on CPU with the same torch version and thread count the weights are
bit-identical.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from metrics.control_math import per_sample_rotation_error_deg
from metrics.estimators.regressor import (
    AlignedNet,
    RegressorNet,
    aligned_columns,
    aligned_grid,
    center_crop,
    output_layout,
    preprocess,
    run_regressor,
)
from omnibench.cameras import (
    FRAMING_V1,
    Framing,
    get_framing,
    orbit_camera,
    recorded_framing,
    split_camera,
    yaw_pitch_of,
)
from omnibench.errors import OmnibenchError
from omnibench.generators.base import Controls
from omnibench.heads.face_align import GRID_RADIUS, face_grid, frontalise


@dataclass
class TrainConfig:
    steps: int = 6000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    dropout: float = 0.3
    crop: float = 1.0  # central fraction of the image the network sees (applied when reading the data)
    res: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 96)
    hidden: int = 256
    negatives: float = 0.1  # fraction of each batch that is non-face images
    shift: int = 3  # augmentation: random translation of up to this many pixels (at ``res``)
    pair_weight: float = 0.0  # > 0: batches of wide-pairs (2k, 2k+1) and a loss on prediction differences
    seed: int = 0
    threads: int = 1  # on shared CPUs one thread is several times faster than two
    # the face-aligned stage (shape, expression, jaw read on a frontalised face crop); 0 steps = none
    aligned_steps: int = 0
    aligned_size: int = 32  # crop side (px)
    aligned_widths: tuple[int, ...] = (32, 48, 64, 96)
    aligned_margin: float = 0.1  # the crop covers the face's bounding square widened by this fraction
    aligned_lr: float = 2e-3
    camera_noise_deg: float = 2.0  # training cameras are jittered so the stage tolerates the camera estimate's error
    finish_fraction: float = 0.25  # with finish data: the last fraction of the aligned stage draws only from it


@dataclass
class LabelledImages:
    images: torch.Tensor  # (N, 3, R, R) uint8
    controls: Controls
    head: dict[str, Any]  # {"name", "sha256", "spec"?}
    source: dict[str, Any]
    framing: Framing = FRAMING_V1  # where the cameras of the rendered images sit (the dataset manifest's)


def read_dataset(path: str | Path, res: int | None = None, limit: int | None = None, crop: float = 1.0) -> LabelledImages:
    """Load an EG3D-style dataset folder (central ``crop`` of each image, resized to ``res`` if given)."""
    from PIL import Image

    root = Path(path).expanduser()
    meta_path = root / "dataset.json" if root.is_dir() else root
    if not meta_path.is_file():
        raise OmnibenchError(f"'{root}' is not an EG3D-style dataset: dataset.json not found")
    meta = json.loads(meta_path.read_text())
    root = meta_path.parent
    cams = {rel: c for rel, c in meta.get("labels", [])}
    flame = {rel: f for rel, f in (meta.get("flame") or [])}
    if not flame:
        raise OmnibenchError(f"dataset '{root}' has no 'flame' labels: the regressor needs FLAME controls per image")
    rels = [rel for rel, _ in meta["labels"] if rel in flame][:limit]
    imgs, cam, shape, expr, pose = [], [], [], [], []
    for rel in rels:
        im = Image.open(root / rel).convert("RGB")
        if res is not None and (im.size != (res, res) or crop < 1.0):
            t = torch.from_numpy(np.array(im)).permute(2, 0, 1)[None].float() / 255
            t = nn.functional.interpolate(center_crop(t, crop), size=(res, res), mode="bilinear", antialias=True,
                                          align_corners=False)
            imgs.append((t[0].clamp(0, 1) * 255).round().to(torch.uint8))
        else:
            imgs.append(torch.from_numpy(np.array(im)).permute(2, 0, 1))
        cam.append(cams[rel])
        f = flame[rel]
        shape.append(f["shape"])
        expr.append(f["expression"])
        pose.append(f["pose"])
    if not rels:
        raise OmnibenchError(f"dataset '{root}' has no images with both camera and FLAME labels")
    controls = Controls(torch.tensor(cam, dtype=torch.float32), torch.tensor(shape, dtype=torch.float32),
                        torch.tensor(expr, dtype=torch.float32), torch.tensor(pose, dtype=torch.float32))
    manifest = root / "manifest.json"
    man = json.loads(manifest.read_text()) if manifest.is_file() else {}
    framing = get_framing(recorded_framing(man))
    return LabelledImages(torch.stack(imgs), controls, dict(meta.get("head_model") or {}),
                          {"path": str(root), "n": len(rels), "content_hash": man.get("content_hash")}, framing)


def concat_datasets(parts: list[LabelledImages]) -> LabelledImages:
    """Several labelled datasets as one (same head model and image size required; e.g. ``wide`` + FFHQ-like)."""
    shas = {p.head.get("sha256") for p in parts}
    if len(shas) > 1:
        raise OmnibenchError(f"--data folders were labelled with different head models (sha256 {sorted(map(str, shas))})")
    sizes = {tuple(p.images.shape[1:]) for p in parts}
    if len(sizes) > 1:
        raise OmnibenchError(f"--data folders hold images of different sizes {sorted(sizes)}: pass --res")
    framings = {p.framing.name for p in parts}
    if len(framings) > 1:
        raise OmnibenchError(f"--data folders were rendered with different camera framings {sorted(framings)}")
    return LabelledImages(torch.cat([p.images for p in parts]), Controls.cat([p.controls for p in parts]), parts[0].head,
                          {"parts": [p.source for p in parts], "n": sum(p.images.shape[0] for p in parts)},
                          parts[0].framing)


def read_datasets(paths: str, res: int | None = None, crop: float = 1.0) -> LabelledImages:
    """Comma-separated dataset folders read as one (:func:`read_dataset` each, :func:`concat_datasets`)."""
    parts = [read_dataset(d, res=res, crop=crop) for d in paths.split(",") if d]
    if not parts:
        raise OmnibenchError(f"no dataset folder in '{paths}'")
    return parts[0] if len(parts) == 1 else concat_datasets(parts)


def render_dataset(head: str, n: int, res: int, seed: int, workers: int = 1, progress: bool = False,
                   prior: str = "ffhq", framing: str = "v1") -> Path:
    """Render ``n`` oracle samples of ``head`` (``synthesize_dataset``, control ``prior``, cameras on
    ``framing``) into the cache (reused if present)."""
    from metrics.estimators.regressor import cache_weights_dir
    from omnibench.data.synth import synthesize_dataset

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in head)[-60:]
    tag = ("" if prior == "ffhq" else f"-{prior}") + ("" if framing == "v1" else f"-{framing}")
    out = cache_weights_dir() / "data" / f"{safe}-n{n}-r{res}-s{seed}{tag}"
    if (out / "manifest.json").is_file():
        return out
    synthesize_dataset(out, n=n, resolution=res, head=head, seed=seed, workers=workers, force=True, progress=progress,
                       prior=prior, framing=framing,
                       command=["omnibench.estimators.training.render_dataset", head, str(n), str(res), str(seed),
                                prior, *([] if framing == "v1" else [framing])])
    return out


def targets_from_controls(c: Controls, n_shape: int, n_expression: int,
                          look_at: tuple[float, float, float] = FRAMING_V1.look_at) -> torch.Tensor:
    """``(N, n_out)`` regression targets in :func:`output_layout` order (yaw/pitch about the pivot ``look_at``)."""

    def fit(t: torch.Tensor, k: int) -> torch.Tensor:
        return t[:, :k] if t.shape[1] >= k else nn.functional.pad(t, (0, k - t.shape[1]))

    yp = yaw_pitch_of(c.camera.float(), look_at)
    return torch.cat([fit(c.shape.float(), n_shape), fit(c.expression.float(), n_expression), c.pose[:, 3:6].float(),
                      c.pose[:, 6:9].float(), yp[:, :1], yp[:, 1:2]], 1)


def make_negatives(n: int, res: int, g: torch.Generator, positives: torch.Tensor | None = None) -> torch.Tensor:
    """Non-face uint8 images ``(n, 3, res, res)``: block noise, smoothed noise, gradients, shuffled patches."""
    out = []
    for _ in range(n):
        kind = int(torch.randint(0, 4, (1,), generator=g))
        if kind == 0:  # iid uniform noise at a random block size
            block = [1, 2, 4, 8][int(torch.randint(0, 4, (1,), generator=g))]
            x = torch.rand(1, 3, res // block, res // block, generator=g)
            x = nn.functional.interpolate(x, size=(res, res), mode="nearest")[0]
        elif kind == 1:  # smooth noise
            x = torch.rand(1, 3, 8, 8, generator=g)
            x = nn.functional.interpolate(x, size=(res, res), mode="bicubic", align_corners=False)[0].clamp(0, 1)
        elif kind == 2:  # colour gradient
            a, b = torch.rand(3, 1, 1, generator=g), torch.rand(3, 1, 1, generator=g)
            ramp = torch.linspace(0, 1, res)[None, :, None] if bool(torch.rand(1, generator=g) < 0.5) else torch.linspace(0, 1, res)[None, None, :]
            x = a + (b - a) * ramp.expand(3, res, res)
        elif positives is not None:  # patch-shuffled render: face colours, no face layout
            src = positives[int(torch.randint(0, positives.shape[0], (1,), generator=g))].float() / 255
            p = res // 8
            patches = src.unfold(1, p, p).unfold(2, p, p).reshape(3, 64, p, p)
            patches = patches[:, torch.randperm(64, generator=g)].reshape(3, 8, 8, p, p).permute(0, 1, 3, 2, 4)
            x = patches.reshape(3, res, res)
        else:
            x = torch.rand(3, res, res, generator=g)
        out.append((x.clamp(0, 1) * 255).round().to(torch.uint8))
    return torch.stack(out)


def _augment(x: torch.Tensor, g: torch.Generator, shift: int = 3) -> torch.Tensor:
    """Jitter on preprocessed images: random shifts of up to ``shift`` px (edge padding) so the network
    cannot memorise pixel-exact renders, per-channel gain/bias and noise."""
    b, _, h, w = x.shape
    if shift > 0:
        padded = nn.functional.pad(x, (shift, shift, shift, shift), mode="replicate")
        off = torch.randint(0, 2 * shift + 1, (b, 2), generator=g)
        x = torch.stack([padded[i, :, off[i, 0] : off[i, 0] + h, off[i, 1] : off[i, 1] + w] for i in range(b)])
    gain = 1 + 0.15 * (torch.rand(b, 3, 1, 1, generator=g) * 2 - 1)
    bias = 0.1 * (torch.rand(b, 3, 1, 1, generator=g) * 2 - 1)
    noise = torch.randn(x.shape, generator=g) * (0.08 * torch.rand(b, 1, 1, 1, generator=g))
    return x * gain + bias + noise


def _optimise(opt: torch.optim.Optimizer, sched: Any, loss: torch.Tensor, running: float | None) -> float:
    """One optimiser and scheduler step on ``loss``; returns the updated running loss (EMA 0.98)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    lv = float(loss.detach())
    return lv if running is None else 0.98 * running + 0.02 * lv


def train_regressor(data: LabelledImages, n_shape: int, n_expression: int, cfg: TrainConfig,
                    log: Callable[[str], None] = print) -> tuple[RegressorNet, dict[str, Any], torch.Tensor, torch.Tensor, list]:
    """Train from scratch; returns (net in eval mode, config dict, target mean, target std, loss history)."""
    torch.manual_seed(cfg.seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        g = torch.Generator().manual_seed(cfg.seed)
        y = targets_from_controls(data.controls, n_shape, n_expression, data.framing.look_at)
        mean, std = y.mean(0), y.std(0).clamp_min(1e-3)
        yn = (y - mean) / std
        n_out = y.shape[1]
        # group-balanced loss: shape, expression, neck, jaw, yaw, pitch weigh equally whatever their width
        groups = output_layout(n_shape, n_expression)
        w = torch.zeros(n_out)
        for sl in groups.values():
            w[sl] = 1.0 / ((sl.stop - sl.start) * len(groups))
        net = RegressorNet(n_out, cfg.res, tuple(cfg.widths), cfg.hidden, cfg.dropout)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
        x_all = data.images if data.images.shape[-1] == cfg.res else None
        n_neg = max(1, round(cfg.batch_size * cfg.negatives)) if cfg.negatives > 0 else 0
        n_pos = cfg.batch_size - n_neg
        if cfg.pair_weight > 0:  # whole pairs only
            check_pairs(data.controls)
            n_pos -= n_pos % 2
            n_neg = cfg.batch_size - n_pos
        history, t0, running = [], time.time(), None
        net.train()
        for step in range(cfg.steps):
            if cfg.pair_weight > 0:  # n_pos // 2 pairs, members adjacent: (2k, 2k + 1)
                k = torch.randint(0, data.images.shape[0] // 2, (n_pos // 2,), generator=g)
                idx = torch.stack([2 * k, 2 * k + 1], 1).reshape(-1)
            else:
                idx = torch.randint(0, data.images.shape[0], (n_pos,), generator=g)
            imgs = (x_all if x_all is not None else data.images)[idx]
            if n_neg:
                imgs = torch.cat([imgs, make_negatives(n_neg, cfg.res, g, data.images)])
            x = _augment(preprocess(imgs, cfg.res), g, cfg.shift)
            out = net(x)
            reg = (nn.functional.smooth_l1_loss(out[:n_pos, :-1], yn[idx], beta=0.5, reduction="none").mean(0) * w).sum()
            if cfg.pair_weight > 0:
                # what changes between the members of a pair (expression and jaw only) must change the
                # prediction by exactly that much; every other output must not move
                p_out, p_y = out[: idx.numel(), :-1], yn[idx]
                d_out, d_y = p_out[0::2] - p_out[1::2], p_y[0::2] - p_y[1::2]
                reg = reg + cfg.pair_weight * (nn.functional.smooth_l1_loss(d_out, d_y, beta=0.5, reduction="none").mean(0) * w).sum()
            face = torch.cat([torch.ones(n_pos), torch.zeros(n_neg)])
            cls = nn.functional.binary_cross_entropy_with_logits(out[:, -1], face)
            loss = reg + 0.1 * cls
            running = _optimise(opt, sched, loss, running)
            if step % 100 == 0 or step == cfg.steps - 1:
                history.append({"step": step, "loss": running, "reg": float(reg.detach()), "cls": float(cls.detach())})
                log(f"step {step:5d}/{cfg.steps}  loss {running:.4f}  reg {float(reg.detach()):.4f}  cls {float(cls.detach()):.4f}  "
                    f"{time.time() - t0:.0f}s")
        net.eval()
    finally:
        torch.set_num_threads(prev_threads)
    config = {"n_out": n_out, "n_shape": n_shape, "n_expression": n_expression, "res": cfg.res,
              "widths": list(cfg.widths), "hidden": cfg.hidden, "dropout": cfg.dropout,
              "crop": cfg.crop, "radius": data.framing.radius, "focal": data.framing.focal,
              **({} if data.framing == FRAMING_V1 else {"look_at": list(data.framing.look_at),
                                                         "framing": data.framing.name}),
              "train": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}}
    return net, config, mean, std, history


def jitter_cameras(camera: torch.Tensor, deg: float, g: torch.Generator,
                   look_at: tuple[float, float, float] = FRAMING_V1.look_at) -> torch.Tensor:
    """Orbit cameras ``(B, 25)`` about ``look_at`` moved by ``N(0, deg)`` in yaw and in pitch (same radius and
    intrinsics)."""
    if deg <= 0:
        return camera
    c2w, _ = split_camera(camera.float())
    radius = (c2w[:, :3, 3] - torch.tensor(look_at)).norm(dim=-1)
    yp = yaw_pitch_of(camera.float(), look_at) + torch.randn(camera.shape[0], 2, generator=g) * math.radians(deg)
    out = orbit_camera(yp[:, 0], yp[:, 1], radius, look_at=look_at)
    out[:, 16:] = camera[:, 16:].float()
    return out


def train_aligned(net: RegressorNet, config: dict[str, Any], mean: torch.Tensor, std: torch.Tensor,
                  data: LabelledImages, head: Any, cfg: TrainConfig, finish: LabelledImages | None = None,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train the face-aligned stage of ``net`` (sets ``net.aligned`` and ``config["aligned"]``) on crops
    aligned by the *labelled* cameras jittered by ``cfg.camera_noise_deg``; MSE on the standardised shape,
    expression and jaw targets. With ``finish``, the last ``cfg.finish_fraction`` of the steps draws only
    from it (calibrates the estimates to that control distribution). Returns the loss history."""
    torch.manual_seed(cfg.seed + 1)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        g = torch.Generator().manual_seed(cfg.seed + 1)
        n_shape, n_expr = config["n_shape"], config["n_expression"]
        cols = aligned_columns(n_shape, n_expr)
        grid = face_grid(head, cfg.aligned_size, cfg.aligned_margin)
        sources = [data] if finish is None else [data, finish]
        targets = [((targets_from_controls(d.controls, n_shape, n_expr, d.framing.look_at) - mean) / std)[:, cols]
                   for d in sources]
        aligned = AlignedNet(cols.numel(), cfg.aligned_size, tuple(cfg.aligned_widths))
        opt = torch.optim.AdamW(aligned.parameters(), lr=cfg.aligned_lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.aligned_lr, total_steps=cfg.aligned_steps,
                                                    pct_start=0.05)
        switch = cfg.aligned_steps if finish is None else round((1 - cfg.finish_fraction) * cfg.aligned_steps)
        history, t0, running = [], time.time(), None
        aligned.train()
        for step in range(cfg.aligned_steps):
            k = 0 if step < switch else 1
            src, y = sources[k], targets[k]
            idx = torch.randint(0, src.images.shape[0], (cfg.batch_size,), generator=g)
            imgs = preprocess(src.images[idx], config["res"]) * 0.25 + 0.5
            x = frontalise(imgs, jitter_cameras(src.controls.camera[idx], cfg.camera_noise_deg, g, src.framing.look_at),
                           grid)
            b = x.shape[0]
            x = x * (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=g)) + 0.1 * torch.randn(b, 3, 1, 1, generator=g)
            loss = nn.functional.mse_loss(aligned(x), y[idx])
            running = _optimise(opt, sched, loss, running)
            if step % 100 == 0 or step == cfg.aligned_steps - 1:
                history.append({"step": step, "loss": running, "data": "finish" if k else "train"})
                log(f"aligned step {step:5d}/{cfg.aligned_steps}  loss {running:.4f}  {time.time() - t0:.0f}s")
        aligned.eval()
    finally:
        torch.set_num_threads(prev_threads)
    net.aligned = aligned
    config["aligned"] = {"n_out": cols.numel(), "size": cfg.aligned_size, "widths": list(cfg.aligned_widths),
                         "hidden": aligned.hidden, "dropout": aligned.dropout, "margin": cfg.aligned_margin,
                         "radius": GRID_RADIUS,
                         "camera_noise_deg": cfg.camera_noise_deg, "steps": cfg.aligned_steps,
                         "finish_fraction": cfg.finish_fraction if finish is not None else 0.0}
    return history


def check_pairs(c: Controls) -> None:
    """Refuse pair training on data that is not in ``wide-pairs`` layout (even count; members ``2k`` and
    ``2k + 1`` with equal camera and shape)."""
    n = c.camera.shape[0]
    ok = n >= 2 and n % 2 == 0
    if ok:
        ok = bool(torch.equal(c.camera[0::2], c.camera[1::2]) and torch.equal(c.shape[0::2], c.shape[1::2]))
    if not ok:
        raise OmnibenchError("--pair-weight needs paired training data (render it with --prior wide-pairs): samples "
                             "2k and 2k+1 must share camera and shape")


@torch.no_grad()
def heldout_errors(estimate_fn: Callable[[torch.Tensor], Any], data: LabelledImages, batch_size: int = 64,
                   n_expression_cap: int = 50, n_shape_cap: int = 100) -> dict[str, float]:
    """Errors of an estimator on labelled images: RMSEs in coefficient units (first 16 / all expression
    columns, shape), jaw opening (rad), neck (rad), camera rotation (deg), detection rate, and the same
    RMSEs for the trivial 'predict zero' estimator as a reference."""
    parts = [estimate_fn(data.images[i : i + batch_size]) for i in range(0, data.images.shape[0], batch_size)]
    from metrics.estimators.base import FlameEstimate

    est = FlameEstimate.cat(parts)
    c = data.controls
    ne = min(c.expression.shape[1], est.expression.shape[1], n_expression_cap)
    ns = min(c.shape.shape[1], est.shape.shape[1], n_shape_cap)
    ns10 = min(ns, 10)
    rmse = lambda a, b: float(((a.double() - b.double()) ** 2).mean().sqrt())  # noqa: E731
    zero = lambda a: float((a.double() ** 2).mean().sqrt())  # noqa: E731
    return {
        "n": int(c.expression.shape[0]),
        "detected": float(est.detected.float().mean()),
        "expression_rmse": rmse(est.expression[:, :ne], c.expression[:, :ne]),
        "expression_rmse_zero_baseline": zero(c.expression[:, :ne]),
        "expression16_rmse": rmse(est.expression[:, :16], c.expression[:, :16]),
        "expression16_rmse_zero_baseline": zero(c.expression[:, :16]),
        "shape_rmse": rmse(est.shape[:, :ns], c.shape[:, :ns]),
        "shape_rmse_zero_baseline": zero(c.shape[:, :ns]),
        "shape10_rmse": rmse(est.shape[:, :ns10], c.shape[:, :ns10]),
        "shape10_rmse_zero_baseline": zero(c.shape[:, :ns10]),
        "jaw_rmse_rad": rmse(est.pose[:, 6:9], c.pose[:, 6:9]),
        "neck_rmse_rad": rmse(est.pose[:, 3:6], c.pose[:, 3:6]),
        "neck_rmse_zero_baseline": zero(c.pose[:, 3:6]),
        "camera_deg": float(per_sample_rotation_error_deg(c.camera, c.pose, est.camera, est.pose).mean()),
        "columns": {"expression": ne, "shape": ns},
    }


def regressor_estimate_fn(net: RegressorNet, cfg: dict[str, Any], mean: torch.Tensor, std: torch.Tensor,
                          head: Any = None):
    """Images -> :class:`FlameEstimate` with both stages (``head`` builds the aligned stage's face grid)."""
    if net.aligned is not None and head is None:
        raise OmnibenchError("two-stage regressor weights need the head model to build the face grid")
    grid = aligned_grid(head, cfg) if head is not None else None

    def fn(images: torch.Tensor):
        return run_regressor(net, cfg, mean, std, images, grid)

    return fn
