"""Running a generator over a run of sample indices and checking what it returns.

Every image of the cache passes through :func:`generate_range`: latents and controls are drawn per global
index (:mod:`omnibench.evaluation.draws`), the generator renders them in batches, its output is checked
(:func:`check_output`: shapes, NaN) and resized to the protocol's resolution (:func:`resize_output`).
A generator that raises is reported as a :class:`GenerationError` naming it, the set and the sample range.
"""

from __future__ import annotations

from typing import Any

import torch

from omnibench.errors import OmnibenchError
from omnibench.evaluation.draws import ControlSource, draw_samples
from omnibench.generators.base import Generator, GeneratorOutput
from omnibench.protocol import Protocol


class GenerationError(OmnibenchError):
    """The generator failed or produced unusable samples (an exception, NaN, wrong shape, depth for some batches only):
    always fatal, exit 2 (the generator's error, not omnibench's)."""


def resize_output(out: GeneratorOutput, resolution: int, policy: str) -> GeneratorOutput:
    """``out`` at ``resolution`` x ``resolution``: images bicubic with antialias in float [0, 1] (policy
    ``bicubic-aa``), depth and mask nearest; policy ``none`` refuses any other size."""
    h, w = out.image.shape[-2:]
    if (h, w) == (resolution, resolution):
        return out
    if policy == "none":
        raise OmnibenchError(
            f"generator renders {h}x{w} but the protocol needs {resolution}x{resolution} and resize_policy is 'none'"
        )
    img = out.image.float() / 255.0 if out.image.dtype == torch.uint8 else out.image.float()
    img = torch.nn.functional.interpolate(img, size=(resolution, resolution), mode="bicubic", antialias=True,
                                          align_corners=False).clamp(0, 1)

    def nearest(t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        return torch.nn.functional.interpolate(t[:, None].float(), size=(resolution, resolution), mode="nearest")[:, 0]

    return GeneratorOutput(img, nearest(out.depth), nearest(out.mask))


def check_output(out: Any, n: int, set_name: str) -> GeneratorOutput:
    """``out`` if it is a :class:`GeneratorOutput` of ``n`` finite images ``(n, 3, H, W)`` with matching
    depth/mask ``(n, H, W)``; else an :class:`OmnibenchError` saying what is wrong."""
    if not isinstance(out, GeneratorOutput):
        raise OmnibenchError(f"generator returned {type(out).__name__}, expected GeneratorOutput")
    img = out.image
    if not isinstance(img, torch.Tensor) or img.ndim != 4 or img.shape[0] != n or img.shape[1] != 3:
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise OmnibenchError(f"generator returned images of shape {shape}, expected ({n}, 3, H, W)")
    if img.dtype != torch.uint8 and not torch.isfinite(img).all():
        raise OmnibenchError(
            f"generator produced NaN/inf pixels in set '{set_name}': check the checkpoint (diverged training?) "
            "or its truncation/precision settings"
        )
    for name in ("depth", "mask"):
        t = getattr(out, name)
        if t is not None and (t.ndim != 3 or t.shape[0] != n or tuple(t.shape[-2:]) != tuple(img.shape[-2:])):
            raise OmnibenchError(f"generator returned {name} of shape {tuple(t.shape)}, expected ({n}, H, W)")
    if out.mask is not None and not torch.isfinite(out.mask).all():
        raise OmnibenchError(f"generator produced NaN mask values in set '{set_name}'")
    return out


@torch.no_grad()
def generate_range(generator: Generator, protocol: Protocol, set_name: str, indices: range, source: ControlSource,
                   *, batch_size: int, device: str) -> dict[str, torch.Tensor]:
    """Samples ``indices`` of ``set_name`` as one shard: ``image`` uint8 ``(N, 3, R, R)``, the drawn ``z``,
    ``camera``, ``shape``, ``expression``, ``pose``, ``index``/``group``/``member`` and, for the protocol's
    depth sets, ``depth``/``mask`` float ``(N, R, R)`` when the generator provides them. CPU tensors."""
    parts: list[dict[str, torch.Tensor]] = []
    for b0 in range(indices.start, indices.stop, batch_size):
        idx = list(range(b0, min(indices.stop, b0 + batch_size)))
        spec = draw_samples(protocol, set_name, idx, generator.z_dim, source)
        ctrl = spec.controls.fit_layout(generator.flame_layout).to(device)
        try:
            out = generator.synthesize(spec.z.to(device), ctrl, protocol.truncation_psi)
        except OmnibenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a plug-in's own failure: name it, never "internal error"
            raise GenerationError(
                f"generator '{generator.name}' failed on set '{set_name}', samples {idx[0]}-{idx[-1]}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        out = check_output(out, len(idx), set_name)
        out = resize_output(out, protocol.resolution, protocol.resize_policy)
        part = {
            "index": spec.index, "group": spec.group, "member": spec.member, "z": spec.z,
            "camera": spec.controls.camera, "shape": spec.controls.shape,
            "expression": spec.controls.expression, "pose": spec.controls.pose,
            "image": out.image_uint8().cpu(),
        }
        if set_name in protocol.depth_sets and out.depth is not None:
            part["depth"] = out.depth.detach().float().cpu()
        if set_name in protocol.depth_sets and out.mask is not None:
            part["mask"] = out.mask.detach().float().cpu()
        if parts and set(part) != set(parts[0]):
            raise OmnibenchError("generator returned depth/mask for some batches only")
        parts.append(part)
    return {k: torch.cat([pt[k] for pt in parts]) for k in parts[0]}
