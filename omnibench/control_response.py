"""How strongly, and how locally, a generator's images respond to each FLAME control group.

For samples of a protocol set, every control group (``expression``, ``shape``, ``jaw``: pose 6:9) is set to
neutral (zeros) in turn with everything else (z, camera, the other controls) unchanged, and the images are
compared with those of the given controls (values in [0, 1]):

* ``mean_abs``: mean absolute difference over pixels and channels, averaged over samples;
* ``p99_abs``: per sample the 99th percentile over pixels of the largest channel difference, averaged over
  samples. A control that moves a mouth or eyelid changes few pixels a lot (high ``p99_abs``, small
  ``mean_abs``); a global tint changes many pixels a little.

A generator that ignores a group scores exactly 0 for it. A generator that can read expressions back from
images (:meth:`omnibench.generators.base.Generator.read_expression`, e.g. OmniAvatar's frozen control encoder
``E`` of ``L_enc``) also gets ``encoder``: the correlation, per expression column, between the requested
expression and its own estimate, on the generated images and, as the yardstick, on the reference's (e.g. the
oracle's renders). That is what ``omnibench evaluate``'s AED measures with an independent estimator.
Used by ``omnibench control-response`` (:mod:`omnibench.cli.control_response`, docs/reference-model.md).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from omnibench.generators.base import Controls, Generator

GROUPS: dict[str, str] = {"expression": "expression coefficients", "shape": "shape coefficients",
                          "jaw": "jaw axis-angle (pose 6:9)"}


def neutral(controls: Controls, group: str) -> Controls:
    """``controls`` with ``group`` set to zeros."""
    if group == "expression":
        return replace(controls, expression=torch.zeros_like(controls.expression))
    if group == "shape":
        return replace(controls, shape=torch.zeros_like(controls.shape))
    if group == "jaw":
        pose = controls.pose.clone()
        pose[:, 6:9] = 0
        return replace(controls, pose=pose)
    raise ValueError(f"unknown control group '{group}' ({', '.join(GROUPS)})")


def render(generator: Generator, z: torch.Tensor, controls: Controls, batch: int) -> torch.Tensor:
    """``(B, 3, R, R)`` images in [0, 1], in chunks of ``batch``."""
    out = [generator.synthesize(z[i : i + batch], controls.index(slice(i, i + batch))).image.float().cpu()
           for i in range(0, len(z), batch)]
    return torch.cat(out).clamp(0, 1)


def image_change(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """``mean_abs`` and ``p99_abs`` (module docstring) of two ``(B, 3, H, W)`` image batches."""
    d = (a - b).abs()
    per_pixel = d.amax(dim=1).flatten(1)  # (B, H*W)
    return {"mean_abs": float(d.mean()), "p99_abs": float(torch.quantile(per_pixel, 0.99, dim=1).mean())}


def column_correlation(est: torch.Tensor, given: torch.Tensor) -> list[float]:
    """Pearson correlation per column of two ``(N, K)`` tensors (0 where a column is constant)."""
    a, b = est - est.mean(0), given - given.mean(0)
    den = a.norm(dim=0) * b.norm(dim=0)
    return torch.where(den > 0, (a * b).sum(0) / den.clamp_min(1e-12), torch.zeros_like(den)).tolist()


@torch.no_grad()
def control_response(generator: Generator, z: torch.Tensor, controls: Controls, batch: int = 16,
                     groups: tuple[str, ...] = tuple(GROUPS), reference: Generator | None = None,
                     reference_z: torch.Tensor | None = None) -> dict:
    """``groups``: per group ``{mean_abs, p99_abs}``; ``reference_groups``: the same for ``reference`` (e.g. the
    oracle) on the same z and controls, when given; when ``generator.read_expression`` reads expressions back
    (OmniAvatar's E) also ``encoder``: correlation per expression column between requested and read-back
    expression on these images (and on ``reference``'s). ``reference_z``: the reference's latents when its
    ``z_dim`` differs (default ``z``)."""
    base = render(generator, z, controls, batch)
    result: dict = {"n": len(z), "groups": {}}
    for g in groups:
        result["groups"][g] = image_change(base, render(generator, z, neutral(controls, g), batch))
    ref = None
    if reference is not None:
        zr = z if reference_z is None else reference_z
        ref = render(reference, zr, controls, batch)
        result["reference_groups"] = {g: image_change(ref, render(reference, zr, neutral(controls, g), batch)) for g in groups}
    est = generator.read_expression(base, controls.camera)
    if est is not None:
        k = est.shape[1]
        given = torch.nn.functional.pad(controls.expression, (0, max(0, k - controls.expression.shape[1])))[:, :k]
        enc = {"generated": [round(v, 4) for v in column_correlation(est, given)]}
        if ref is not None:
            enc["reference"] = [round(v, 4) for v in column_correlation(generator.read_expression(ref, controls.camera), given)]
        result["encoder"] = {"columns": k, "correlation": enc}
    return result
