"""``torchscript`` and ``onnx``: generators exported to a file omnibench runs directly (no Python class needed).

The file's contract
-------------------
``forward(z, camera, shape, expression, pose) -> (image, depth)`` or ``-> image``:

* inputs (float32): ``z`` ``(B, z_dim)``, ``camera`` ``(B, 25)`` (EG3D layout, see :mod:`omnibench.cameras`),
  ``shape`` ``(B, n_shape)``, ``expression`` ``(B, n_expression)``, ``pose`` ``(B, 15)``
  ``[global | neck | jaw | leye | reye]`` axis-angle; ONNX inputs are named ``z``, ``camera``, ``shape``,
  ``expression``, ``pose`` (inputs the model ignores may be absent: ONNX exporters drop them);
* outputs: ``image`` ``(B, 3, H, W)`` float in [0, 1]; ``depth`` ``(B, H, W)`` metres along the optical axis.
  omnibench calls the file one sample at a time (B = 1; ONNX files may fix B to 1), so a sample's image
  depends on its own inputs only.

Metadata (JSON; TorchScript: the extra file ``omnibench.json``; ONNX: the ``metadata_props`` key
``omnibench.json``): ``format`` = :data:`FORMAT`, ``format_version``, ``z_dim``, ``resolution``,
``flame_layout`` ``{n_shape, n_expression, pose_dim: 15}``, ``controls`` (names of
:data:`omnibench.generators.base.CONTROL_NAMES` it honours), ``outputs`` (``["image"]`` or
``["image", "depth"]``), ``truncation_psi`` (the one it was exported at), optional ``head_model`` (the head its
FLAME controls refer to) and ``source`` (what it was exported from). ``omnibench export`` writes these files.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import torch

from omnibench.errors import CheckpointError, OmnibenchError
from omnibench.generators.base import (
    CONTROL_NAMES,
    POSE_DIM,
    Controls,
    FlameLayout,
    Generator,
    GeneratorOutput,
)

FORMAT = "omnibench.exported-generator"
FORMAT_VERSION = 1
METADATA_KEY = "omnibench.json"
INPUT_NAMES = ("z", "camera", "shape", "expression", "pose")


@dataclass
class ExportMetadata:
    """The metadata block of an exported generator (see the module docstring)."""

    z_dim: int
    resolution: int
    flame_layout: dict
    controls: list[str]
    outputs: list[str]
    truncation_psi: float = 1.0
    head_model: str | None = None
    source: dict = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | None, path: str) -> ExportMetadata:
        """Parse and check the block; anything missing or malformed raises :class:`CheckpointError`."""
        def bad(why: str) -> CheckpointError:
            return CheckpointError(f"exported generator '{path}': {why}; re-export it with omnibench export")

        if not text:
            raise bad(f"no '{METADATA_KEY}' metadata block")
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise bad("its metadata is not valid JSON") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise bad(f"metadata 'format' is not '{FORMAT}'")
        if d.get("format_version") != FORMAT_VERSION:
            raise bad(f"metadata format_version {d.get('format_version')!r} is not supported (this omnibench reads "
                      f"{FORMAT_VERSION})")
        for key in ("z_dim", "resolution"):
            if not isinstance(d.get(key), int) or isinstance(d.get(key), bool) or d[key] < 1:
                raise bad(f"metadata '{key}' must be a positive integer, got {d.get(key)!r}")
        lay = d.get("flame_layout")
        if not (isinstance(lay, dict) and all(isinstance(lay.get(k), int) and lay[k] >= 0 for k in ("n_shape", "n_expression"))
                and lay.get("pose_dim") == POSE_DIM):
            raise bad(f"metadata 'flame_layout' must be {{n_shape, n_expression, pose_dim: {POSE_DIM}}}, got {lay!r}")
        ctl = d.get("controls")
        if not isinstance(ctl, list) or not set(ctl) <= set(CONTROL_NAMES):
            raise bad(f"metadata 'controls' must list names among {', '.join(CONTROL_NAMES)}, got {ctl!r}")
        if d.get("outputs") not in (["image"], ["image", "depth"]):
            raise bad(f"metadata 'outputs' must be [\"image\"] or [\"image\", \"depth\"], got {d.get('outputs')!r}")
        psi = d.get("truncation_psi", 1.0)
        if not isinstance(psi, (int, float)) or isinstance(psi, bool):
            raise bad(f"metadata 'truncation_psi' must be a number, got {psi!r}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class ExportedGenerator(Generator):
    """Shared runtime of exported files: one sample per call, outputs checked against the metadata."""

    checkpoint_kind = None
    suffixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, meta: ExportMetadata, path: str, device: str) -> None:
        self.meta, self.path, self.device = meta, path, device
        self.z_dim, self.resolution = meta.z_dim, meta.resolution
        self.flame_layout = FlameLayout(meta.flame_layout["n_shape"], meta.flame_layout["n_expression"])
        self.controls = frozenset(meta.controls)
        self.provides_depth = "depth" in meta.outputs
        self.head_model = meta.head_model

    @classmethod
    def load(cls, ckpt: str | None, device: str = "cpu") -> ExportedGenerator:
        if ckpt is None or not os.path.isfile(ckpt):
            raise CheckpointError(f"the {cls.name} generator needs an exported file: --ckpt PATH")
        gen = cls.open(ckpt, device)
        gen.probe()
        return gen

    @classmethod
    def open(cls, path: str, device: str) -> ExportedGenerator:
        raise NotImplementedError

    def run(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The file's forward on one sample's inputs (CPU float32), as a tuple of CPU tensors."""
        raise NotImplementedError

    def probe(self) -> None:
        """One call on a frontal sample: a file whose outputs contradict its metadata is refused here."""
        from omnibench.cameras import FRAMINGS

        zeros = torch.zeros(1)
        c = Controls(FRAMINGS["v1"].orbit(zeros, zeros).float(), torch.zeros(1, self.flame_layout.n_shape),
                     torch.zeros(1, self.flame_layout.n_expression), torch.zeros(1, POSE_DIM))
        self._one(torch.zeros(1, self.z_dim), c)

    def _one(self, z: torch.Tensor, c: Controls) -> tuple[torch.Tensor, torch.Tensor | None]:
        try:
            out = self.run((z, c.camera, c.shape, c.expression, c.pose))
        except OmnibenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a file whose signature is not the documented one
            raise CheckpointError(f"exported generator '{self.path}' does not run with the documented signature "
                                  f"(z, camera, shape, expression, pose): {type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
        r = self.resolution
        if len(out) != len(self.meta.outputs) or tuple(out[0].shape) != (1, 3, r, r):
            raise CheckpointError(
                f"exported generator '{self.path}' returned {len(out)} output(s) with image shape "
                f"{tuple(out[0].shape) if out else None}; its metadata promises {self.meta.outputs} and (1, 3, {r}, {r})"
            )
        depth = out[1] if len(out) > 1 else None
        if depth is not None and tuple(depth.shape) != (1, r, r):
            raise CheckpointError(f"exported generator '{self.path}' returned depth of shape {tuple(depth.shape)}, "
                                  f"expected (1, {r}, {r})")
        return out[0], depth

    @torch.no_grad()
    def synthesize(self, z: torch.Tensor, controls: Controls, truncation_psi: float = 1.0) -> GeneratorOutput:
        if abs(float(truncation_psi) - float(self.meta.truncation_psi)) > 1e-9:
            raise OmnibenchError(f"exported generator '{self.path}' was exported at truncation psi "
                                 f"{self.meta.truncation_psi}, the protocol asks {truncation_psi}: re-export it")
        c = controls.to("cpu").fit_layout(self.flame_layout)
        c = Controls(c.camera.float(), c.shape.float(), c.expression.float(), c.pose.float())
        z = z.detach().cpu().float()
        images, depths = [], []
        for i in range(len(z)):
            image, depth = self._one(z[i:i + 1], c.index(slice(i, i + 1)))
            images.append(image)
            depths.append(depth)
        return GeneratorOutput(image=torch.cat(images),
                               depth=torch.cat(depths) if self.provides_depth else None)  # type: ignore[arg-type]

    def describe(self) -> dict:
        return {**super().describe(), "format": self.name, "metadata": asdict(self.meta)}


class TorchScriptGenerator(ExportedGenerator):
    """A TorchScript file (``torch.jit.save``) with the documented signature and metadata."""

    name = "torchscript"

    @classmethod
    def accepts(cls, path: str | os.PathLike) -> bool:
        try:
            with zipfile.ZipFile(path) as zf:
                return any(n.endswith(f"/extra/{METADATA_KEY}") for n in zf.namelist())
        except (OSError, zipfile.BadZipFile):
            return False

    @classmethod
    def open(cls, path: str, device: str) -> TorchScriptGenerator:
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
                module = torch.jit.load(path, map_location="cpu", _extra_files=extra)
        except Exception as exc:  # noqa: BLE001 - corrupt or not TorchScript
            raise CheckpointError(f"'{path}' is not a readable TorchScript file ({type(exc).__name__}); re-export "
                                  "it with omnibench export") from None
        meta = ExportMetadata.from_json(extra[METADATA_KEY], path)
        n_args = len(module.forward.schema.arguments) - 1  # minus self
        if n_args != len(INPUT_NAMES):
            raise CheckpointError(f"exported generator '{path}': forward takes {n_args} inputs, the documented "
                                  "signature has 5 (z, camera, shape, expression, pose)")
        gen = cls(meta, path, device)
        gen.module = module.eval()
        return gen

    def run(self, inputs):
        out = self.module(*inputs)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class OnnxGenerator(ExportedGenerator):
    """An ONNX file (run with onnxruntime) with inputs ``z, camera, shape, expression, pose`` and the metadata."""

    name = "onnx"

    @classmethod
    def accepts(cls, path: str | os.PathLike) -> bool:
        return str(path).endswith(".onnx")

    @classmethod
    def open(cls, path: str, device: str) -> OnnxGenerator:
        try:
            import onnxruntime as ort
        except ImportError:
            raise OmnibenchError("running .onnx generators needs onnxruntime: pip install onnxruntime") from None
        try:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - corrupt or not ONNX
            raise CheckpointError(f"'{path}' is not a readable ONNX model ({type(exc).__name__}); re-export it with "
                                  "omnibench export") from None
        meta = ExportMetadata.from_json(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), path)
        names = [i.name for i in session.get_inputs()]
        if not names or len(set(names)) != len(names) or not set(names) <= set(INPUT_NAMES):
            raise CheckpointError(f"exported generator '{path}': ONNX inputs are {names}, the documented "
                                  f"signature is {list(INPUT_NAMES)} (inputs the model ignores may be left out)")
        gen = cls(meta, path, device)
        gen.session, gen.input_names = session, set(names)
        return gen

    def run(self, inputs):
        feed = {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs) if name in self.input_names}
        return tuple(torch.from_numpy(o) for o in self.session.run(None, feed))
