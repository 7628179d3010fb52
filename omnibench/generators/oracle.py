"""Oracle generators: render exactly the FLAME controls they are given with the head model + mesh renderer.

* ``oracle``: shape, expression and pose go through the head model's forward pass, the camera through
  the renderer; the latent ``z (B, 64)`` only picks the appearance (:class:`omnibench.render.Appearance`;
  ``truncation_psi`` scales ``z`` toward the mean look). Control metrics should score it near perfect.
* ``oracle-noexpr``: ignores the **expression coefficients** only (they are zeroed); the jaw and eye
  pose are still rendered, so jaw opening stays controllable and expression metrics see what is left.
* ``oracle-noshape``: ignores the shape coefficients (the mean identity geometry for every sample).

``--option detail_px=N`` (a diagnostic, any of the three): the image keeps only the detail of an ``N x N``
render: area-averaged down to ``N`` px, then bilinearly back up to the output size (depth and mask stay
full-resolution). It tells how much image detail a control metric needs, e.g. what a generator whose neural
rendering runs at 32 px could carry at best without a super-resolution stage adding detail.

``flame_layout`` is ``FlameLayout(n_shape=min(100, head.n_shape), n_expression=min(50, head.n_expression))``,
the layout :func:`omnibench.data.synth.sample_controls` draws (DECA's 100/50). Extra coefficients in the
controls are dropped, missing ones are zero. Outputs: image float [0, 1], depth (metres, ``inf`` off
the head) and an anti-aliased mask. Rendering is per sample, so results do not depend on batch size.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from omnibench.errors import OmnibenchError
from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput
from omnibench.render import APPEARANCE_Z_DIM, RENDERER_VERSION, Appearance, HeadRegions, render_mesh

N_SHAPE, N_EXPRESSION = 100, 50


def _spec_of(model: object) -> str:
    """A ``load_head_model`` spec for a model object: ``synthetic:<preset>:<seed>``, its source file, or its name."""
    name = str(getattr(model, "name", type(model).__name__))
    m = re.fullmatch(r"synthflame-(?P<preset>[\w-]+)-seed(?P<seed>\d+)", name)
    if m:
        return f"synthetic:{m['preset']}:{m['seed']}"
    source = getattr(model, "source", None)
    return str(source) if source is not None and Path(source).exists() else name


class OracleGenerator(Generator):
    name = "oracle"
    z_dim = APPEARANCE_Z_DIM
    provides_depth = True
    ignores: tuple[str, ...] = ()
    options: ClassVar[dict[str, str]] = {
        "detail_px": "keep only the image detail of an N x N render (area down, bilinear up; a diagnostic)",
    }

    def __init__(self, head: object = "synthetic", resolution: int = 64, supersample: int = 2, hair: bool = True,
                 detail_px: int | None = None) -> None:
        if not isinstance(resolution, int) or not 4 <= resolution <= 4096:
            raise OmnibenchError(f"oracle resolution must be an integer in [4, 4096], got {resolution!r}")
        if detail_px is not None and (not isinstance(detail_px, int) or not 2 <= detail_px <= 4096):
            raise OmnibenchError(f"oracle detail_px must be an integer in [2, 4096], got {detail_px!r}")
        self.detail_px = detail_px
        if not isinstance(supersample, int) or not 1 <= supersample <= 8:
            raise OmnibenchError(f"oracle supersample must be an integer in [1, 8], got {supersample!r}")
        if isinstance(head, str):
            from omnibench.heads import load_head_model

            self.model = load_head_model(head, dtype=torch.float64)  # float64: pixels never hinge on rounding
            self.head_model = head
        elif isinstance(head, torch.nn.Module):  # a private float64 copy: same pixels however it was loaded
            self.model = copy.deepcopy(head).to(torch.float64)
            self.head_model = _spec_of(head)
        else:
            self.model = head
            self.head_model = _spec_of(head)
        self.regions = HeadRegions.from_model(self.model)
        self.faces = self.model.faces
        self.resolution = resolution
        self.supersample = supersample
        self.hair = hair
        self.flame_layout = FlameLayout(n_shape=min(N_SHAPE, int(self.model.n_shape)),
                                        n_expression=min(N_EXPRESSION, int(self.model.n_expression)))

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu", options: dict[str, Any] | None = None) -> Generator:
        """``ckpt`` is a head-model spec (``synthetic``, ``synthetic:tiny`` or a FLAME path); None = synthetic.
        ``options``: ``detail_px`` (see the module docstring)."""
        detail = (options or {}).get("detail_px")
        if detail is not None:
            try:
                detail = int(str(detail))
            except ValueError:
                raise OmnibenchError(f"--option detail_px= expects an integer, got '{detail}'") from None
        return cls(head=ckpt or "synthetic", detail_px=detail)

    def at_resolution(self, resolution: int) -> Generator:
        """A copy rendering natively at ``resolution`` px (the renderer has no fixed output size)."""
        if resolution == self.resolution:
            return self
        twin = copy.copy(self)
        twin.resolution = int(resolution)
        return twin

    def _controls(self, controls: Controls) -> Controls:
        c = controls.to("cpu").fit_layout(self.flame_layout)
        shape, expression = c.shape, c.expression
        if "shape" in self.ignores:
            shape = torch.zeros_like(shape)
        if "expression" in self.ignores:
            expression = torch.zeros_like(expression)
        return Controls(camera=c.camera, shape=shape, expression=expression, pose=c.pose)

    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise OmnibenchError(f"{self.name} expects z of shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if len(controls) != z.shape[0]:
            raise OmnibenchError(f"z has {z.shape[0]} rows but controls have {len(controls)}")
        if controls.pose.ndim != 2 or controls.pose.shape[1] != 15 or controls.camera.shape[1:] != (25,):
            raise OmnibenchError(f"controls need pose (B, 15) and camera (B, 25), got {tuple(controls.pose.shape)} "
                                 f"and {tuple(controls.camera.shape)}")
        c = self._controls(controls)
        if len(c) == 0:
            raise OmnibenchError(f"{self.name}: empty batch")
        with torch.no_grad():  # one sample per forward pass: vertices never depend on the batch size
            verts = torch.cat([self._vertices(c.index(slice(b, b + 1))) for b in range(len(c))])
        apps = Appearance.from_latents(z.detach().cpu().double() * float(truncation_psi))
        r = render_mesh(verts, self.faces, c.camera, self.resolution, apps, regions=self.regions,
                        supersample=self.supersample, hair=self.hair)
        return GeneratorOutput(image=self._limit_detail(r.image), depth=r.depth, mask=r.mask)

    def _limit_detail(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> the same size holding only the detail of a ``detail_px`` render (identity without)."""
        if self.detail_px is None or self.detail_px >= image.shape[-1]:
            return image
        n = self.detail_px
        low = F.interpolate(image, size=(n, n), mode="area")
        return F.interpolate(low, size=tuple(image.shape[-2:]), mode="bilinear", align_corners=False).clamp(0, 1)

    def _vertices(self, c: Controls) -> torch.Tensor:
        out = self.model(shape=c.shape, expression=c.expression, pose=c.pose)  # the model casts to its dtype
        return out.vertices.detach().cpu().double()

    def describe(self) -> dict:
        return {**super().describe(), "head_model": self.head_model, "head_sha256": getattr(self.model, "sha256", None),
                "renderer_version": RENDERER_VERSION, "ignores": list(self.ignores),
                **({"detail_px": self.detail_px} if self.detail_px is not None else {}),
                "flame_layout": {"n_shape": self.flame_layout.n_shape, "n_expression": self.flame_layout.n_expression}}


class OracleNoExprGenerator(OracleGenerator):
    """Renders the controls but with the expression coefficients zeroed (jaw/eye pose kept)."""

    name = "oracle-noexpr"
    ignores = ("expression",)


class OracleNoShapeGenerator(OracleGenerator):
    """Renders the controls but with the shape coefficients zeroed (mean identity geometry)."""

    name = "oracle-noshape"
    ignores = ("shape",)
