"""The one generator interface every head generator implements (built-in, reference model, plug-ins).

Conventions
-----------
* ``z``: ``(B, z_dim)`` float32 latent, standard normal unless a generator says otherwise.
* ``Controls.camera``: ``(B, 25)`` EG3D camera labels (see :mod:`omnibench.cameras`).
* ``Controls.shape``: ``(B, n_shape)`` FLAME shape coefficients (unit variance, columns 0.. of ``shapedirs``).
* ``Controls.expression``: ``(B, n_expression)`` FLAME expression coefficients (``shapedirs`` columns 300..).
* ``Controls.pose``: ``(B, 15)`` FLAME axis-angle pose ``[global 0:3 | neck 3:6 | jaw 6:9 | leye 9:12 |
  reye 12:15]`` (radians). DECA's 6 values ``[global | jaw]`` map to indices 0:3 and 6:9.
  The head's global rotation is usually left at zero; head/camera rotation is carried by the camera.
* Output images: ``(B, 3, H, W)`` float in [0, 1] or uint8; optional ``depth`` ``(B, H, W)`` metres along
  the camera's optical axis (``inf`` or 0 where ``mask`` is 0) and ``mask`` ``(B, H, W)`` in [0, 1].
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import torch

from omnibench.errors import CheckpointError, OmnibenchError
from omnibench.fileio import atomic_torch_save
from omnibench.heads.loader import POSE_DIM  # FLAME axis-angle pose [global|neck|jaw|leye|reye]

# The controls a generator may honour (``Generator.controls``) and a metric may need
# (``Metric.required_controls``): the camera, FLAME shape and expression, and the four parts of the FLAME pose
# (global_pose = pose[0:3], neck = pose[3:6], jaw = pose[6:9], eyes = pose[9:15]).
CONTROL_NAMES: tuple[str, ...] = ("camera", "shape", "expression", "global_pose", "neck", "jaw", "eyes")


def check_controls(names: frozenset[str] | set[str] | tuple[str, ...], owner: str) -> frozenset[str]:
    """``names`` as a frozenset after checking each is one of :data:`CONTROL_NAMES` (a plug-in declaring
    another name raises :class:`OmnibenchError` naming it)."""
    unknown = sorted(set(names) - set(CONTROL_NAMES))
    if unknown:
        raise OmnibenchError(f"{owner} declares unknown control(s) {', '.join(unknown)}; known: "
                             f"{', '.join(CONTROL_NAMES)}")
    return frozenset(names)


@dataclass(frozen=True)
class FlameLayout:
    """How many FLAME coefficients a generator consumes (extra ones are ignored; missing ones are 0)."""

    n_shape: int = 100
    n_expression: int = 50
    pose_dim: int = POSE_DIM


@dataclass
class Controls:
    """Per-sample controls; every tensor has batch dimension B first."""

    camera: torch.Tensor
    shape: torch.Tensor
    expression: torch.Tensor
    pose: torch.Tensor

    def __len__(self) -> int:
        return int(self.camera.shape[0])

    def to(self, device: torch.device | str) -> Controls:
        return Controls(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def index(self, idx: slice | torch.Tensor | list[int]) -> Controls:
        return Controls(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def cat(items: list[Controls]) -> Controls:
        return Controls(**{f.name: torch.cat([getattr(c, f.name) for c in items]) for f in fields(Controls)})

    def fit_layout(self, layout: FlameLayout) -> Controls:
        """Truncate or zero-pad shape and expression to ``layout``."""

        def fit(t: torch.Tensor, n: int) -> torch.Tensor:
            if t.shape[1] >= n:
                return t[:, :n]
            return torch.nn.functional.pad(t, (0, n - t.shape[1]))

        return Controls(self.camera, fit(self.shape, layout.n_shape), fit(self.expression, layout.n_expression), self.pose)


@dataclass
class GeneratorOutput:
    image: torch.Tensor
    depth: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def image_uint8(self) -> torch.Tensor:
        """Images as ``(B, 3, H, W)`` uint8 (float inputs are clamped to [0, 1] and rounded)."""
        if self.image.dtype == torch.uint8:
            return self.image
        return (self.image.clamp(0, 1) * 255).round().to(torch.uint8)


class Generator(ABC):
    """Base class of head generators.

    Subclasses set ``z_dim``, ``resolution``, ``flame_layout``, ``provides_depth`` and ``controls`` (the
    :data:`CONTROL_NAMES` it honours; default all of them) and implement :meth:`synthesize`. Metrics that need
    a control the generator ignores are reported as not applicable instead of being computed. ``load(ckpt, device)`` builds an instance from a checkpoint path or name.
    ``describe()`` feeds the result file's ``checkpoint`` block. Optional hooks with defaults:
    :meth:`at_resolution` (render natively at the protocol's size) and :meth:`read_expression` (read the
    expression back from images, for ``omnibench control-response``).
    """

    name: str = "generator"
    z_dim: int = 512
    resolution: int = 64
    flame_layout: FlameLayout = FlameLayout()
    provides_depth: bool = False
    controls: frozenset[str] = frozenset(CONTROL_NAMES)  # the controls it honours; the others it ignores
    head_model: str | None = None  # name or path of the head model its FLAME controls refer to
    checkpoint_kind: str | None = None  # the ``kind`` its checkpoint files carry (None: takes no checkpoint)
    path: str | os.PathLike | None = None  # the checkpoint file this instance was loaded from, if any
    # ``--option KEY=VALUE`` keys the generator reads (name -> one-line help); non-empty: ``load`` takes ``options``
    options: ClassVar[dict[str, str]] = {}

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> Generator:
        """Build the generator from ``ckpt`` (a path, or None for built-ins)."""
        if ckpt is not None and cls.checkpoint_kind is None:
            raise CheckpointError(f"generator '{cls.name}' takes no checkpoint file; use --ckpt {cls.name}")
        return cls()  # type: ignore[call-arg]

    @classmethod
    def named_checkpoints(cls) -> dict[str, str]:
        """Checkpoints this generator ships or finds by name (``--ckpt NAME``): ``{name: path}``; default none."""
        return {}

    @classmethod
    def accepts(cls, path: str | os.PathLike) -> bool:
        """True if ``path`` is a checkpoint this generator reads (default: its ``checkpoint_kind`` header)."""
        if cls.checkpoint_kind is None:
            return False
        try:
            return read_checkpoint_kind(path) == cls.checkpoint_kind
        except CheckpointError:
            return False

    @abstractmethod
    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        """Render one image per row of ``z``/``controls``; must be deterministic given its inputs."""

    def at_resolution(self, resolution: int) -> Generator:
        """This generator rendering natively at ``resolution`` (px), if it can; default: unchanged.

        The engine calls it with the protocol's resolution before resizing anything; generators with a free
        output size (e.g. the oracle renderer) override it to return a copy that renders at that size.
        """
        return self

    def read_expression(self, images: torch.Tensor, camera: torch.Tensor) -> torch.Tensor | None:
        """Optional hook: the generator's own reading of the expression shown in ``images``; default None.

        ``images`` ``(B, 3, H, W)`` float in [0, 1] (its own outputs, or another generator's for the same
        controls), ``camera`` ``(B, 25)`` the cameras they were rendered with. Returns ``(B, K)`` expression
        coefficients on the CPU (K: the generator's own width, compared with the first K requested ones), or
        None when the generator has no such read-out. Generators with a control encoder implement it (the
        OmniAvatar adapter: the frozen encoder ``E`` of ``L_enc``); ``omnibench control-response``
        (:mod:`omnibench.control_response`) reports its per-column correlation with the requested expression.
        """
        return None

    @property
    def display_name(self) -> str:
        """How messages name this instance (default :attr:`name`; a generator whose checkpoints hold variants, e.g.
        an ablation that honours fewer controls, says which)."""
        return self.name

    def honoured_controls(self) -> frozenset[str]:
        """The controls this instance honours (checked against :data:`CONTROL_NAMES`)."""
        return check_controls(self.controls, f"generator '{self.name}'")

    def describe(self) -> dict:
        return {"generator": self.name, "z_dim": self.z_dim, "resolution": self.resolution}


# --- checkpoint files --------------------------------------------------------------------------------
# Every omnibench checkpoint (generators, the reference model's W / G / E, estimator and backbone weights) is a
# ``torch.save``d dict that starts with the header ``"kind"`` (what it holds, e.g. ``"omnibench.gan"``) and
# ``"format"`` (that kind's layout version), followed by the payload; it is written by :func:`save_checkpoint`
# and read with ``torch.load(weights_only=True)`` (never unpickles code) by :func:`read_checkpoint` /
# :func:`load_checkpoint`, so the kind can be checked before any weights are interpreted. Also read: a header
# without ``"format"`` (format 1), the nested ``{"omnibench_checkpoint": {"kind", "format"}}`` header this module
# wrote before the header was shared, and the FLAME regressor's ``"format_version"``.

CHECKPOINT_FORMAT = 1
_HEADER_KEYS = ("kind", "format", "omnibench_checkpoint", "format_version")


def save_checkpoint(path: str | os.PathLike, kind: str, payload: dict[str, Any], format: int = CHECKPOINT_FORMAT) -> None:
    """Atomically write ``payload`` behind the header ``{"kind": kind, "format": format}``.

    Header keys already in ``payload`` (a checkpoint read back and written again) are replaced.
    """
    body = {k: v for k, v in payload.items() if k not in _HEADER_KEYS}
    atomic_torch_save({"kind": kind, "format": int(format), **body}, path)


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The whole file, ``torch.load(weights_only=True)`` on CPU (memory-mapped where the file allows).

    Missing or unreadable files raise :class:`CheckpointError`.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint '{p}' does not exist")
    try:
        return torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) files cannot be mmapped
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt or foreign file
            raise CheckpointError(
                f"checkpoint '{p}' is corrupt or not a readable torch file ({type(exc).__name__}); "
                "re-export or re-download it"
            ) from None


def _header(data: Any) -> dict:
    if not isinstance(data, dict):
        return {}
    nested = data.get("omnibench_checkpoint")
    return nested if isinstance(nested, dict) and nested.get("kind") else data


def checkpoint_kind(data: Any) -> str | None:
    """The ``kind`` of a loaded checkpoint, None if it has no header."""
    kind = _header(data).get("kind")
    return str(kind) if isinstance(kind, str) and kind else None


def checkpoint_format(data: Any) -> int | None:
    """The ``format`` of a loaded checkpoint (1 where the header has none), None if it has no header."""
    if checkpoint_kind(data) is None:
        return None
    header = _header(data)
    found = header.get("format", header.get("format_version", 1))
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def read_checkpoint_kind(path: str | os.PathLike) -> str | None:
    """The checkpoint's kind, None if it has none. Missing or unreadable files raise :class:`CheckpointError`."""
    return checkpoint_kind(read_checkpoint(path))


def load_checkpoint(path: str | os.PathLike, kind: str, formats: tuple[int, ...] = (CHECKPOINT_FORMAT,),
                    name: str | None = None, hint: str = "pass the right --generator") -> dict[str, Any]:
    """Load a checkpoint of ``kind`` in one of ``formats``; missing, corrupt, other-kind and other-format files
    raise :class:`CheckpointError`. ``name`` says what such a file holds in messages ("an OmniAvatar
    generator"); ``hint`` tells the user what to do about a file of another kind."""
    data = read_checkpoint(path)
    found = checkpoint_kind(data)
    if found != kind:
        what = f"a '{found}' checkpoint" if found else "not an omnibench checkpoint"
        wanted = f"not {name} ('{kind}')" if name else f"expected kind '{kind}'"
        raise CheckpointError(f"checkpoint '{path}' is {what}, {wanted}" + (f"; {hint}" if hint else ""))
    version = checkpoint_format(data)
    if version not in formats:
        raise CheckpointError(
            f"checkpoint '{path}': '{kind}' format {version} is not supported (this omnibench reads format "
            f"{', '.join(map(str, formats))}); upgrade omnibench or re-export the file"
        )
    return data
