"""``omnibench.generators`` entry point ``omniavatar``: scores OmniAvatar checkpoints with ``omnibench evaluate``.

``--ckpt tiny`` / ``--ckpt tiny-no-prior`` resolve to the checkpoints shipped in ``reference_model/checkpoints``.
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

    def __init__(self, G, E, meta: dict, path: str, device: str = "cpu") -> None:
        self.G, self.E, self.meta, self.path, self.device = G, E, meta, path, device
        cfg = G.cfg
        self.z_dim, self.resolution = cfg.z_dim, cfg.image_res
        self.flame_layout = FlameLayout(n_shape=cfg.n_shape, n_expression=cfg.n_expression)
        # a spec load_head_model accepts ('synthetic', 'synthetic:tiny', a FLAME path): the head W was trained on
        self.head_model = meta["head_model"].get("spec") or meta["sdf"]["config"]["head"]
        self.framing = str((meta.get("dataset") or {}).get("framing", "v1"))  # of the training data

    @classmethod
    def named_checkpoints(cls) -> dict[str, str]:
        """The shipped Stage II checkpoints: ``tiny`` and its ablations (``tiny-no-prior``), by file stem."""
        return {p.stem: str(p) for p in sorted(SHIPPED.glob("tiny*.pt"))}

    @classmethod
    def resolve(cls, ckpt: str) -> Path:
        p, named = Path(ckpt), cls.named_checkpoints()
        return Path(named[ckpt]) if not p.exists() and ckpt in named else p

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> OmniAvatarGenerator:
        from reference_model.gan.checkpoint import load_generator

        path = cls.resolve(ckpt or "tiny")
        G, E, meta = load_generator(path, device=device)
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
        return {**super().describe(), "config": self.G.cfg.name, "step": self.meta.get("step"),
                "ablation": {k: getattr(self.G.cfg, k) for k in ("use_sdf", "use_prior", "use_enc", "dynamic")},
                "pose_conditioning": "frontal"}
