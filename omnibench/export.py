"""``omnibench export``: write a generator as a file with the documented signature and metadata
(:mod:`omnibench.generators.exported`), so that it runs without its Python code.

The generator's ``synthesize`` is traced on one sample (B = 1: many generators bake the batch size into grouped
convolutions); TorchScript files wrap that trace in a scripted loop over the batch, ONNX files keep B = 1 (the
``onnx`` generator calls them per sample). Before anything is written, the file's outputs on random samples
other than the traced one are compared with the generator's own: a generator whose trace would not generalise
(Python-side randomness, hashing, data-dependent branches) is refused instead of exported wrongly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

import torch

from omnibench.errors import OmnibenchError
from omnibench.fileio import atomic_path
from omnibench.generators.base import CONTROL_NAMES, POSE_DIM, Controls, Generator
from omnibench.generators.exported import INPUT_NAMES, METADATA_KEY, ExportMetadata

FORMATS = ("torchscript", "onnx")
TOLERANCE = 1e-4  # largest |exported - eager| accepted on the check samples (images in [0, 1], depth in m)
N_CHECK = 2  # check samples (not the traced one) compared before anything is written


class OneSample(torch.nn.Module):
    """``forward(z, camera, shape, expression, pose) -> (image[, depth])`` through ``gen.synthesize``."""

    def __init__(self, gen: Generator, truncation_psi: float) -> None:
        super().__init__()
        self.gen, self.psi = gen, float(truncation_psi)
        for i, m in enumerate(v for v in vars(gen).values() if isinstance(v, torch.nn.Module)):
            self.add_module(f"net{i}", m)  # parameters travel with the trace

    def forward(self, z, camera, shape, expression, pose):  # noqa: D102
        out = self.gen.synthesize(z, Controls(camera, shape, expression, pose), self.psi)
        image = out.image.float() / 255 if out.image.dtype == torch.uint8 else out.image.float()
        return (image, out.depth.float()) if out.depth is not None else (image,)


class Batched(torch.nn.Module):
    """A traced one-sample module applied to each row of the batch (TorchScript)."""

    def __init__(self, one: torch.nn.Module) -> None:
        super().__init__()
        self.one = one

    def forward(self, z: torch.Tensor, camera: torch.Tensor, shape: torch.Tensor, expression: torch.Tensor,
                pose: torch.Tensor) -> list[torch.Tensor]:
        rows: list[list[torch.Tensor]] = []
        for i in range(z.shape[0]):
            rows.append(list(self.one(z[i:i + 1], camera[i:i + 1], shape[i:i + 1], expression[i:i + 1],
                                      pose[i:i + 1])))
        return [torch.cat([r[k] for r in rows]) for k in range(len(rows[0]))]


def example_inputs(gen: Generator, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    """``n`` plausible samples (latents, yaw/pitch within 0.4 rad, small FLAME values) for tracing and checks."""
    from omnibench.cameras import FRAMINGS

    g = torch.Generator().manual_seed(seed)
    yaw, pitch = (torch.rand(n, generator=g) - 0.5) * 0.8, (torch.rand(n, generator=g) - 0.5) * 0.4
    framing = FRAMINGS.get(str(getattr(gen, "framing", "v1")), FRAMINGS["v1"])
    lay = gen.flame_layout
    return (torch.randn(n, gen.z_dim, generator=g), framing.orbit(yaw, pitch).float(),
            torch.randn(n, lay.n_shape, generator=g) * 0.5, torch.randn(n, lay.n_expression, generator=g) * 0.5,
            torch.randn(n, POSE_DIM, generator=g) * 0.05)


def metadata(gen: Generator, outputs: list[str], truncation_psi: float, source: dict) -> ExportMetadata:
    lay = gen.flame_layout
    return ExportMetadata(
        z_dim=int(gen.z_dim), resolution=int(gen.resolution),
        flame_layout={"n_shape": int(lay.n_shape), "n_expression": int(lay.n_expression), "pose_dim": POSE_DIM},
        controls=[c for c in CONTROL_NAMES if c in gen.honoured_controls()], outputs=outputs,
        truncation_psi=float(truncation_psi), head_model=gen.head_model, source=source,
    )


def export_generator(gen: Generator, fmt: str, out: str | Path, truncation_psi: float = 1.0,
                     source: dict | None = None) -> ExportMetadata:
    """Write ``gen`` to ``out`` as ``fmt`` (:data:`FORMATS`); atomically, after checking the file's outputs
    against the generator's on check samples. Returns the metadata written."""
    if fmt not in FORMATS:
        raise OmnibenchError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    one = OneSample(gen, truncation_psi).eval()
    example = example_inputs(gen, 1, seed=0)
    with torch.no_grad():
        outputs = ["image", "depth"][: len(one(*example))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings; the check below decides
            traced = torch.jit.trace(one, example, check_trace=False)
    meta = metadata(gen, outputs, truncation_psi, source or {})
    check = example_inputs(gen, N_CHECK, seed=1)
    with torch.no_grad():
        expected = [one(*(t[i:i + 1] for t in check)) for i in range(N_CHECK)]
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream; still the format here
        if fmt == "torchscript":
            module = torch.jit.script(Batched(traced))
            torch.jit.save(module, str(tmp), _extra_files={METADATA_KEY: meta.to_json()})
            got = [module(*(t[i:i + 1] for t in check)) for i in range(N_CHECK)]
        else:
            got = _write_onnx(traced, example, tmp, meta, check)
        worst = max(float((a - b).abs().max()) for e, g in zip(expected, got) for a, b in zip(e, g))
        if worst > TOLERANCE:
            raise OmnibenchError(
                f"generator '{gen.name}' cannot be exported faithfully: the {fmt} file differs from it by {worst:.3g} "
                "on check samples (its synthesize depends on Python-side state the trace cannot keep)"
            )
    return meta


ONNX_OPSET = 17


def _register_onnx_symbolics() -> None:
    """ONNX forms of operators the legacy exporter lacks: ``exp2(x) = Pow(2, x)``; ``cumprod(x) =
    Exp(CumSum(Log(x)))``, exact for x >= 0 (volume rendering's transmittance; other inputs give NaN, which the
    check against the generator then refuses)."""
    from torch.onnx import symbolic_helper as sh

    def exp2(g, x):  # noqa: ANN001 - the exporter's symbolic signature
        two = g.op("Constant", value_t=torch.tensor(2.0, dtype=torch.float32))
        return g.op("Pow", two, x)

    def cumprod(g, x, dim, dtype=None):  # noqa: ANN001
        axis = g.op("Constant", value_t=torch.tensor(sh._get_const(dim, "i", "dim"), dtype=torch.int64))
        return g.op("Exp", g.op("CumSum", g.op("Log", x), axis))

    torch.onnx.register_custom_op_symbolic("aten::exp2", exp2, ONNX_OPSET)
    torch.onnx.register_custom_op_symbolic("aten::cumprod", cumprod, ONNX_OPSET)


@contextlib.contextmanager
def _quiet_fds():
    """Silence file descriptors 1 and 2 (the exporter prints whole graphs from C++ on failure)."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _write_onnx(traced: torch.nn.Module, example: tuple, tmp: Path, meta: ExportMetadata,
                check: tuple) -> list[tuple[torch.Tensor, ...]]:
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise OmnibenchError("--format onnx needs the onnx and onnxruntime packages: pip install "
                             "'omnibench[onnx]'") from None
    _register_onnx_symbolics()
    try:
        with warnings.catch_warnings(), _quiet_fds():
            warnings.simplefilter("ignore")
            torch.onnx.export(traced, example, str(tmp), dynamo=False, input_names=list(INPUT_NAMES),
                              output_names=meta.outputs, opset_version=ONNX_OPSET)
    except Exception as exc:  # noqa: BLE001 - an operator ONNX lacks: one line, then the torchscript advice
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise OmnibenchError(f"cannot export to ONNX ({first}); use --format torchscript") from None
    model = onnx.load(str(tmp))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, meta.to_json()
    onnx.save(model, str(tmp))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(tmp), opts, providers=["CPUExecutionProvider"])
    kept = {i.name for i in session.get_inputs()}  # the exporter drops inputs the model ignores
    return [tuple(torch.from_numpy(o) for o in session.run(None, {n: t[i:i + 1].numpy()
                                                                  for n, t in zip(INPUT_NAMES, check) if n in kept}))
            for i in range(N_CHECK)]
