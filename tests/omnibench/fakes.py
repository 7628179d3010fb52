"""Tiny deterministic generator and metrics for engine tests (no head model, renderer or networks)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import torch

from omnibench.errors import MissingAssetError
from omnibench.generators.base import Controls, Generator, GeneratorOutput, load_checkpoint
from omnibench.metric_api import Metric, MetricResult
from omnibench.protocol import PROTOCOLS, SetSize

GEN = "tests.omnibench.fakes:FakeGenerator"
METRICS = ["tests.omnibench.fakes:MeanPixel", "tests.omnibench.fakes:GroupSpread",
           "tests.omnibench.fakes:GroupSpread@expr"]
# quick's settings at the fake generator's 16 px, with fewer samples (4 shards in main); registered as protocol
# ``tiny`` by the ``tiny_protocol`` fixture (tests/omnibench/conftest.py)
TINY = dataclasses.replace(PROTOCOLS["quick"], name="tiny", resolution=16, main=SetSize(400), views=SetSize(5, 3),
                           expr=SetSize(5, 3), real_n=400)


class FakeGenerator(Generator):
    """Image = smooth function of (z, controls); per-sample, so batch size cannot change pixels."""

    name = "fake"
    z_dim = 8
    resolution = 16
    checkpoint_kind = "fake-gen"
    provides_depth = True

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain
        self.calls = 0

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> FakeGenerator:
        if ckpt is None:
            return cls()
        if ckpt == "shipped-gain3":  # a name the generator resolves itself, like a shipped checkpoint
            return cls(3.0)
        data = load_checkpoint(ckpt, cls.checkpoint_kind)
        return cls(float(data["gain"]))

    def describe(self) -> dict:
        return {**super().describe(), "gain": self.gain}

    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        self.calls += 1
        fail_after = int(os.environ.get("FAKE_FAIL_AFTER_CALLS", "0"))
        if fail_after and self.calls > fail_after:
            raise RuntimeError("simulated crash")
        yy, xx = torch.meshgrid(torch.linspace(0, 1, self.resolution), torch.linspace(0, 1, self.resolution), indexing="ij")
        feat = torch.cat([z[:, :3], controls.camera[:, 3:4], controls.expression[:, :1], controls.shape[:, :1]], 1)
        img = torch.stack([
            torch.sigmoid(self.gain * (feat[:, c, None, None] + feat[:, c + 3, None, None] * (xx - yy)))
            for c in range(3)
        ], 1)
        depth = 1.5 + 0.1 * img[:, 0]
        mask = (img[:, 1] > 0.5).float()
        if os.environ.get("FAKE_NAN"):
            img = img.clone()
            img[0, 0, 0, 0] = float("nan")
        if os.environ.get("FAKE_MIXED") and self.calls % 2 == 0:
            img = torch.nn.functional.interpolate(img, size=(self.resolution // 2,) * 2)
            depth, mask = None, None
        return GeneratorOutput(img, depth, mask)


class MeanPixel(Metric):
    """Mean pixel intensity of the main set (per-sample values give the bootstrap CI)."""

    name = "mean-pixel"
    higher_is_better = True
    requires = ("main",)

    def compute(self, ctx, variant):
        vals = torch.cat([b.double().mean(dim=(1, 2, 3)) for b in ctx.sample_images("main")]).numpy()
        return MetricResult(float(vals.mean()), len(vals), details={"per_sample": vals})


class GroupSpread(Metric):
    """Mean within-group pixel std over the views and expr sets (exercises group ids and depth/mask)."""

    name = "group-spread"
    requires = ("views", "expr")
    variants = {"views": "views set", "expr": "expression set"}
    default_variant = "views"

    def compute(self, ctx, variant):
        s = ctx.samples(variant)
        assert s.depth is not None and s.mask is not None
        imgs = s.images.double().reshape(s.n_groups, s.n_members, -1)
        per_group = imgs.std(dim=1).mean(dim=1).numpy()
        assert (s.group.reshape(s.n_groups, s.n_members) == torch.arange(s.n_groups)[:, None]).all()
        return MetricResult(float(per_group.mean()), s.n_groups, details={"per_sample": per_group,
                                                                          "mean_depth": float(s.depth.mean())})


class NeedsAsset(Metric):
    name = "needs-asset"
    requires = ("main",)

    @classmethod
    def check(cls, ctx, variant):
        if os.environ.get("FAKE_CHECK_FAILS"):
            raise MissingAssetError("missing asset 'imaginary-net' (checked up front)")

    def compute(self, ctx, variant):
        raise MissingAssetError("missing asset 'imaginary-net': put it in $OMNIBENCH_WEIGHTS")


def save_fake_checkpoint(path, gain: float = 1.0, kind: str = "fake-gen") -> None:
    from omnibench.generators.base import save_checkpoint

    save_checkpoint(path, kind, {"gain": torch.tensor(gain)})


__all__ = ["GEN", "METRICS", "TINY", "FakeGenerator", "FakeGenerator64", "RealCount", "MeanPixel", "GroupSpread", "NeedsAsset", "save_fake_checkpoint", "np"]


class FakeFlexible(FakeGenerator):
    """Renders at any size the engine asks for (``at_resolution``)."""

    name = "fake-flex"

    def at_resolution(self, resolution: int) -> FakeFlexible:
        g = FakeFlexible(self.gain)
        g.resolution = resolution
        return g


class FakeGenerator64(FakeGenerator):
    """The fake generator at the quick protocol's 64 px (no resize)."""

    name = "fake64"
    resolution = 64


class RealCount(Metric):
    """Number of real images (exercises ctx.real_set / ctx.real_path)."""

    name = "real-count"
    requires = ("real",)

    def compute(self, ctx, variant):
        return MetricResult(float(len(ctx.real_set)), len(ctx.real_set), details={"path": str(ctx.real_path)})


class FakeCameraOnly(FakeGenerator):
    """The fake generator declaring that it honours the camera only (like plain EG3D)."""

    name = "fake-camera-only"
    controls = frozenset({"camera"})


class ExprSpread(GroupSpread):
    """GroupSpread of the expr set, declared as measuring the expression control."""

    name = "expr-spread"
    requires = ("expr",)
    controls = ("expression",)
    variants = {"expr": "expression set"}
    default_variant = "expr"

    def compute(self, ctx, variant):
        s = ctx.samples(variant)
        per_group = s.images.double().reshape(s.n_groups, s.n_members, -1).std(dim=1).mean(dim=1).numpy()
        return MetricResult(float(per_group.mean()), s.n_groups, details={"per_sample": per_group})
