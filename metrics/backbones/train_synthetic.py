"""Train the ``synthetic`` identity backbone on oracle renders of a head model (reproducible, CPU).

    python -m metrics.backbones.train_synthetic --out metrics/backbones/weights/synthetic_id_v1.pt

Data: ``--identities`` training identities (plus ``--val-identities`` held out), ``--views`` renders each.
Identity ``i`` = latent ``z_i`` (appearance, :func:`omnibench.data.control_prior.sample_latents`) plus one FLAME
shape; its views draw camera, expression and pose independently
(:func:`omnibench.data.control_prior.sample_controls`), so positives differ in camera *and* expression/jaw.
Renders come from the ``oracle`` generator at ``--resolution``.

Training: supervised-contrastive loss (temperature 0.1) on batches of ``P`` identities x ``views``, plus a
binary "is a rendered head" logit trained against non-heads (uniform noise as the ``noise`` generator
makes, blurred noise, background-only images, tile-scrambled renders), so images without a head count
as undetected. Augmentations: the background is replaced (random colour / vertical gradient / noise)
using the render's mask, so the background cannot carry identity; +-2 px shifts; +-8% brightness.
Everything is seeded (``--seed``); torch runs deterministic on CPU with ``--threads`` threads.

Output: a checkpoint ``{"state_dict" (float16), "width", "dim", "meta"}`` whose ``meta`` holds the command,
versions and held-out verification numbers; pin its sha256 in :data:`metrics.backbones.synthetic.WEIGHTS_SHA256`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from metrics.backbones.synthetic import CHECKPOINT_KIND, EmbedNet, preprocess
from omnibench.errors import OmnibenchError
from omnibench.generators import base as checkpoints


# ---------------------------------------------------------------- data
def render_identities(
    head: str, start: int, n_ids: int, n_views: int, seed: int, resolution: int, log=print, framing: str = "v1"
) -> dict[str, np.ndarray]:
    """uint8 premultiplied foreground ``(N, 3, R, R)``, uint8 mask ``(N, R, R)``, ids ``(N,)``, raw images."""
    from omnibench.data.control_prior import sample_controls, sample_latents
    from omnibench.generators import GENERATORS
    from omnibench.generators.base import Controls

    gen = GENERATORS.get("oracle")(head=head, resolution=resolution)
    fgs, masks, ids, raws = [], [], [], []
    t0 = time.time()
    for k, i in enumerate(range(start, start + n_ids)):
        z = sample_latents(1, seed, gen.z_dim, i).repeat(n_views, 1)
        c = sample_controls(n_views, seed + 1, gen.model, start_index=i * n_views, framing=framing)
        c = Controls(
            camera=c.camera, shape=c.shape[:1].repeat(n_views, 1), expression=c.expression, pose=c.pose
        )
        out = gen.synthesize(z, c)
        img = out.image.double().numpy()
        m = out.mask.double().numpy()
        fgs.append(premultiplied_foreground(img, m))
        masks.append(np.round(m * 255).astype(np.uint8))
        raws.append(np.round(img * 255).astype(np.uint8))
        ids.extend([i] * n_views)
        if (k + 1) % 100 == 0:
            log(f"  rendered {k + 1}/{n_ids} identities ({time.time() - t0:.0f}s)")
    return {
        "fg": np.concatenate(fgs),
        "mask": np.concatenate(masks),
        "ids": np.asarray(ids),
        "raw": np.concatenate(raws),
    }


def premultiplied_foreground(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``img = mask * fg + (1 - mask) * bg`` with a per-row background (estimated from uncovered pixels)
    -> uint8 ``mask * fg``."""
    out = np.empty(img.shape, dtype=np.uint8)
    for b in range(img.shape[0]):
        free = mask[b] <= 1e-6
        bg_rows = np.zeros((img.shape[2], 3))
        have = free.any(1)
        for r in np.flatnonzero(have):
            bg_rows[r] = img[b][:, r][:, free[r]].mean(1)
        if have.any():
            rows = np.flatnonzero(have)
            for r in np.flatnonzero(~have):
                bg_rows[r] = bg_rows[rows[np.argmin(np.abs(rows - r))]]
        fg = img[b] - (1 - mask[b])[None] * bg_rows.T[:, :, None]
        out[b] = np.round(np.clip(fg, 0, 1) * 255).astype(np.uint8)
    return out


def random_backgrounds(rng: np.random.Generator, n: int, res: int) -> np.ndarray:
    """float ``(n, 3, R, R)`` in [0, 1]: solid colours, vertical gradients and smooth noise."""
    kind = rng.integers(0, 3, n)
    base = rng.uniform(0.05, 0.95, (n, 3, 1, 1))
    bg = np.broadcast_to(base, (n, 3, res, res)).copy()
    ramp = np.linspace(-0.5, 0.5, res)[None, None, :, None]
    g = kind == 1
    bg[g] = np.clip(base[g] * (1 + rng.uniform(-0.6, 0.6, (g.sum(), 1, 1, 1)) * ramp), 0, 1)
    s = kind == 2
    if s.any():
        coarse = torch.from_numpy(rng.uniform(0, 1, (int(s.sum()), 3, 4, 4)))
        bg[s] = F.interpolate(coarse, size=(res, res), mode="bilinear", align_corners=False).numpy()
    return bg


def augment(fg: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """New backgrounds, +-2 px shift, +-8% brightness -> uint8 ``(B, 3, R, R)``."""
    b, _, r, _ = fg.shape
    m = mask.astype(np.float64)[:, None] / 255.0
    img = fg.astype(np.float64) / 255.0 + (1 - m) * random_backgrounds(rng, b, r)
    img = img * rng.uniform(0.92, 1.08, (b, 1, 1, 1))
    out = np.empty_like(img)
    for i in range(b):
        dy, dx = rng.integers(-2, 3, 2)
        out[i] = np.roll(img[i], (int(dy), int(dx)), axis=(1, 2))
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


def negatives(rng: np.random.Generator, n: int, res: int, fg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 non-head images: uniform noise, blurred noise, backgrounds only, tile-scrambled renders."""
    kind = rng.integers(0, 4, n)
    out = np.empty((n, 3, res, res))
    u = kind == 0
    out[u] = rng.uniform(0, 1, (int(u.sum()), 3, res, res))
    bl = kind == 1
    if bl.any():
        k = int(rng.integers(2, 9))
        coarse = torch.from_numpy(rng.uniform(0, 1, (int(bl.sum()), 3, res // k + 1, res // k + 1)))
        out[bl] = F.interpolate(coarse, size=(res, res), mode="bilinear", align_corners=False).numpy()
    bg = kind == 2
    out[bg] = random_backgrounds(rng, int(bg.sum()), res)
    sc = np.flatnonzero(kind == 3)
    if sc.size:
        src = (
            augment(fg[rng.integers(0, len(fg), sc.size)], mask[rng.integers(0, len(fg), sc.size)], rng)
            / 255.0
        )
        t = res // 8
        for j, i in enumerate(sc):
            tiles = src[j].reshape(3, 8, t, 8, t).transpose(1, 3, 0, 2, 4).reshape(64, 3, t, t)
            tiles = tiles[rng.permutation(64)]
            out[i] = tiles.reshape(8, 8, 3, t, t).transpose(2, 0, 3, 1, 4).reshape(3, res, res)
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------- model and loss
def supcon(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) over unit-norm ``emb (B, D)``."""
    sim = emb @ emb.T / temperature
    eye = torch.eye(len(emb), dtype=torch.bool)
    sim = sim.masked_fill(eye, -1e9)
    pos = (labels[:, None] == labels[None]) & ~eye
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -(logp * pos).sum(1).div(pos.sum(1).clamp(min=1)).mean()


@torch.no_grad()
def evaluate(net: EmbedNet, images: np.ndarray, ids: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """Held-out verification: mean same/different-identity cosine, rank-1 accuracy, detection rates."""
    net.eval()
    x = torch.from_numpy(images)
    emb = torch.cat([net(preprocess(x[i : i + 256])) for i in range(0, len(x), 256)]).double()
    det_pos = torch.cat([net.detect_logit(preprocess(x[i : i + 256])) for i in range(0, len(x), 256)]) > 0
    det_neg = net.detect_logit(preprocess(torch.from_numpy(neg))) > 0
    sim = emb @ emb.T
    same = torch.from_numpy(ids[:, None] == ids[None])
    eye = torch.eye(len(ids), dtype=torch.bool)
    sim_ne = sim.masked_fill(eye, -2)
    rank1 = float((same[torch.arange(len(ids)), sim_ne.argmax(1)]).double().mean())
    net.train()
    return {
        "same_cos": float(sim[same & ~eye].mean()),
        "diff_cos": float(sim[~same].mean()),
        "rank1": rank1,
        "detect_renders": float(det_pos.double().mean()),
        "detect_nonheads": float(det_neg.double().mean()),
    }


def train(args: argparse.Namespace, log=print) -> dict:
    """Render, train and evaluate; returns ``{"net", "eval", "seconds"}`` (global torch settings restored)."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _train(args, log)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _train(args: argparse.Namespace, log=print) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    log(
        f"rendering {args.identities}+{args.val_identities} identities x {args.views} views at {args.resolution}px"
    )
    tr = render_identities(args.head, 0, args.identities, args.views, args.seed, args.resolution, log, args.framing)
    va = render_identities(
        args.head, 10_000_000, args.val_identities, args.views, args.seed, args.resolution, log, args.framing
    )
    log(f"rendered in {time.time() - t0:.0f}s")
    val_neg = negatives(np.random.default_rng(args.seed + 7), 256, args.resolution, va["fg"], va["mask"])
    net = EmbedNet(width=args.width)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    n_ids = args.identities
    steps_per_epoch = max(1, n_ids // args.batch_ids)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch
    )
    by_id = np.arange(n_ids * args.views).reshape(n_ids, args.views)
    for epoch in range(args.epochs):
        perm = rng.permutation(n_ids)
        tot = 0.0
        for s in range(steps_per_epoch):
            sel = by_id[perm[s * args.batch_ids : (s + 1) * args.batch_ids]].reshape(-1)
            pos = augment(tr["fg"][sel], tr["mask"][sel], rng)
            neg = negatives(rng, len(sel) // 2, args.resolution, tr["fg"], tr["mask"])
            x = preprocess(torch.from_numpy(np.concatenate([pos, neg])))
            feats = net.pool(net.features(x)).flatten(1)
            emb = F.normalize(net.head(feats[: len(sel)]), dim=1)
            logit = net.det(feats)[:, 0]
            target = torch.cat([torch.ones(len(sel)), torch.zeros(len(neg))])
            bce = F.binary_cross_entropy_with_logits(logit, target)
            loss = supcon(emb, torch.from_numpy(tr["ids"][sel])) + args.det_weight * bce
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
        if (epoch + 1) % max(1, args.epochs // 10) == 0 or epoch == args.epochs - 1:
            ev = evaluate(net, va["raw"], va["ids"], val_neg)
            log(
                f"epoch {epoch + 1}/{args.epochs} loss {tot / steps_per_epoch:.4f} held-out {json.dumps({k: round(v, 4) for k, v in ev.items()})} ({time.time() - t0:.0f}s)"
            )
    net.eval()
    ev = evaluate(net, va["raw"], va["ids"], val_neg)
    net.eval()
    return {"net": net, "eval": ev, "seconds": time.time() - t0}


def save_checkpoint(net: EmbedNet, meta: dict, out: Path) -> str:
    """Atomic write of the float16 checkpoint; returns its sha256."""
    from omnibench.assets import sha256_file as file_sha256

    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    checkpoints.save_checkpoint(out, CHECKPOINT_KIND,
                                {"state_dict": state, "width": net.width, "dim": net.head.out_features, "meta": meta})
    return file_sha256(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m metrics.backbones.train_synthetic", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, required=True, help="checkpoint path (.pt)")
    p.add_argument("--head", default="synthetic", help="head model spec rendered by the oracle")
    p.add_argument("--identities", type=int, default=1200)
    p.add_argument("--val-identities", type=int, default=150)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-ids", type=int, default=32, help="identities per batch (x views images)")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--det-weight", type=float, default=1.0, help="weight of the head/non-head loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--framing", default="v1", choices=("v1", "ffhq"),
                   help="camera framing of the training renders (v1: protocols v1; ffhq: protocols v2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    a = p.parse_args(argv)
    if a.identities < a.batch_ids or a.views < 2 or a.val_identities < 2:
        raise OmnibenchError("need identities >= batch-ids, views >= 2 and val-identities >= 2")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = train(args)
    from omnibench.render import APPEARANCE_VERSION, RENDERER_VERSION

    meta = {
        "command": "python -m metrics.backbones.train_synthetic "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "renderer_version": RENDERER_VERSION,
        "appearance_version": APPEARANCE_VERSION,
        "torch": str(torch.__version__),
        "heldout": r["eval"],
        "train_seconds": round(r["seconds"], 1),
    }
    sha = save_checkpoint(r["net"], meta, args.out)
    print(json.dumps({"out": str(args.out), "sha256": sha, "heldout": r["eval"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
