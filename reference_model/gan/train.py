"""Stage II training: ``omnibench train gan --config tiny|ffhq512 --data DIR --sdf W.pt [--ablation NAME]``.

1. Load the frozen W (refused if trained on another head model) and the dataset.
2. Train the control encoder E on the dataset's images and FLAME labels, then freeze it (if ``use_enc``).
3. GAN loop: fakes are conditioned on random dataset labels (camera and FLAME, as EG3D draws poses);
   D: non-saturating logistic + R1; G: non-saturating + ``w_prior * L_prior`` + ``w_enc * L_enc``;
   EMA of G. Snapshots (sample grid PNG + ``log.jsonl``) every ``snapshot_every`` steps; resumable.
   The AniFaceGAN-style baseline (``method="anifacegan"``) trains under the same loop with AniFaceGAN's imitation
   losses (:mod:`reference_model.gan.imitation`) in place of ``L_prior`` and ``L_enc``.
Data-parallel under torchrun (:func:`omnibench.distributed.init_from_env`: gloo on CPU, nccl on CUDA with each
rank on ``cuda:LOCAL_RANK``): each rank takes its slice of the global batch (``--batch`` per rank), gradients
and ``w_avg`` are averaged over ranks, and every random draw is keyed by (seed, step, global sample index), so
2 ranks x B train like 1 process x 2B (tests/reference_model/gan/test_gan_distributed.py).
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from omnibench import __version__
from omnibench.distributed import average_gradients, init_from_env
from omnibench.errors import CheckpointError, OmnibenchError
from reference_model.gan.checkpoint import (
    build_generator,
    checkpoint_method,
    read_gan_checkpoint,
    save_gan_checkpoint,
)
from reference_model.gan.config import GANConfig
from reference_model.gan.data import TrainingSet, seeded
from reference_model.gan.decoder import control_conditioning
from reference_model.gan.deformation import deformation_conditioning
from reference_model.gan.discriminator import DualDiscriminator
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.encoder_training import EncoderRecipe, train_encoder
from reference_model.gan.generator import fit_columns
from reference_model.gan.imitation import imitation_loss, imitation_targets, neutral_loss
from reference_model.gan.losses import (
    d_adversarial,
    enc_loss,
    g_adversarial,
    prior_loss,
    prior_weight,
    r1_penalty,
)


def encoder_recipe(cfg: GANConfig) -> EncoderRecipe:
    """The in-run recipe: E trained on the GAN's own training set for ``cfg.encoder_steps``."""
    return EncoderRecipe(steps=cfg.encoder_steps, batch=cfg.encoder_batch, lr=cfg.encoder_lr, seed=cfg.seed)


class Trainer:
    def __init__(self, cfg: GANConfig, data: TrainingSet, sdf, head, sdf_meta: dict, out_dir: Path,
                 device: str = "cpu", quiet: bool = False,
                 encoder: tuple[ControlEncoder, dict] | None = None) -> None:
        """``encoder``: a pre-trained E and its provenance (:func:`~reference_model.gan.encoder_training.load_encoder`)
        to freeze instead of training one on ``data``."""
        self.cfg, self.data, self.head, self.sdf_meta, self.out_dir, self.quiet = cfg, data, head, sdf_meta, out_dir, quiet
        if encoder is not None:
            E, meta = encoder
            if E.n_expression != cfg.n_expression or E.aligned != cfg.enc_aligned:
                raise OmnibenchError(
                    f"the given encoder reads {E.n_expression} expression columns ({'aligned' if E.aligned else 'whole image'}); "
                    f"config '{cfg.name}' needs {cfg.n_expression} ({'aligned' if cfg.enc_aligned else 'whole image'})")
        if cfg.batch % min(cfg.mbstd_group, cfg.batch):
            raise OmnibenchError(f"--batch {cfg.batch} is not a multiple of D's minibatch-std group {cfg.mbstd_group}")
        info = init_from_env(device)  # the suite's one process-group set-up; "cuda" -> cuda:LOCAL_RANK under torchrun
        self.world, self.rank = info.world_size, info.rank
        self.device = torch.device(info.device_for(device))
        if isinstance(head, torch.nn.Module):  # L_enc's FLAME forward runs where G's images are
            self.head = head.to(self.device)
        torch.manual_seed(cfg.seed)
        self.G = build_generator(cfg, sdf).to(self.device)
        if cfg.method == "anifacegan":  # D's conditioning in units of the training labels' spread (a buffer: resumed)
            self.G.deformation.set_conditioning_scale(deformation_conditioning(
                fit_columns(data.shape, cfg.n_shape), fit_columns(data.expression, cfg.n_expression), data.pose))
        self.D = DualDiscriminator(cfg.image_res, cfg.d_channels, cfg.c_dim, cfg.mbstd_group,
                                   cfg.n_expression + 6 if cfg.d_controls else 0).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.E: ControlEncoder | None = encoder[0].to(self.device) if encoder is not None else None
        self.encoder_meta: dict = encoder[1] if encoder is not None else {}
        self.opt_g = torch.optim.Adam(self.G.trainable_parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.step = 0
        self.ckpt_path = out_dir / "checkpoint.pt"

    # ---- checkpoints -------------------------------------------------------------------------
    def state(self, training: bool = True) -> dict:
        """The checkpoint's payload (:func:`~reference_model.gan.checkpoint.save_gan_checkpoint` adds the header)."""
        ckpt = {
            "code_version": __version__,
            "config": self.cfg.to_dict(),
            "head_model": {"name": str(getattr(self.head, "name", "")), "sha256": str(getattr(self.head, "sha256", "")),
                           "spec": str(self.sdf_meta["config"].get("head", ""))},
            "sdf": self.sdf_meta,
            "dataset": {"path": self.data.path, "content_hash": self.data.content_hash,
                        **({} if self.data.framing == "v1" else {"framing": self.data.framing})},
            "step": self.step,
            "G_ema": self.G_ema.state_dict(),
            "E": self.E.state_dict() if self.E is not None else None,
            "encoder": self.encoder_meta,
        }
        if training:
            ckpt["training"] = {"G": self.G.state_dict(), "D": self.D.state_dict(),
                                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}
        return ckpt

    def save(self) -> None:
        if self.rank == 0:
            save_gan_checkpoint(self.ckpt_path, self.state())

    def resume(self) -> bool:
        if not self.ckpt_path.exists():
            return False
        ckpt = read_gan_checkpoint(self.ckpt_path, self.cfg.method)
        if ckpt["sdf"]["sha256"] != self.sdf_meta["sha256"]:
            raise CheckpointError(
                f"'{self.ckpt_path}' was trained with W sha256 {ckpt['sdf']['sha256'][:12]}, not the given "
                f"{self.sdf_meta['sha256'][:12]}: pass the same --sdf or start a new --out"
            )
        if ckpt["head_model"]["sha256"] != str(getattr(self.head, "sha256", "")):
            raise CheckpointError(f"'{self.ckpt_path}' was trained for another head model ('{ckpt['head_model']['name']}')")
        t = ckpt["training"]
        self.G.load_state_dict(t["G"])
        self.D.load_state_dict(t["D"])
        self.opt_g.load_state_dict(t["opt_g"])
        self.opt_d.load_state_dict(t["opt_d"])
        self.G_ema.load_state_dict(ckpt["G_ema"])
        if ckpt.get("E") is not None:
            self.E = ControlEncoder.from_state_dict(self.cfg.n_expression, ckpt["E"]).to(self.device)
            self.E.eval().requires_grad_(False)
            self.encoder_meta = ckpt.get("encoder") or {}
        self.step = int(ckpt["step"])
        return True

    def _sync_grads(self, params) -> None:
        """Average gradients over ranks (data parallel); a no-op in one process."""
        average_gradients(params, self.world)

    # ---- one iteration ------------------------------------------------------------------------
    def labels(self, step: int, salt: int) -> dict[str, torch.Tensor]:
        n = self.cfg.batch
        idx = torch.randint(0, len(self.data), (n * self.world,), generator=seeded(self.cfg.seed, salt, step))
        return {k: v.to(self.device) for k, v in self.data.batch(idx[self.rank * n : (self.rank + 1) * n]).items()}

    def pose_conditioning(self, step: int, camera: torch.Tensor) -> torch.Tensor:
        """The mapping network's conditioning cameras ``(B, 25)`` for this rank's fakes: the rendering camera,
        or with probability ``gpc_swap_prob`` the camera of another random dataset label (EG3D's generator pose
        conditioning); coins and labels keyed by (seed, step, global sample index) like every other draw."""
        p = self.cfg.gpc_swap_prob
        if p <= 0:
            return camera
        n, lo = self.cfg.batch, self.rank * self.cfg.batch
        coin = torch.rand(n * self.world, generator=seeded(self.cfg.seed, 7, step))[lo : lo + n]
        idx = torch.randint(0, len(self.data), (n * self.world,), generator=seeded(self.cfg.seed, 8, step))[lo : lo + n]
        return torch.where((coin < p)[:, None].to(camera.device), self.data.camera[idx].to(camera), camera)

    def imitation(self, step: int, gen: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """AniFaceGAN's ``(L_imitate, L_neutral)`` (metres) for this rank's fakes' controls, with the columns G reads;
        the surface samples of global sample ``i`` are keyed by (seed, step, i)."""
        cfg = self.cfg
        shape, expr = fit_columns(gen["shape"], cfg.n_shape), fit_columns(gen["expression"], cfg.n_expression)
        lo = self.rank * cfg.batch
        t = imitation_targets(self.head, shape, expr, gen["pose"], cfg.imitate_points, cfg.imitate_offset_std,
                              [seeded(cfg.seed, 9, step, i) for i in range(lo, lo + cfg.batch)])
        offsets = self.G.deform(t.points, shape, expr, gen["pose"])
        neutral = self.G.deform(t.points, shape, t.neutral_expression, t.neutral_pose)
        return imitation_loss(offsets, t), neutral_loss(neutral)

    def d_controls(self, labels: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """D's control conditioning for a batch of labels (``cfg.d_controls``), with the columns G reads; else None."""
        if not self.cfg.d_controls:
            return None
        return control_conditioning(fit_columns(labels["expression"], self.cfg.n_expression), labels["pose"])

    def train_step(self) -> dict[str, float]:
        cfg, step = self.cfg, self.step
        real = self.labels(step, 1)
        gen = self.labels(step, 2)
        z = torch.randn(cfg.batch * self.world, cfg.z_dim, generator=seeded(cfg.seed, 3, step))[
            self.rank * cfg.batch : (self.rank + 1) * cfg.batch
        ].to(self.device)
        # ray jitter keyed by (seed, step, global sample index): the same whatever the process count
        jitter = [seeded(cfg.seed, 4, step, i) for i in range(self.rank * cfg.batch, (self.rank + 1) * cfg.batch)]
        out = self.G(z, gen["camera"], gen["shape"], gen["expression"], gen["pose"],
                     camera_cond=self.pose_conditioning(step, gen["camera"]), generator=jitter, update_w_avg=True)
        # discriminator
        real_img = real["image"].requires_grad_(True)
        real_raw = torch.nn.functional.interpolate(real_img, size=(cfg.neural_res,) * 2, mode="bilinear", align_corners=False)
        real_ctl, gen_ctl = self.d_controls(real), self.d_controls(gen)
        d_real = self.D(real_img, real_raw, real["camera"], real_ctl)
        d_fake = self.D(out.image.detach(), out.image_raw.detach(), gen["camera"], gen_ctl)
        loss_d = d_adversarial(d_real, d_fake) + r1_penalty(d_real, [real_img], cfg.r1_gamma)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self._sync_grads(self.D.parameters())
        self.opt_d.step()
        # generator
        logs = {"loss_d": float(loss_d.detach())}
        loss_g = g_adversarial(self.D(out.image, out.image_raw, gen["camera"], gen_ctl))
        logs["loss_g_adv"] = float(loss_g.detach())
        if cfg.use_prior and out.s is not None:
            lp = prior_loss(out.sigma, out.s, cfg.kappa, cfg.gamma_prior)
            w_prior = prior_weight(cfg.w_prior, cfg.w_prior_final, cfg.prior_decay_start, cfg.prior_decay_end, step)
            loss_g = loss_g + w_prior * lp
            logs["loss_prior"] = float(lp.detach())
            if cfg.w_prior_final is not None:
                logs["w_prior"] = w_prior
        if cfg.use_enc and self.E is not None:
            le = enc_loss(self.E, self.head, out.image, gen["shape"], gen["expression"], gen["pose"],
                          cfg.w_enc_vertex, cfg.w_enc_landmark, camera=gen["camera"])
            loss_g = loss_g + cfg.w_enc * le["total"]
            logs["loss_enc"] = float(le["total"].detach())
        if cfg.method == "anifacegan":
            li, ln = self.imitation(step, gen)
            loss_g = loss_g + cfg.w_imitate * li + cfg.w_neutral * ln
            logs["loss_imitate"], logs["loss_neutral"] = float(li.detach()), float(ln.detach())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self._sync_grads(self.G.trainable_parameters())
        self.opt_g.step()
        if self.world > 1:  # w_avg moved towards this rank's batch mean of w: average, i.e. towards the global mean
            torch.distributed.all_reduce(self.G.mapping.w_avg)
            self.G.mapping.w_avg.div_(self.world)
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.lerp_(p, 1 - cfg.ema_beta)
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)
        self.step += 1
        logs["loss_g"] = float(loss_g.detach())
        return logs

    def snapshot(self) -> None:
        if self.rank != 0:
            return
        from torchvision.utils import save_image

        g = self.labels(0, 5)
        z = torch.randn(self.cfg.batch, self.cfg.z_dim, generator=seeded(self.cfg.seed, 6)).to(self.device)
        with torch.no_grad():
            out = self.G_ema(z, g["camera"], g["shape"], g["expression"], g["pose"])
        grid = torch.cat([g["image"], out.image])
        save_image(grid, self.out_dir / f"samples_{self.step:06d}.png", nrow=self.cfg.batch)

    def run(self, steps: int | None = None) -> Path:
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        if cfg.use_enc and self.E is None:
            self.E = train_encoder(cfg.n_expression, cfg.enc_aligned, self.data, encoder_recipe(cfg), head=self.head,
                                   quiet=self.quiet, device=self.device)
            self.encoder_meta = {"trained_on": "training set", "recipe": asdict(encoder_recipe(cfg)),
                                 "data": [{"path": self.data.path, "content_hash": self.data.content_hash, "n": len(self.data)}]}
        if not resumed:
            self.save()
        total = cfg.steps if steps is None else steps
        t0 = time.time()
        while self.step < total:
            logs = self.train_step()
            if self.rank == 0 and (self.step % cfg.log_every == 0 or self.step == total):
                rec = {"step": self.step, "time_s": round(time.time() - t0, 1), **logs}
                with open(self.out_dir / "log.jsonl", "a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                if not self.quiet:
                    print("[gan] " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rec.items()),
                          file=sys.stderr)
            if self.step % cfg.snapshot_every == 0 or self.step == total:
                self.save()
                self.snapshot()
        return self.ckpt_path


def export_release(ckpt_path: Path, out: Path) -> Path:
    """Drop D and optimiser state: the file ``omnibench evaluate --ckpt`` needs (G_ema, E, metadata)."""
    ckpt = read_gan_checkpoint(ckpt_path, checkpoint_method(ckpt_path))
    ckpt.pop("training", None)
    save_gan_checkpoint(out, ckpt)
    return out
