"""``emoca``: DECA's coarse encoder plus EMOCA's expression encoder, read from the user's EMOCA model
(real-checkpoints.md §7).

Weights: an EMOCA model folder (``cfg.yaml`` + ``detail/checkpoints/*.ckpt``, else ``coarse/...``; several
checkpoints: the lowest ``val_loss=`` in the file name, as EMOCA's ``locate_checkpoint`` picks 'best') or a
``.ckpt`` file (its ``cfg.yaml`` looked for two folders up). The Lightning checkpoint pickles OmegaConf
hyper-parameters, which a weights-only load refuses: it is read with
:class:`metrics.estimators.safe_load.StubUnpickler` (nothing from the file runs) and only ``state_dict`` is
kept: ``deca.E_flame.*`` (DECA's layout) and ``deca.E_expression.*`` (a second ResNet-50 + MLP, the
``deca_clone`` backbone of the final EMOCA).

Variant: ``cfg.yaml``'s ``coarse.model`` (``expression_backbone``, ``exp_deca_jaw_pose``,
``exp_deca_global_pose``, ``n_exp``) checked against the rows of ``E_expression.layers.2.weight`` (``n_exp`` +
3 per pose part); without ``cfg.yaml`` the rows decide (``n_exp`` + 3 = jaw, EMOCA's default; + 6 = global and
jaw). EMOCA's expression (and the pose parts it predicts) replace DECA's, as its ``decompose_code`` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from metrics.estimators.crop_encoder import user_weights
from metrics.estimators.deca import DecaEstimator, ResnetCoder, load_e_flame, split_deca_code
from metrics.estimators.safe_load import load_strict, read_torch_file, sub_state
from omnibench.errors import CheckpointError

N_EXP = 50


def find_checkpoint(folder: Path) -> Path:
    """The EMOCA checkpoint of a model folder: ``detail`` before ``coarse``, lowest ``val_loss`` first."""
    for stage in ("detail", "coarse"):
        ckpts = sorted((folder / stage / "checkpoints").glob("*.ckpt"))
        if ckpts:
            def loss(p: Path) -> float:
                m = re.search(r"val_loss=(-?[0-9.]+?)(?:\.ckpt|-|$)", p.name)
                return float(m.group(1)) if m else float("inf")

            return min(ckpts, key=lambda p: (loss(p), p.name))
    raise CheckpointError(f"EMOCA model folder '{folder}' has no detail/checkpoints/*.ckpt or coarse/checkpoints/*.ckpt")


def read_config(ckpt: Path) -> dict[str, Any] | None:
    """``coarse.model`` of the model folder's ``cfg.yaml`` (None when absent)."""
    import yaml

    for cfg in (ckpt.parent / "cfg.yaml", ckpt.parents[2] / "cfg.yaml" if len(ckpt.parents) > 2 else None):
        if cfg is not None and cfg.is_file():
            try:
                doc = yaml.safe_load(cfg.read_text())
            except yaml.YAMLError as exc:
                raise CheckpointError(f"EMOCA config '{cfg}' is not valid YAML: {str(exc).splitlines()[0]}") from None
            model = ((doc or {}).get("coarse") or doc or {}).get("model")
            return dict(model) if isinstance(model, dict) else None
    return None


def expression_variant(config: dict[str, Any] | None, rows: int) -> dict[str, Any]:
    """``{"global": bool, "jaw": bool, "n_exp": int, "source": "cfg.yaml" | "tensor shapes"}`` for an
    ``E_expression`` with ``rows`` outputs."""
    if config is not None:
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
    version = 1

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
        rows = expr.get("layers.2.weight")
        if not isinstance(rows, torch.Tensor) or rows.ndim != 2:
            raise CheckpointError(f"EMOCA checkpoint '{ckpt}': deca.E_expression.layers.2.weight missing")
        self.variant = expression_variant(read_config(ckpt), int(rows.shape[0]))
        self.checkpoint = ckpt
        e_flame = load_e_flame(ckpt, flame, f"EMOCA checkpoint '{ckpt}' deca.E_flame")
        e_expr = ResnetCoder(int(rows.shape[0]))
        load_strict(e_expr, expr, f"EMOCA checkpoint '{ckpt}' deca.E_expression")
        return EmocaNet(e_flame, e_expr, self.variant)

    def encode(self, crops: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(crops)

    def describe(self) -> dict[str, Any]:
        from omnibench.assets import sha256_file

        d = super().describe()
        d.update({"sha256": sha256_file(self.checkpoint), "weights": self.checkpoint.name, "variant": self.variant})
        return d
