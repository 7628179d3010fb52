"""The draws of a protocol's sample sets: latents and controls from (protocol seed, set name, global index) only.

Nothing here uses a stream RNG: every quantity of sample ``i`` comes from its own generator seeded by
``sha256("omnibench/<seed>/<set>/<stream>/<key>")``, so a sample is the same whatever the batch size,
shard size, process count or order of generation.

Keys per set (``g`` = group, ``m`` = member, ``i = g * n_members + m``):

* ``main``: z, camera and FLAME all keyed by ``i``.
* ``views``: z and FLAME keyed by ``g``; camera = ``protocol.view_list[m]``.
* ``expr``: z and shape keyed by ``g``; expression and pose keyed by ``i``; camera = ``protocol.expr_view``.

FLAME (and, for ``main``, camera) come from a :class:`ControlSource`: the head model's prior (:class:`HeadPrior`
over :func:`omnibench.data.control_prior.sample_controls`, itself keyed by a per-draw seed) or a label bank.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import torch

from omnibench.cameras import FRAMING_V1, Framing
from omnibench.errors import OmnibenchError
from omnibench.generators.base import POSE_DIM, Controls
from omnibench.protocol import CameraDistribution, Protocol


def index_seed(seed: int, set_name: str, stream: str, key: int) -> int:
    """63-bit seed of one (protocol seed, set, stream, key) tuple."""
    digest = hashlib.sha256(f"omnibench/{seed}/{set_name}/{stream}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def index_generator(seed: int, set_name: str, stream: str, key: int) -> torch.Generator:
    """CPU ``torch.Generator`` for one key (draw on CPU, then move: results do not depend on the device)."""
    return torch.Generator().manual_seed(index_seed(seed, set_name, stream, key))


def latents(seed: int, set_name: str, keys: Sequence[int], z_dim: int) -> torch.Tensor:
    """``(len(keys), z_dim)`` float32 standard-normal latents, one generator per key."""
    if len(keys) == 0:
        return torch.zeros(0, z_dim)
    return torch.stack([torch.randn(z_dim, generator=index_generator(seed, set_name, "z", k)) for k in keys])


def orbit_cameras(dist: CameraDistribution, seed: int, set_name: str, keys: Sequence[int]) -> torch.Tensor:
    """``(len(keys), 25)`` cameras with clipped-normal yaw/pitch (radians), one generator per key."""
    yp = torch.zeros(len(keys), 2)
    for j, k in enumerate(keys):
        r = torch.randn(2, generator=index_generator(seed, set_name, "camera", k), dtype=torch.float64)
        yp[j, 0] = float((dist.yaw_mean + dist.yaw_std * r[0]).clamp(-dist.yaw_clip, dist.yaw_clip))
        yp[j, 1] = float((dist.pitch_mean + dist.pitch_std * r[1]).clamp(-dist.pitch_clip, dist.pitch_clip))
    return dist.framing.orbit(yp[:, 0], yp[:, 1])


def fixed_cameras(views: Sequence[tuple[float, float]], dist: CameraDistribution) -> torch.Tensor:
    """``(len(views), 25)`` cameras at the given (yaw, pitch) radians, protocol radius and focal."""
    yp = torch.tensor([list(v) for v in views], dtype=torch.float32).reshape(-1, 2)
    return dist.framing.orbit(yp[:, 0], yp[:, 1])


class ControlSource(TypingProtocol):
    """Where FLAME controls (and optionally cameras) come from.

    ``draw(seed, set_name, stream, keys)`` returns :class:`Controls` for the keys (camera may be None-like:
    a zero-width tensor means "no camera; use the protocol's distribution"). ``describe()`` enters the
    sample-cache key, so it must change whenever the draws would.
    """

    def draw(self, seed: int, set_name: str, stream: str, keys: Sequence[int]) -> Controls: ...

    def describe(self) -> dict: ...


class HeadPrior:
    """The head model's prior through ``omnibench.data.synth.sample_controls(n, seed, head, start_index)``.

    Called with one key at a time and a per-key seed, so draws are independent of batching even if the
    sampler itself were not.
    """

    def __init__(self, head: Any, sample_controls: Any, version: str | None = None,
                 framing: Framing = FRAMING_V1) -> None:
        self.head, self.sample_controls, self.version, self.framing = head, sample_controls, version, framing

    def draw(self, seed: int, set_name: str, stream: str, keys: Sequence[int]) -> Controls:
        kw = {} if self.framing == FRAMING_V1 else {"framing": self.framing}  # v1: the sampler's own default
        out = [self.sample_controls(1, index_seed(seed, set_name, stream, k), self.head, 0, **kw) for k in keys]
        return _to_controls(Controls.cat(out) if out else None, len(keys))

    def describe(self) -> dict:
        d = {
            "kind": "prior",
            "sampler": "omnibench.data.synth.sample_controls",
            "sampler_version": self.version,
            "head": getattr(self.head, "name", str(self.head)),
            "head_sha256": getattr(self.head, "sha256", None),
        }
        if self.framing != FRAMING_V1:  # v1 descriptions (and the cache keys made from them) stay as they were
            d["framing"] = self.framing.to_dict()
        return d


def _to_controls(c: Any, n: int) -> Controls:
    if c is None:
        raise OmnibenchError("control sampler returned nothing")
    if not isinstance(c, Controls):
        c = Controls(**{k: torch.as_tensor(c[k]) for k in ("camera", "shape", "expression", "pose")})
    if len(c) != n:
        raise OmnibenchError(f"control sampler returned {len(c)} rows, expected {n}")
    return Controls(*(t.detach().to("cpu", torch.float32) for t in (c.camera, c.shape, c.expression, c.pose)))


@dataclass
class LabelBank:
    """Rows of (camera, shape, expression, pose) from an EG3D-style ``dataset.json`` (rows sorted by path)."""

    controls: Controls
    sha256: str
    source: str

    @classmethod
    def from_dataset_json(cls, path: str | Path) -> LabelBank:
        p = Path(path)
        if p.is_dir():
            p = p / "dataset.json"
        if not p.is_file():
            raise OmnibenchError(f"label bank '{p}' not found: pass a dataset folder with a dataset.json")
        raw = p.read_bytes()
        try:
            data = json.loads(raw)
            cams = {str(r): list(c) for r, c in data["labels"]}
            flame = {str(r): f for r, f in data.get("flame") or []}
        except (ValueError, KeyError, TypeError) as exc:
            raise OmnibenchError(f"{p}: not an EG3D-style dataset.json ({exc})") from None
        if not flame:
            raise OmnibenchError(f"{p}: has no 'flame' labels; use a protocol with flame_source 'prior'")
        rows = sorted(set(cams) & set(flame))
        if not rows:
            raise OmnibenchError(f"{p}: no image has both a camera and a FLAME label")
        try:
            controls = Controls(
                camera=torch.tensor([cams[r] for r in rows], dtype=torch.float32),
                shape=torch.tensor([flame[r]["shape"] for r in rows], dtype=torch.float32),
                expression=torch.tensor([flame[r]["expression"] for r in rows], dtype=torch.float32),
                pose=torch.tensor([flame[r]["pose"] for r in rows], dtype=torch.float32),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise OmnibenchError(f"{p}: malformed FLAME or camera labels ({exc})") from None
        if controls.camera.shape[1] != 25 or controls.pose.shape[1] != POSE_DIM:
            raise OmnibenchError(f"{p}: cameras must have 25 values and poses {POSE_DIM}")
        return cls(controls, hashlib.sha256(raw).hexdigest(), str(p))

    def draw(self, seed: int, set_name: str, stream: str, keys: Sequence[int]) -> Controls:
        n = len(self.controls)
        rows = [int(torch.randint(n, (1,), generator=index_generator(seed, set_name, stream, k))) for k in keys]
        return self.controls.index(torch.tensor(rows, dtype=torch.long))

    def describe(self) -> dict:
        return {"kind": "labels", "sha256": self.sha256, "rows": len(self.controls)}


@dataclass
class SampleSpec:
    """Inputs of a contiguous run of one set: ``z (B, z_dim)``, ``controls``, ``group``/``member`` ``(B,)``."""

    index: torch.Tensor
    group: torch.Tensor
    member: torch.Tensor
    z: torch.Tensor
    controls: Controls


def draw_samples(protocol: Protocol, set_name: str, indices: Sequence[int], z_dim: int, source: ControlSource) -> SampleSpec:
    """Latents and controls of the given global indices of ``set_name`` (any order, any subset)."""
    size = protocol.set_size(set_name)
    idx = [int(i) for i in indices]
    if idx and (min(idx) < 0 or max(idx) >= size.n):
        raise OmnibenchError(f"sample index out of range for set '{set_name}' ({size.n} samples)")
    groups = [i // size.n_members for i in idx]
    members = [i % size.n_members for i in idx]
    seed = protocol.seed
    if set_name == "main":
        z = latents(seed, set_name, idx, z_dim)
        c = source.draw(seed, set_name, "flame", idx)
        camera = c.camera if c.camera.shape[-1] == 25 else orbit_cameras(protocol.camera, seed, set_name, idx)
        controls = Controls(camera, c.shape, c.expression, c.pose)
    elif set_name == "views":
        z = latents(seed, set_name, groups, z_dim)
        c = source.draw(seed, set_name, "flame", groups)
        cams = fixed_cameras(protocol.view_list, protocol.camera)
        controls = Controls(cams[torch.tensor(members, dtype=torch.long)], c.shape, c.expression, c.pose)
    elif set_name == "expr":
        z = latents(seed, set_name, groups, z_dim)
        ident = source.draw(seed, set_name, "identity", groups)
        var = source.draw(seed, set_name, "expression", idx)
        cam = fixed_cameras([protocol.expr_view], protocol.camera).expand(len(idx), 25).clone()
        controls = Controls(cam, ident.shape, var.expression, var.pose)
    else:  # pragma: no cover - set_size already checked
        raise OmnibenchError(f"unknown sample set '{set_name}'")
    t = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return SampleSpec(t(idx), t(groups), t(members), z, controls)
