"""``eg3d``, ``next3d`` and ``omniavatar-pkl``: EG3D-family ``network-snapshot`` pickles scored directly.

``omnibench evaluate --ckpt snapshot.pkl --option repo=PATH`` (or ``$OMNIBENCH_EG3D_REPO``) with the user's own
checkout. Options (``--option KEY=VALUE``): ``repo``; ``trust_code`` (false: rebuild the class from the checkout
and load the tensors, no stored code runs; true: the checkout's ``legacy.load_network_pkl``, which executes the
sources stored in the pickle); ``custom_ops`` (false: the checkout's CUDA plugins report unavailable, so the
reference PyTorch ops run); ``conditioning`` (``frontal``: the mapping network sees the frontal camera on the
model's orbit, EG3D's scripts' choice; ``render``: the rendering camera); ``focal`` (normalised focal of the
model cameras; default the family's). ``next3d`` adds ``head`` (its FLAME model, default the user's FLAME).

Every image depends on its own inputs alone: samples render one at a time under a seed hashed from the
sample's latent, controls and truncation (the renderers draw random depth jitter even with constant noise),
so numbers are the same for every ``--batch-size`` and process count.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, ClassVar

import numpy as np
import torch

from omnibench.cameras import EG3D_FOCAL
from omnibench.errors import CheckpointError, MissingAssetError, OmnibenchError
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput
from omnibench.generators.eg3d import checkout as co
from omnibench.generators.eg3d.geometry import (
    METRES_PER_UNIT,
    OMNIAVATAR_FOCAL,
    frontal_camera,
    place_on_orbit,
    ray_depth_to_metres,
)
from omnibench.generators.eg3d.loading import load_trusted, rebuild
from omnibench.generators.eg3d.scan import cached_scan, looks_like_pickle, references_persistence

FAMILY_NAMES = {"eg3d": "eg3d", "next3d": "next3d", "omniavatar": "omniavatar-pkl"}
SEED_RULE = "sha256(z, camera, shape, expression, pose, psi as float32 bytes)[:8] seeds torch per sample, batch 1"


def _bool_option(options: dict[str, Any], key: str, default: bool) -> bool:
    value = str(options.get(key, default)).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise OmnibenchError(f"--option {key}= expects true or false, got '{options[key]}'")


def sample_seed(z: torch.Tensor, controls: Controls, truncation_psi: float) -> int:
    """The render seed of one sample: a hash of its latent, controls and truncation (see :data:`SEED_RULE`)."""
    h = hashlib.sha256()
    for t in (z, controls.camera, controls.shape, controls.expression, controls.pose):
        h.update(np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy()).tobytes())
    h.update(np.float32(truncation_psi).tobytes())
    return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)


class EG3DGenerator(Generator):
    """A plain EG3D ``TriPlaneGenerator`` pickle: honours the camera only."""

    name = "eg3d"
    family = "eg3d"
    default_module = "training.triplane"
    default_focal = EG3D_FOCAL
    provides_depth = True
    controls = frozenset({"camera"})
    flame_layout = FlameLayout(n_shape=0, n_expression=0)
    options: ClassVar[dict[str, str]] = {
        "repo": "the user's checkout (default $OMNIBENCH_EG3D_REPO)",
        "trust_code": "true: load with the checkout's legacy.load_network_pkl (executes the pickle's stored code)",
        "custom_ops": "false: use the reference PyTorch ops instead of compiling the CUDA plugins",
        "conditioning": "frontal (default) or render: the camera the mapping network is conditioned on",
        "focal": "normalised focal of the model cameras (default: the family's)",
    }

    def __init__(self, G: torch.nn.Module, path: str, device: str, options: dict[str, Any], facts: dict) -> None:
        self.G, self.path, self.device, self.facts = G, path, device, facts
        self.z_dim = int(G.z_dim)
        self.resolution = int(G.img_resolution)
        rk = dict(G.rendering_kwargs)
        self.pivot = torch.tensor([float(v) for v in rk.get("avg_camera_pivot", (0.0, 0.0, 0.2))])
        self.radius = float(rk.get("avg_camera_radius", 2.7))
        self.conditioning = str(options.get("conditioning", "frontal"))
        if self.conditioning not in ("frontal", "render"):
            raise OmnibenchError(f"--option conditioning= expects frontal or render, got '{self.conditioning}'")
        try:
            self.focal = float(options.get("focal", self.default_focal))
        except ValueError:
            raise OmnibenchError(f"--option focal= expects a number, got '{options['focal']}'") from None

    # --- loading ---------------------------------------------------------------------------------------
    @classmethod
    def accepts(cls, path: str | os.PathLike) -> bool:
        """A pickle of this family, recognised without executing it. ``eg3d`` also takes the persistence
        pickles of no tri-plane family and truncated files naming the persistence reconstructor, so that
        loading says what they are."""
        if not looks_like_pickle(path):
            return False
        try:
            family = cached_scan(path).family
        except CheckpointError:
            return cls.family == "eg3d" and references_persistence(path)
        return family == cls.family or (cls.family == "eg3d" and family == "other")

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu", options: dict[str, Any] | None = None) -> EG3DGenerator:
        options = dict(options or {})
        if ckpt is None or not os.path.isfile(ckpt):
            raise CheckpointError(f"the {cls.name} generator needs a snapshot pickle: --ckpt PATH.pkl")
        if not looks_like_pickle(ckpt):
            raise CheckpointError(f"'{ckpt}' is not a pickle (an EG3D-family network-snapshot .pkl is expected)")
        scan = cached_scan(ckpt)
        family = scan.family
        if family != cls.family:
            if family in FAMILY_NAMES:
                raise CheckpointError(f"'{ckpt}' is a {family} pickle, not {cls.family}: pass --generator "
                                      f"{FAMILY_NAMES[family]}")
            found = scan.networks.get("G_ema")
            raise CheckpointError(
                f"'{ckpt}' is not an EG3D-family snapshot (G_ema is {found.class_name if found else 'absent'}, "
                "not a TriPlaneGenerator); pass --generator NAME|module:Class"
            )
        trust = _bool_option(options, "trust_code", False)
        custom_ops = _bool_option(options, "custom_ops", True)
        checkout = co.Checkout.locate(options.get("repo") or os.environ.get(co.ENV_REPO), cls.family)
        needed = {g.rsplit(".", 1)[0] for g in scan.globals if not g.startswith(("torch", "numpy", "collections",
                                                                                   "builtins"))}
        checkout.check_modules(needed | scan.imports, cls.family)
        co.activate(checkout)
        patched = co.disable_custom_ops() if not custom_ops else []
        facts: dict[str, Any] = {"load": "trust_code" if trust else "rebuild", "checkout": checkout.describe(),
                                 "pickle": scan.summary(), "custom_ops": custom_ops, "custom_ops_patched": patched}
        if trust:
            G = load_trusted(ckpt)
        else:
            G, more = rebuild(ckpt, checkout, cls.default_module)
            facts.update(more)
        G = G.eval().requires_grad_(False).to(device)
        gen = cls(G, str(ckpt), device, options, facts)
        gen.prepare()
        return gen

    def prepare(self) -> None:
        """Family-specific switches after loading (OmniAvatar: deterministic sampling, no pose perturbation)."""

    # --- rendering -------------------------------------------------------------------------------------
    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        controls = controls.to("cpu")
        z = z.detach().cpu().to(torch.float32)
        cams = place_on_orbit(controls.camera.float(), self.pivot, self.radius, self.focal)
        cond = cams if self.conditioning == "render" else frontal_camera(len(z), self.pivot, self.radius, self.focal)
        devices = [torch.device(self.device).index or 0] if str(self.device).startswith("cuda") else []
        images, depths, masks = [], [], []
        for i in range(len(z)):
            one = controls.index(slice(i, i + 1))
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(sample_seed(z[i], one, truncation_psi))
                out = self.render(z[i:i + 1].to(self.device), cams[i:i + 1].to(self.device),
                                  cond[i:i + 1].to(self.device), one, truncation_psi)
            image = ((out["image"].float().cpu() + 1) / 2).clamp(0, 1)
            depth = ray_depth_to_metres(out["image_depth"].float().cpu(), cams[i:i + 1], controls.camera[i:i + 1].float())
            depth = torch.nn.functional.interpolate(depth[:, None], size=image.shape[-2:], mode="nearest")[:, 0]
            images.append(image)
            depths.append(depth)
            if "image_mask" in out:  # OmniAvatar's accumulated opacity; EG3D and Next3D return none
                masks.append(torch.nn.functional.interpolate(out["image_mask"].float().cpu(), size=image.shape[-2:],
                                                             mode="bilinear", align_corners=False)[:, 0].clamp(0, 1))
        mask = torch.cat(masks) if len(masks) == len(images) else None
        return GeneratorOutput(image=torch.cat(images), depth=torch.cat(depths), mask=mask)

    def render(self, z: torch.Tensor, camera: torch.Tensor, cond: torch.Tensor, controls: Controls,
               truncation_psi: float) -> dict[str, torch.Tensor]:
        """One sample: the model's ``mapping`` on the conditioning camera, ``synthesis`` on the rendering one."""
        ws = self.G.mapping(z, cond, truncation_psi=truncation_psi, truncation_cutoff=None)
        return self.G.synthesis(ws, camera, noise_mode="const")

    def describe(self) -> dict:
        return {
            **super().describe(), "family": self.family, **self.facts,
            "neural_rendering_resolution": int(getattr(self.G, "neural_rendering_resolution", 0) or 0),
            "camera": {"rule": "protocol camera rotation kept; centre at radius from the world origin on the "
                                "line through the pivot (EG3D's LookAtPoseSampler; model units)",
                       "pivot_units": self.pivot.tolist(), "radius_units": self.radius, "focal": self.focal,
                       "metres_per_unit": METRES_PER_UNIT},
            "conditioning": self.conditioning, "seed_rule": SEED_RULE,
            "image": "(x + 1) / 2 clamped to [0, 1]",
            "depth": "expected ray distance * cos(angle to axis) * metres_per_unit + axial camera offset, nearest "
                     "upsampling",
            "mask": "the model's image_mask (accumulated opacity), bilinear, clamped" if self.family == "omniavatar"
                    else None,
        }


class Next3DGenerator(EG3DGenerator):
    """A Next3D pickle: conditioned on the FLAME mesh (5023 vertices + 68 landmarks, metres, global pose and neck
    zero) that omnibench's head model builds from the controls; needs the user's FLAME (``--option head=``)."""

    name = "next3d"
    family = "next3d"
    default_module = "training_avatar_texture.triplane_next3d"
    controls = frozenset({"camera", "shape", "expression", "jaw", "eyes"})
    flame_layout = FlameLayout(n_shape=100, n_expression=50)
    options: ClassVar[dict[str, str]] = {
        **EG3DGenerator.options,
        "head": "the FLAME model building Next3D's mesh: a path, 'flame' ($OMNIBENCH_FLAME, the default) or "
                "'synthetic:flame-count' for tests",
    }
    N_VERTICES, N_LANDMARKS = 5023, 68

    def __init__(self, G: torch.nn.Module, path: str, device: str, options: dict[str, Any], facts: dict) -> None:
        super().__init__(G, path, device, options, facts)
        from omnibench.heads import load_head_model

        spec = options.get("head") or "flame"
        self.head_model = spec
        self.head = load_head_model(spec)
        n = int(self.head.template.shape[0])
        if n != self.N_VERTICES:
            raise OmnibenchError(f"next3d needs a FLAME 2020 topology head ({self.N_VERTICES} vertices); "
                                 f"'{spec}' has {n}: pass --option head=PATH of generic_model.pkl")
        self.facts = {**self.facts, "head": {"spec": spec, "name": self.head.name, "sha256": self.head.sha256}}

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu", options: dict[str, Any] | None = None) -> Next3DGenerator:
        from omnibench.heads import load_head_model

        spec = (options or {}).get("head") or "flame"
        try:  # a missing FLAME fails here, before the checkout is touched
            load_head_model(spec)
        except MissingAssetError as exc:
            raise MissingAssetError(f"next3d builds its FLAME mesh with the user's FLAME 2020 model (--option "
                                    f"head=PATH): {exc}") from None
        return super().load(ckpt, device, options)  # type: ignore[return-value]

    def mesh(self, controls: Controls) -> torch.Tensor:
        """``(B, 5091, 3)``: FLAME vertices then the 68 landmarks (dynamic contour + 51 static, iBUG order),
        metres, global pose and neck zero (the camera carries head rotation)."""
        c = controls.fit_layout(self.flame_layout)
        pose = c.pose.float().clone()
        pose[:, :6] = 0
        out = self.head(shape=c.shape.float(), expression=c.expression.float(), pose=pose)
        return torch.cat([out.vertices, out.landmarks], 1)

    def render(self, z, camera, cond, controls, truncation_psi):
        v = self.mesh(controls).to(self.device)
        ws = self.G.mapping(z, cond, truncation_psi=truncation_psi, truncation_cutoff=None)
        return self.G.synthesis(ws, camera, v, noise_mode="const")


class OmniAvatarPklGenerator(EG3DGenerator):
    """OmniAvatar's official release pickle: 25 camera values + 206 FLAME values ``[shape 100 | expression 100 |
    neck 3 | jaw 3]`` (the 3 values before the jaw are inferred to be the neck), its deterministic sampling on
    and its random pose perturbation off."""

    name = "omniavatar-pkl"
    family = "omniavatar"
    default_focal = OMNIAVATAR_FOCAL
    controls = frozenset({"camera", "shape", "expression", "neck", "jaw"})
    flame_layout = FlameLayout(n_shape=100, n_expression=100)
    FEATURE_DIM = 206

    def prepare(self) -> None:
        rk = self.G.rendering_kwargs
        rk["det_sampling"] = True
        decoder = getattr(self.G, "decoder", None)
        if decoder is not None and hasattr(decoder, "pose_perturb_magtinude"):
            decoder.pose_perturb_magtinude = 0
        dim = int(rk.get("feature_dim", self.FEATURE_DIM))
        if dim != self.FEATURE_DIM:
            raise CheckpointError(f"'{self.path}': OmniAvatar pickle with feature_dim {dim}; omnibench packs "
                                  f"{self.FEATURE_DIM} FLAME values")
        self.facts = {**self.facts, "det_sampling": True, "pose_perturbation": 0,
                      "flame_layout": "shape 100 | expression 100 | neck 3 [inferred] | jaw 3"}

    def flame_values(self, controls: Controls) -> torch.Tensor:
        c = controls.fit_layout(self.flame_layout)
        return torch.cat([c.shape, c.expression, c.pose[:, 3:6], c.pose[:, 6:9]], 1).float()

    def render(self, z, camera, cond, controls, truncation_psi):
        flame = self.flame_values(controls).to(self.device)
        ws = self.G.mapping(z, torch.cat([cond, flame], 1), truncation_psi=truncation_psi, truncation_cutoff=None)
        return self.G.synthesis(ws, torch.cat([camera, flame], 1), noise_mode="const")
