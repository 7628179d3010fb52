"""``omnibench.generators`` entry point ``omniavatar``: scores OmniAvatar checkpoints with ``omnibench evaluate``.

``--ckpt tiny`` / ``--ckpt tiny-no-prior`` / ``--ckpt tiny-eg3d`` (plain EG3D) and ``--ckpt anifacegan`` resolve to the
checkpoints shipped in ``reference_model/checkpoints``.
The mapping network is conditioned on one fixed camera, the frontal orbit camera of the head frame
(:func:`conditioning_camera`), whatever camera renders the image: EG3D's convention for multi-view results, so one
latent is one person in every view (conditioning on the rendering camera lets identity drift with the view,
which identity-across-views and multi-view metrics would charge to the model). Depth is the neural
rendering's, upsampled (nearest) to the output resolution.
"""

from __future__ import annotations

from pathlib import Path

import torch

from omnibench.cameras import get_framing
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput

SHIPPED = Path(__file__).parent / "checkpoints"


def conditioning_camera(batch: int, framing: str = "v1") -> torch.Tensor:
    """``(batch, 25)`` frontal cameras (yaw = pitch = 0) of the training data's framing
    (:data:`omnibench.cameras.FRAMINGS`) that condition the mapping network at evaluation."""
    zeros = torch.zeros(batch)
    return get_framing(framing).orbit(zeros, zeros)


class OmniAvatarGenerator(Generator):
    name = "omniavatar"
    provides_depth = True
    checkpoint_kind = "omnibench.gan"  # lets `omnibench evaluate --ckpt FILE.pt` pick this adapter by the header
    method = "omniavatar"  # the GANConfig.method its checkpoints hold
    shipped_glob = "tiny*.pt"  # its named checkpoints in reference_model/checkpoints
    default_checkpoint: str | None = "tiny"

    def __init__(self, G, E, meta: dict, path: str, device: str = "cpu") -> None:
        self.G, self.E, self.meta, self.path, self.device = G, E, meta, path, device
        cfg = G.cfg
        self.z_dim, self.resolution = cfg.z_dim, cfg.image_res
        self.flame_layout = FlameLayout(n_shape=cfg.n_shape, n_expression=cfg.n_expression)
        # a spec load_head_model accepts ('synthetic', 'synthetic:tiny', a FLAME path): the head W was trained on
        self.head_model = meta["head_model"].get("spec") or meta["sdf"]["config"]["head"]
        self.framing = str((meta.get("dataset") or {}).get("framing", "v1"))  # of the training data

    @property
    def controls(self) -> frozenset[str]:  # type: ignore[override]
        """What reaches the image: the camera always; shape, expression, neck and jaw through W (or the AniFaceGAN
        baseline's deformation field and mapping); expression, neck and jaw through the dynamic decoder. Plain EG3D
        (``--ablation eg3d``) honours the camera only. Global pose and eyes never (W reads neck and jaw only)."""
        cfg = self.G.cfg
        honoured = {"camera"}
        if cfg.use_sdf or cfg.method == "anifacegan":
            honoured |= {"shape", "expression", "neck", "jaw"}
        if cfg.dynamic:
            honoured |= {"expression", "neck", "jaw"}
        return frozenset(honoured)

    @property
    def display_name(self) -> str:
        """``omniavatar (plain EG3D ablation)`` for a checkpoint without W, the dynamic decoder or L_prior (what a
        not-applicable reason names), else the registry name."""
        return f"{self.name} (plain EG3D ablation)" if self.controls == {"camera"} else self.name

    @classmethod
    def named_checkpoints(cls) -> dict[str, str]:
        """The shipped checkpoints of this generator, by file stem (``tiny`` and its ablations ``tiny-no-prior``, ``tiny-eg3d``)."""
        return {p.stem: str(p) for p in sorted(SHIPPED.glob(cls.shipped_glob))}

    @classmethod
    def resolve(cls, ckpt: str) -> Path:
        p, named = Path(ckpt), cls.named_checkpoints()
        return Path(named[ckpt]) if not p.exists() and ckpt in named else p

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> OmniAvatarGenerator:
        from reference_model.gan.checkpoint import load_generator

        if ckpt is None and cls.default_checkpoint is None:
            from omnibench.errors import CheckpointError

            raise CheckpointError(f"generator '{cls.name}' needs --ckpt (a checkpoint written by omnibench train gan)")
        path = cls.resolve(ckpt or str(cls.default_checkpoint))
        G, E, meta = load_generator(path, device=device, method=cls.method)
        return cls(G, E, meta, str(path), device)

    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        c = controls.to(self.device)
        cond = conditioning_camera(z.shape[0], self.framing).to(c.camera)
        out = self.G(z.to(self.device), c.camera, c.shape, c.expression, c.pose, truncation_psi=truncation_psi,
                     camera_cond=cond)
        size = out.image.shape[-2:]
        depth = torch.nn.functional.interpolate(out.depth[:, None], size=size, mode="nearest")[:, 0]
        mask = torch.nn.functional.interpolate(out.mask[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
        return GeneratorOutput(image=out.image, depth=depth, mask=mask.clamp(0, 1))

    @torch.no_grad()
    def read_expression(self, images: torch.Tensor, camera: torch.Tensor) -> torch.Tensor | None:
        """The frozen control encoder ``E`` of ``L_enc`` read on ``images``: ``(B, n_expression)`` on the CPU, in
        one batch; None for checkpoints without E (see :meth:`Generator.read_expression`)."""
        if self.E is None:
            return None
        dev = next(self.E.parameters()).device
        return self.E(images.to(dev), camera.to(dev))[0].cpu()

    def describe(self) -> dict:
        return {**super().describe(), "config": self.G.cfg.name, "method": self.G.cfg.method, "step": self.meta.get("step"),
                "ablation": {k: getattr(self.G.cfg, k) for k in ("use_sdf", "use_prior", "use_enc", "dynamic")},
                "pose_conditioning": "frontal",
                # what `omnibench table` needs to average runs that differ only in training seed
                "training": {"seed": self.G.cfg.seed, "steps": self.G.cfg.steps, "batch": self.G.cfg.batch,
                             "dataset": (self.meta.get("dataset") or {}).get("content_hash")}}


class AniFaceGANGenerator(OmniAvatarGenerator):
    """``omnibench.generators`` entry point ``anifacegan``: the AniFaceGAN-style baseline
    (:mod:`reference_model.gan.anifacegan`), trained by ``omnibench train gan --ablation anifacegan`` under the same
    recipe; same conditioning camera, depth and mask conventions as :class:`OmniAvatarGenerator`."""

    name = "anifacegan"
    checkpoint_kind = "omnibench.anifacegan"
    method = "anifacegan"
    shipped_glob = "anifacegan*.pt"
    # the shipped seed-0 baseline: `--ckpt anifacegan` names the generator and, through this, its file
    default_checkpoint = "anifacegan"
