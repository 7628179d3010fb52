"""``regressor``: a small CNN that reads FLAME controls off an image (OmniAvatar-style encoder).

Trained on renders of one head model with known controls (:mod:`metrics.estimators.training`,
``omnibench estimators train``). It predicts shape (first ``n_shape``), expression (first
``n_expression``), neck and jaw axis-angle, camera yaw/pitch (an orbit camera at the training radius and
focal, looking at the head origin) and a face/no-face logit. Input: the image resized (antialiased
bilinear) to ``res`` px (default 64). BatchNorm runs in eval mode, so estimates do not depend on batching.

Two stages (checkpoint format 2, ``config["aligned"]``): the whole-image network above estimates the
camera; the image is then resampled on a grid of points of the head model's mean face projected with that
camera (:mod:`omnibench.heads.face_align`), and a second CNN (:class:`AlignedNet`) reads shape,
expression and jaw off that frontalised crop, where each facial feature sits on fixed pixels whatever
the view. Format-1 weights (one stage) still load.

Weights are looked up by the head model's ``sha256`` among ``metrics/estimators/weights/*.pt`` and
``<cache>/estimators/*.pt``; each ``.pt`` has a ``.json`` sidecar pinning its sha256, the head model and the
command that produced it. ``weights=PATH`` overrides the lookup.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metrics.estimators.base import Estimator, FlameEstimate, images_to_float
from omnibench.assets import cache_root, sha256_file
from omnibench.cameras import orbit_camera, recorded_framing
from omnibench.errors import CheckpointError, MissingAssetError, OmnibenchError
from omnibench.fileio import atomic_write_text
from omnibench.generators import base as checkpoints
from omnibench.heads.face_align import face_grid, frontalise

CHECKPOINT_KIND = "omnibench-flame-regressor"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DETECT_THRESHOLD = 0.5


def cache_weights_dir() -> Path:
    return cache_root() / "estimators"


def _block(cin: int, cout: int, double: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if double:
        layers += [nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class AlignedNet(nn.Module):
    """The face-aligned stage: a ``size`` px frontalised face crop (:mod:`omnibench.heads.face_align`) ->
    conv pairs (stride 1 then 2 per width; ``size`` -> ``size/8``), flatten, MLP -> ``n_out`` standardised
    values (shape, expression and jaw). About 15 M multiply-adds at ``size`` 32."""

    def __init__(self, n_out: int, size: int = 32, widths: tuple[int, ...] = (32, 48, 64, 96), hidden: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.hidden, self.dropout = hidden, dropout
        if size % 8 or len(widths) != 4:
            raise OmnibenchError(f"aligned stage needs a crop size divisible by 8 and 4 widths, got {size}, {widths}")

        def conv(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        w = widths
        self.features = nn.Sequential(*conv(3, w[0], 1), *conv(w[0], w[1], 2), *conv(w[1], w[1], 1),
                                      *conv(w[1], w[2], 2), *conv(w[2], w[2], 1), *conv(w[2], w[3], 2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(w[3] * (size // 8) ** 2, hidden),
                                  nn.ReLU(inplace=True), nn.Linear(hidden, n_out))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``crops``: float ``(B, 3, size, size)`` in [0, 1]."""
        return self.head(self.features(crops - 0.5))


def aligned_columns(n_shape: int, n_expression: int) -> torch.Tensor:
    """Indices of the output vector (:func:`output_layout`) the aligned stage predicts: shape, expression, jaw."""
    lay = output_layout(n_shape, n_expression)
    return torch.cat([torch.arange(lay[k].start, lay[k].stop) for k in ("shape", "expression", "jaw")])


class RegressorNet(nn.Module):
    """Stride-2 conv blocks (``res`` -> ``res/16``; the first block has one conv, the others two), flatten,
    MLP -> ``n_out`` values + 1 face logit. About 10 M multiply-adds per 64 px image (CPU-trainable).
    ``aligned`` (optional, set after training it): an :class:`AlignedNet` whose shape, expression and jaw
    replace this network's, read on the face crop that this network's camera estimate aligns."""

    aligned: AlignedNet | None

    def __init__(self, n_out: int, res: int = 64, widths: tuple[int, ...] = (16, 32, 64, 96), hidden: int = 256,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.aligned = None
        if res % 16:
            raise OmnibenchError(f"regressor resolution must be a multiple of 16, got {res}")
        chans = (3, *widths)
        self.features = nn.Sequential(*[_block(chans[i], chans[i + 1], double=i > 0) for i in range(len(widths))])
        side = res // 2 ** len(widths)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(widths[-1] * side * side, hidden),
                                  nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, n_out + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def center_crop(x: torch.Tensor, crop: float) -> torch.Tensor:
    """Keep the central ``crop`` fraction of each side (the orbit camera keeps the face there)."""
    if crop >= 1.0:
        return x
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * crop)), max(1, round(w * crop))
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def preprocess(images: torch.Tensor, res: int, crop: float = 1.0) -> torch.Tensor:
    """uint8/float ``(B, 3, H, W)`` -> central ``crop`` -> float ``(B, 3, res, res)``, normalised to about
    zero mean, unit range."""
    x = center_crop(images_to_float(images), crop)
    if x.shape[-2:] != (res, res):
        x = nn.functional.interpolate(x, size=(res, res), mode="bilinear", antialias=True, align_corners=False)
    return (x - 0.5) / 0.25


def output_layout(n_shape: int, n_expression: int) -> dict[str, slice]:
    """Where each group sits in the (de-normalised) output vector."""
    sizes = (("shape", n_shape), ("expression", n_expression), ("neck", 3), ("jaw", 3), ("yaw", 1), ("pitch", 1))
    out, i = {}, 0
    for name, n in sizes:
        out[name] = slice(i, i + n)
        i += n
    return out


def save_checkpoint(path: Path, net: RegressorNet, config: dict[str, Any], mean: torch.Tensor, std: torch.Tensor,
                    sidecar: dict[str, Any]) -> str:
    """Write ``path`` (fp16 weights) and ``path.json`` atomically; returns the file's sha256."""
    path = Path(path)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    checkpoints.save_checkpoint(path, CHECKPOINT_KIND, {"config": config, "mean": mean.float(), "std": std.float(), "state_dict": state},
                                format=2 if net.aligned is not None else 1)
    digest = sha256_file(path)
    meta = {"kind": CHECKPOINT_KIND, "file": path.name, "sha256": digest, **sidecar}
    atomic_write_text(str(path) + ".json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return digest


def read_sidecar(path: Path) -> dict[str, Any]:
    side = Path(str(path) + ".json")
    if not side.is_file():
        raise CheckpointError(f"regressor weights '{path}' have no sidecar '{side.name}' pinning their sha256")
    try:
        return json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"corrupt sidecar '{side}': {exc}") from None


def load_checkpoint(path: Path) -> tuple[RegressorNet, dict[str, Any], torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Verify ``path`` against its sidecar's sha256 and build the network (eval mode, float32)."""
    path = Path(path)
    if not path.is_file():
        raise MissingAssetError(f"regressor weights '{path}' not found")
    meta = read_sidecar(path)
    digest = sha256_file(path)
    if digest != meta.get("sha256"):
        raise CheckpointError(f"regressor weights '{path}' do not match their pinned sha256 ({digest} != {meta.get('sha256')})")
    # format 1: one network; 2: plus the face-aligned stage (files before the shared header: "format_version")
    blob = checkpoints.load_checkpoint(path, CHECKPOINT_KIND, (1, 2), name="a FLAME regressor",
                                       hint="train one with omnibench estimators train")
    cfg = blob["config"]
    net = RegressorNet(cfg["n_out"], cfg["res"], tuple(cfg["widths"]), cfg["hidden"], cfg.get("dropout", 0.0))
    if cfg.get("aligned"):
        a = cfg["aligned"]
        net.aligned = AlignedNet(a["n_out"], a["size"], tuple(a["widths"]), a["hidden"], a.get("dropout", 0.0))
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    except RuntimeError as exc:
        raise CheckpointError(f"regressor weights '{path}' do not fit this network version: {exc}") from None
    net.eval()
    return net, cfg, blob["mean"], blob["std"], meta


def weights_framing(meta: dict[str, Any]) -> str:
    """The camera framing a regressor was trained on, from its sidecar (weights from before framings: ``v1``)."""
    return recorded_framing(meta)


def find_weights(head_sha256: str | None, dirs: list[Path] | None = None, framing: str = "v1") -> Path | None:
    """The first ``*.pt`` (sorted by name) whose sidecar names the head model ``head_sha256`` and the camera
    framing ``framing`` (:data:`omnibench.cameras.FRAMINGS`)."""
    for d in dirs if dirs is not None else [WEIGHTS_DIR, cache_weights_dir()]:
        for pt in sorted(Path(d).glob("*.pt")) if Path(d).is_dir() else []:
            try:
                meta = read_sidecar(pt)
            except CheckpointError:
                continue
            if head_sha256 and meta.get("head", {}).get("sha256") == head_sha256 and weights_framing(meta) == framing:
                return pt
    return None


class RegressorEstimator(Estimator):
    """Small CNN trained on renders of the head model (the synthetic profile's default).

    Options: ``weights`` (a ``.pt`` path; default: looked up by the head model's sha256 and the framing),
    ``framing`` (the protocol's camera framing, filled in by the metrics: weights trained on another framing
    are refused, since the camera the network reads off an image depends on where the cameras sat)."""

    name = "regressor"
    version = 2  # 2: optional face-aligned second stage (format-2 weights)
    uses_framing = True

    def __init__(self, head_model: Any, device: str = "cpu", weights: str | None = None,
                 framing: str = "v1") -> None:
        super().__init__(head_model, device)
        head_sha = getattr(head_model, "sha256", None)
        path = Path(weights).expanduser() if weights else find_weights(head_sha, framing=framing)
        if path is None:
            raise MissingAssetError(
                f"no regressor weights for head model '{getattr(head_model, 'name', head_model)}' "
                f"(sha256 {head_sha}) and camera framing '{framing}'; train them with `omnibench estimators train "
                f"--head <head> --framing {framing} --out {cache_weights_dir()}/regressor-<name>.pt` or pass "
                "weights=PATH"
            )
        self.net, self.cfg, self.mean, self.std, self.meta = load_checkpoint(path)
        if weights_framing(self.meta) != framing:
            raise CheckpointError(
                f"regressor weights '{path}' were trained on camera framing '{weights_framing(self.meta)}', the "
                f"protocol frames its cameras as '{framing}': use weights trained for it (omnibench estimators "
                f"train --framing {framing}) or --option estimator=landmark-fit"
            )
        self.framing = framing
        trained_for = self.meta.get("head", {}).get("sha256")
        if head_sha and trained_for and trained_for != head_sha:
            raise CheckpointError(
                f"regressor weights '{path}' were trained for head model {self.meta['head'].get('name')} "
                f"(sha256 {trained_for}), not '{getattr(head_model, 'name', '?')}' ({head_sha})"
            )
        self.path = path
        self.net.to(self.device)
        self.layout = output_layout(self.cfg["n_shape"], self.cfg["n_expression"])
        self.grid = aligned_grid(head_model, self.cfg)

    @torch.no_grad()
    def estimate(self, images: torch.Tensor) -> FlameEstimate:
        return run_regressor(self.net, self.cfg, self.mean, self.std, images.to(self.device), self.grid)

    def describe(self) -> dict[str, Any]:
        d = {"name": self.name, "version": self.version, "sha256": self.meta.get("sha256"),
             "weights": self.path.name, "head": self.meta.get("head")}
        return d if self.framing == "v1" else {**d, "framing": self.framing}


def aligned_grid(head_model: Any, cfg: dict[str, Any]) -> torch.Tensor | None:
    """The face grid of ``cfg["aligned"]`` for ``head_model`` (None for single-stage weights)."""
    a = cfg.get("aligned")
    return None if not a else face_grid(head_model, a["size"], a["margin"], a["radius"])


def run_regressor(net: RegressorNet, cfg: dict[str, Any], mean: torch.Tensor, std: torch.Tensor,
                  images: torch.Tensor, grid: torch.Tensor | None) -> FlameEstimate:
    """Both stages on uint8/float images ``(B, 3, H, W)``: the whole-image network gives camera, neck, the
    face logit (and shape/expression/jaw for single-stage weights); the aligned stage, when present,
    re-reads shape, expression and jaw on the face crop its camera estimate aligns."""
    dev = next(net.parameters()).device
    crop = cfg.get("crop", 1.0)
    x = preprocess(images, cfg["res"], crop).to(dev)
    raw = net(x).float().cpu()
    if net.aligned is None or grid is None:
        return decode_outputs(raw, mean, std, cfg)
    camera = decode_outputs(raw, mean, std, cfg).camera
    full = x if crop >= 1.0 else preprocess(images, cfg["res"]).to(dev)  # the aligned stage reads the whole image
    crops = frontalise(full * 0.25 + 0.5, camera.to(dev), grid.to(dev))  # preprocess's scaling undone: [0, 1]
    raw[:, aligned_columns(cfg["n_shape"], cfg["n_expression"])] = net.aligned(crops).float().cpu()
    return decode_outputs(raw, mean, std, cfg)


def decode_outputs(raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, cfg: dict[str, Any]) -> FlameEstimate:
    """Network output ``(B, n_out + 1)`` -> :class:`FlameEstimate` (de-normalised, orbit camera)."""
    lay = output_layout(cfg["n_shape"], cfg["n_expression"])
    vals = raw[:, :-1] * std + mean
    conf = torch.sigmoid(raw[:, -1])
    pose = torch.zeros(raw.shape[0], 15)
    pose[:, 3:6], pose[:, 6:9] = vals[:, lay["neck"]], vals[:, lay["jaw"]]
    camera = orbit_camera(vals[:, lay["yaw"]][:, 0], vals[:, lay["pitch"]][:, 0], cfg["radius"], cfg["focal"],
                          tuple(cfg.get("look_at", (0.0, 0.0, 0.0))))
    return FlameEstimate(
        shape=vals[:, lay["shape"]].contiguous(),
        expression=vals[:, lay["expression"]].contiguous(),
        pose=pose,
        camera=camera,
        confidence=conf,
        detected=conf >= DETECT_THRESHOLD,
    )
