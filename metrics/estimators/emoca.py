"""``emoca``: DECA's coarse encoder plus EMOCA's expression encoder, read from the user's EMOCA model
(docs/metrics-control.md, "deca, emoca, smirk"; checked against radekd91/emoca, see there).

Weights: an EMOCA model folder (``cfg.yaml`` + ``detail/checkpoints/**.ckpt``, else ``coarse/...``) or a ``.ckpt``
file. In a folder the checkpoint is picked as EMOCA's ``locate_checkpoint(mode='best')`` does: all ``*.ckpt``
under ``<stage>/checkpoints`` recursively (the released names contain a ``/``, e.g.
``deca-epoch=10-val_loss/dataloader_idx_0=3.25521111.ckpt``), ``last.ckpt`` skipped, the loss = the number after
the last ``=`` of the file stem, the lowest wins (the last of equals in sorted order). ``cfg.yaml`` is looked for
in the folders above the checkpoint; its section is the checkpoint's stage (``detail`` unless the checkpoint lies
under ``coarse/``), as EMOCA's ``load_model`` reads ``conf[stage]``. The Lightning checkpoint pickles other objects
(OmegaConf hyper-parameters, callback classes), which a weights-only load refuses: it is read with
:class:`metrics.estimators.safe_load.StubUnpickler` (nothing from the file runs) and only ``state_dict`` is kept:
``deca.E_flame.*`` (DECA's layout) and ``deca.E_expression.*`` (a second ResNet-50 + MLP, the ``deca_clone``
backbone of the final EMOCA: ``ExpDECA`` attributes under ``DecaModule.deca``).

Variant: ``cfg.yaml``'s ``model`` (``deca_class`` must be ``ExpDECA``: ``EMICA`` takes its shape from MICA, not
supported; ``expression_backbone``, ``exp_deca_jaw_pose``, ``exp_deca_global_pose``, ``n_exp``) checked against
the rows of ``E_expression.layers.2.weight`` (``n_exp`` + 3 per pose part); without ``cfg.yaml`` the rows decide
(``n_exp`` + 3 is read as jaw, the ``emoca_conf`` default, though global-only has the same shape; + 6 = global and
jaw). EMOCA's expression (and the pose parts it predicts) replace DECA's, as ``ExpDECA.decompose_code`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from metrics.estimators.crop_encoder import user_weights
from metrics.estimators.deca import DecaEstimator, ResnetCoder, load_e_flame, split_deca_code
from metrics.estimators.safe_load import load_strict, read_torch_file, sub_state
from omnibench.errors import CheckpointError

N_EXP = 50


def _stem_loss(path: Path) -> float | None:
    """EMOCA's 'best' score of a checkpoint: the number after the last ``=`` of its stem (None when not a number)."""
    tail = path.stem[path.stem.rfind("=") + 1:]
    try:
        return float(tail)
    except ValueError:
        return None


def find_checkpoint(folder: Path) -> Path:
    """The EMOCA checkpoint of a model folder: ``detail`` before ``coarse``; within a stage as EMOCA's
    ``locate_checkpoint(mode='best')`` (module docstring). A stage whose only checkpoint names no loss gives that
    one; several without losses are an error (EMOCA's own loader fails there too)."""
    for stage in ("detail", "coarse"):
        ckpts = sorted((folder / stage / "checkpoints").rglob("*.ckpt"))
        if not ckpts:
            continue
        scored = [(loss, p) for p in ckpts if p.stem != "last" and (loss := _stem_loss(p)) is not None]
        if not scored:
            if len(ckpts) == 1:
                return ckpts[0]
            raise CheckpointError(f"EMOCA model folder '{folder}': none of the {len(ckpts)} checkpoints under "
                                  f"{stage}/checkpoints ends in '=<loss>.ckpt': pass the one to use as weights=")
        best = min(loss for loss, _ in scored)
        return [p for loss, p in scored if loss == best][-1]
    raise CheckpointError(f"EMOCA model folder '{folder}' has no detail/checkpoints/**.ckpt or coarse/checkpoints/**.ckpt")


def read_config(ckpt: Path) -> dict[str, Any] | None:
    """``<stage>.model`` of the model folder's ``cfg.yaml`` (the nearest one above ``ckpt``; the stage is ``coarse``
    when the checkpoint lies under ``coarse/``, else ``detail``); None when there is none."""
    import yaml

    ckpt = ckpt.resolve()
    for folder in list(ckpt.parents)[:4]:  # <root>/<stage>/checkpoints/<name-part>/<file>.ckpt at most
        cfg = folder / "cfg.yaml"
        if not cfg.is_file():
            continue
        try:
            doc = yaml.safe_load(cfg.read_text())
        except yaml.YAMLError as exc:
            raise CheckpointError(f"EMOCA config '{cfg}' is not valid YAML: {str(exc).splitlines()[0]}") from None
        doc = doc if isinstance(doc, dict) else {}
        rel = ckpt.relative_to(folder).parts
        stage = "coarse" if rel and rel[0] == "coarse" else "detail"
        other = "detail" if stage == "coarse" else "coarse"
        section = doc.get(stage) or doc.get(other) or doc
        model = section.get("model") if isinstance(section, dict) else None
        return dict(model) if isinstance(model, dict) else None
    return None


def expression_variant(config: dict[str, Any] | None, rows: int) -> dict[str, Any]:
    """``{"global": bool, "jaw": bool, "n_exp": int, "source": "cfg.yaml" | "tensor shapes"}`` for an
    ``E_expression`` with ``rows`` outputs."""
    if config is not None:
        deca_class = config.get("deca_class")
        if deca_class is not None and deca_class != "ExpDECA":
            raise CheckpointError(f"EMOCA deca_class '{deca_class}' is not supported (only 'ExpDECA', EMOCA; 'EMICA' "
                                  "takes its shape from MICA)")
        backbone = config.get("expression_backbone", "deca_clone")
        if backbone != "deca_clone":
            raise CheckpointError(f"EMOCA expression backbone '{backbone}' is not supported (only 'deca_clone', the final EMOCA)")
        n_exp = int(config.get("n_exp", N_EXP))
        glob, jaw = bool(config.get("exp_deca_global_pose", False)), bool(config.get("exp_deca_jaw_pose", False))
        want = n_exp + 3 * (glob + jaw)
        if rows != want:
            raise CheckpointError(f"EMOCA E_expression has {rows} outputs but cfg.yaml implies {want} "
                                  f"(n_exp {n_exp}, global pose {glob}, jaw pose {jaw})")
        return {"global": glob, "jaw": jaw, "n_exp": n_exp, "source": "cfg.yaml"}
    extra = rows - N_EXP
    if extra not in (0, 3, 6):
        raise CheckpointError(f"EMOCA E_expression has {rows} outputs: expected {N_EXP}, {N_EXP + 3} or {N_EXP + 6}")
    return {"global": extra == 6, "jaw": extra >= 3, "n_exp": N_EXP, "source": "tensor shapes"}


class EmocaNet(nn.Module):
    """``E_flame`` (DECA's coarse encoder) + ``E_expression`` (a second :class:`ResnetCoder`)."""

    def __init__(self, e_flame: ResnetCoder, e_expression: ResnetCoder, variant: dict[str, Any]) -> None:
        super().__init__()
        self.E_flame, self.E_expression, self.variant = e_flame, e_expression, variant

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return merge_codes(split_deca_code(self.E_flame(x)), self.E_expression(x), self.variant)


def merge_codes(deca: dict[str, torch.Tensor], exp_code: torch.Tensor, variant: dict[str, Any]) -> dict[str, torch.Tensor]:
    """EMOCA's ``decompose_code``: expression from ``exp_code[:, :n_exp]``, then global and/or jaw (in that order)."""
    n = variant["n_exp"]
    out = dict(deca, expression=exp_code[:, :n])
    rest = exp_code[:, n:]
    if variant["global"]:
        out["global"], rest = rest[:, :3], rest[:, 3:]
    if variant["jaw"]:
        out["jaw"] = rest[:, :3]
    return out


class EmocaEstimator(DecaEstimator):
    """EMOCA (DECA's coarse encoder + EMOCA's expression encoder) on the user's EMOCA model folder or ``.ckpt``."""

    name = "emoca"
    version = 2  # 2: EMOCA's checkpoint pick (nested names) and cfg.yaml stage

    def weights_path(self, weights: str | None) -> Path:
        return user_weights(weights, "EMOCA_v2_lr_mse_20", "EMOCA", "an EMOCA model folder or its .ckpt")

    def load_network(self, path: Path) -> nn.Module:
        ckpt = find_checkpoint(path) if path.is_dir() else path
        blob, _ = read_torch_file(ckpt, "EMOCA checkpoint")
        state = blob.get("state_dict") if isinstance(blob, dict) else None
        if not isinstance(state, dict):
            raise CheckpointError(f"EMOCA checkpoint '{ckpt}' has no 'state_dict': is it an EMOCA Lightning .ckpt?")
        flame, expr = sub_state(state, "deca.E_flame."), sub_state(state, "deca.E_expression.")
        if not flame or not expr:
            raise CheckpointError(f"EMOCA checkpoint '{ckpt}' lacks deca.E_flame.* or deca.E_expression.* weights")
        if sub_state(state, "deca.E_mica."):
            raise CheckpointError(f"EMOCA checkpoint '{ckpt}' holds deca.E_mica.* (EMICA: shape from MICA), not supported")
        rows = expr.get("layers.2.weight")
        if not isinstance(rows, torch.Tensor) or rows.ndim != 2:
            raise CheckpointError(f"EMOCA checkpoint '{ckpt}': deca.E_expression.layers.2.weight missing")
        self.variant = expression_variant(read_config(ckpt), int(rows.shape[0]))
        self.checkpoint = ckpt
        self.checkpoint_label = ckpt.relative_to(path).as_posix() if path.is_dir() else ckpt.name
        e_flame = load_e_flame(ckpt, flame, f"EMOCA checkpoint '{ckpt}' deca.E_flame")
        e_expr = ResnetCoder(int(rows.shape[0]))
        load_strict(e_expr, expr, f"EMOCA checkpoint '{ckpt}' deca.E_expression")
        return EmocaNet(e_flame, e_expr, self.variant)

    def encode(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(crops)

    def describe(self) -> dict[str, Any]:
        from omnibench.assets import sha256_file

        d = super().describe()
        d.update({"sha256": sha256_file(self.checkpoint), "weights": self.checkpoint_label, "variant": self.variant})
        return d
