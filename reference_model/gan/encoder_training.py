"""Training, held-out scoring and files of the frozen control encoder E behind ``L_enc``.

E is trained before Stage II and frozen. By default ``omnibench train gan`` trains it on the GAN's own
training set (the paper's recipe). ``omnibench train gan-encoder`` trains it once on any labelled renders
of the same head model (several folders, plus an optional *finish* phase on one set so its estimates are
calibrated to that set's control prior) and writes a file that ``omnibench train gan --encoder E.pt``
freezes into one or more runs, so ablations share the very same E. The file records where E came from
(dataset content hashes, recipe, head model sha256, held-out R^2) and that record travels into every
GAN checkpoint trained with it.

File: ``{"kind": "omnibench.gan-encoder", "format": 1, "code_version", "head_model": {"name", "sha256"},
"n_expression", "aligned", "recipe": {...}, "data": [{"path", "content_hash", "n"}], "finish_data": [...],
"heldout": {...} | None, "E": state_dict}``, loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from omnibench import __version__
from omnibench.assets import sha256_file
from omnibench.errors import CheckpointError, OmnibenchError
from omnibench.generators.base import load_checkpoint, save_checkpoint
from omnibench.heads.face_align import face_grid
from reference_model.gan.data import TrainingSet, load_training_set, seeded
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.generator import fit_columns

KIND = "omnibench.gan-encoder"
FORMAT = 1


@dataclass(frozen=True)
class EncoderRecipe:
    """Adam on MSE (expression + 10 x neck/jaw axis-angle); batches drawn with replacement from
    ``seed``; the last ``finish_fraction`` of the steps draw from the finish set only (if given).
    ``photometric > 0``: every training image gets a random global colour change of that strength
    (:func:`photometric_jitter`), so that E's read does not follow tint or brightness, a direction a generator
    could otherwise push to satisfy ``L_enc`` without moving the face."""

    steps: int = 600
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    finish_fraction: float = 0.0
    photometric: float = 0.0
    init_sha256: str = ""  # sha256 of the encoder file training started from ("" : from scratch)


# Fixed global colour changes of images in [0, 1] (name -> function) under which score_encoder measures how far
# E's expression read moves: brightness, a warm and a cool white balance, and a wash towards white.
TINTS = {
    "brighter": lambda x: x * 1.25,
    "darker": lambda x: x * 0.75,
    "warm": lambda x: x * torch.tensor([1.15, 1.0, 0.85], dtype=x.dtype, device=x.device)[None, :, None, None],
    "cool": lambda x: x * torch.tensor([0.85, 1.0, 1.15], dtype=x.dtype, device=x.device)[None, :, None, None],
    "whiter": lambda x: 0.6 * x + 0.4,
}


def photometric_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """A random global colour change per image of ``images (B, 3, H, W)`` in [0, 1]: brightness gain uniform in
    ``[1 - s, 1 + s]``, per-channel gains in ``[1 - s/2, 1 + s/2]``, then a blend of weight uniform in ``[0, s]``
    towards a uniform grey level in [0, 1]; clamped to [0, 1]. Draws come from ``generator`` (CPU)."""
    b = images.shape[0]
    u = torch.rand(b, 6, generator=generator).to(images)
    gain = (1 + strength * (2 * u[:, :1] - 1)) * (1 + strength / 2 * (2 * u[:, 1:4] - 1))  # (B, 3)
    mix, grey = strength * u[:, 4:5], u[:, 5:6]
    out = images * gain[:, :, None, None]
    out = out * (1 - mix[:, :, None, None]) + (grey * mix)[:, :, None, None]
    return out.clamp(0, 1)


def concat_training_sets(sets: list[TrainingSet]) -> TrainingSet:
    """One in-memory set from several (same image size; coefficient axes padded to the widest)."""
    if not sets:
        raise OmnibenchError("no dataset given")
    if len(sets) == 1:
        return sets[0]
    sizes = {tuple(s.images.shape[1:]) for s in sets}
    if len(sizes) != 1:
        raise OmnibenchError(f"datasets have different image sizes {sorted(sizes)}: render them at one --res")

    def cat(name: str) -> torch.Tensor:
        parts = [getattr(s, name) for s in sets]
        width = max(p.shape[1] for p in parts)
        return torch.cat([fit_columns(p, width) for p in parts])

    return TrainingSet(images=torch.cat([s.images for s in sets]), camera=torch.cat([s.camera for s in sets]),
                       shape=cat("shape"), expression=cat("expression"), pose=torch.cat([s.pose for s in sets]),
                       content_hash=",".join(s.content_hash for s in sets), path=",".join(s.path for s in sets))


def read_training_sets(paths: str) -> tuple[TrainingSet, list[dict]]:
    """Comma-separated dataset folders -> (one set, provenance records ``{path, content_hash, n}``)."""
    parts = [load_training_set(p) for p in paths.split(",") if p]
    if not parts:
        raise OmnibenchError(f"no dataset folder in '{paths}'")
    return concat_training_sets(parts), [{"path": s.path, "content_hash": s.content_hash, "n": len(s)} for s in parts]


def train_encoder(n_expression: int, aligned: bool, data: TrainingSet, recipe: EncoderRecipe, head=None,
                  finish: TrainingSet | None = None, quiet: bool = False, device: str | torch.device = "cpu",
                  init: ControlEncoder | None = None) -> ControlEncoder:
    """Fit E to the expression (first ``n_expression`` columns) and neck/jaw labels; deterministic for
    ``recipe.seed`` (batches drawn on the CPU). ``aligned``: face crops aligned by the labelled cameras (``head``
    gives the grid). ``init``: start from this encoder's weights (same layout) instead of a fresh one (fine-tuning;
    record its file's sha256 in ``recipe.init_sha256``). E is returned on ``device``, where it was trained."""
    if aligned and head is None:
        raise OmnibenchError("the face-aligned encoder needs the head model to build the face grid")
    torch.manual_seed(recipe.seed)
    E = ControlEncoder(n_expression, grid=face_grid(head).cpu() if aligned else None).to(device)
    if init is not None:
        if init.aligned != aligned or init.n_expression != n_expression:
            raise OmnibenchError(f"--init encoder is {'aligned' if init.aligned else 'whole-image'} with "
                                 f"{init.n_expression} expression columns; this run wants "
                                 f"{'aligned' if aligned else 'whole-image'} with {n_expression}")
        E.load_state_dict(init.state_dict())
    opt = torch.optim.Adam(E.parameters(), lr=recipe.lr)
    finish_from = recipe.steps - round(recipe.steps * recipe.finish_fraction) if finish is not None else recipe.steps
    for step in range(recipe.steps):
        src = finish if step >= finish_from else data
        idx = torch.randint(0, len(src), (min(recipe.batch, len(src)),), generator=seeded(recipe.seed, 11, step))
        b = {k: v.to(device) for k, v in src.batch(idx).items()}
        if recipe.photometric > 0:
            b["image"] = photometric_jitter(b["image"], recipe.photometric, seeded(recipe.seed, 12, step))
        e, nj = E(b["image"], b["camera"])
        loss = (e - fit_columns(b["expression"], n_expression)).square().mean() + (nj - b["pose"][:, 3:9]).square().mean() * 10
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not quiet and (step + 1) % max(1, recipe.steps // 10) == 0:
            print(f"[encoder] step {step + 1}/{recipe.steps} mse {float(loss.detach()):.4f}", file=sys.stderr)
    return E.eval().requires_grad_(False)


@torch.no_grad()
def score_encoder(E: ControlEncoder, data: TrainingSet, batch: int = 256) -> dict:
    """Held-out accuracy: per-column R^2 of expression, R^2 of the jaw (pose 6:9), RMSE against predicting 0;
    and ``tint_shift``: per :data:`TINTS` entry, the RMS change of E's expression read when every image gets that
    global colour change (0: E ignores it; compare with ``expression_rmse_zero``, the spread of the labels)."""
    est_e, est_nj = [], []
    shift = {name: 0.0 for name in TINTS}
    for i in range(0, len(data), batch):
        b = data.batch(torch.arange(i, min(i + batch, len(data))))
        e, nj = E(b["image"], b["camera"])
        est_e.append(e)
        est_nj.append(nj)
        for name, tint in TINTS.items():
            shift[name] += float((E(tint(b["image"]).clamp(0, 1), b["camera"])[0] - e).square().sum())
    e, nj = torch.cat(est_e), torch.cat(est_nj)
    truth = fit_columns(data.expression, E.n_expression)
    jaw_true, jaw_est = data.pose[:, 6:9], nj[:, 3:6]

    def r2(t: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return 1 - (t - p).square().sum(0) / (t - t.mean(0)).square().sum(0).clamp_min(1e-12)

    col = r2(truth, e)
    return {"n": len(data), "expression_r2": [round(float(v), 4) for v in col],
            "expression_r2_mean": round(float(col.mean()), 4),
            "expression_rmse": round(float((e - truth).square().mean().sqrt()), 4),
            "expression_rmse_zero": round(float(truth.square().mean().sqrt()), 4),
            "jaw_r2": round(float(1 - (jaw_true - jaw_est).square().sum() / (jaw_true - jaw_true.mean(0)).square().sum()), 4),
            "tint_shift": {name: round((v / e.numel()) ** 0.5, 4) for name, v in shift.items()},
            "data": {"path": data.path, "content_hash": data.content_hash}}


def save_encoder(path: str | os.PathLike, E: ControlEncoder, head, recipe: EncoderRecipe, data: list[dict],
                 finish_data: list[dict], heldout: dict | None) -> Path:
    out = Path(path)
    save_checkpoint(out, KIND, {"code_version": __version__,
                                "head_model": {"name": str(getattr(head, "name", "")), "sha256": str(getattr(head, "sha256", ""))},
                                "n_expression": E.n_expression, "aligned": E.aligned, "recipe": asdict(recipe),
                                "data": data, "finish_data": finish_data, "heldout": heldout, "E": E.state_dict()}, FORMAT)
    return out


def load_encoder(path: str | os.PathLike, head=None) -> tuple[ControlEncoder, dict]:
    """(frozen E, provenance without the weights); refuses another kind, format or head model."""
    p = Path(path)
    f = load_checkpoint(p, KIND, (FORMAT,), name="a control encoder", hint="write one with omnibench train gan-encoder")
    want = str(getattr(head, "sha256", "")) if head is not None else ""
    if want and f["head_model"]["sha256"] != want:
        raise CheckpointError(f"'{p}' was trained for head model '{f['head_model']['name']}' "
                              f"(sha256 {f['head_model']['sha256'][:12]}), not '{getattr(head, 'name', '?')}'")
    try:
        E = ControlEncoder.from_state_dict(int(f["n_expression"]), f["E"])
    except (RuntimeError, KeyError) as exc:
        raise CheckpointError(f"'{p}': encoder weights do not match its header ({str(exc).splitlines()[0]})") from None
    meta = {k: v for k, v in f.items() if k != "E"}
    meta["sha256"] = sha256_file(p)
    return E.eval().requires_grad_(False), meta
