"""Stand-in weight files of the field's estimators with their exact key layouts and random values, built at
test time from torchvision/timm directly (not through omnibench's network classes). The layouts were checked
against the upstream code (docs/metrics-control.md, "Verified against"): DECA's ``ResnetEncoder`` and
``DECA.model_dict()``, EMOCA's ``DecaModule.deca`` (``ExpDECA``) and ``locate_checkpoint``, SMIRK's
``SmirkEncoder`` and ``save_model``."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

DECA_E_FLAME_ENTRIES = 322  # DECA's ResnetEncoder(236).state_dict() (53 of them num_batches_tracked)


def resnet_coder_state(n_out: int, seed: int) -> OrderedDict:
    """DECA's ``ResnetEncoder`` state: ``encoder.`` + torchvision ResNet-50 without fc, ``layers.0``/``layers.2``."""
    from torchvision.models import resnet50

    torch.manual_seed(seed)
    trunk = resnet50(weights=None).state_dict()
    state = OrderedDict((f"encoder.{k}", v) for k, v in trunk.items() if not k.startswith("fc."))
    g = torch.Generator().manual_seed(seed + 1)
    state["layers.0.weight"] = torch.randn(1024, 2048, generator=g) * 0.02
    state["layers.0.bias"] = torch.zeros(1024)
    state["layers.2.weight"] = torch.randn(n_out, 1024, generator=g) * 0.01
    state["layers.2.bias"] = torch.zeros(n_out)
    return state


def write_deca_tar(path: Path, e_flame: OrderedDict | None = None, seed: int = 0) -> Path:
    """``deca_model.tar``: ``{'E_flame', 'E_detail', 'D_detail'}`` state dicts (the detail parts small fakes)."""
    e_flame = resnet_coder_state(236, seed) if e_flame is None else e_flame
    torch.save({"E_flame": e_flame, "E_detail": OrderedDict(w=torch.zeros(2)), "D_detail": OrderedDict(w=torch.zeros(2))},
               path)
    return path


class FakeDictConfig:
    """Stands for OmegaConf's DictConfig in a Lightning checkpoint: a class the weights-only loader refuses.
    Unpickling it *executed* would flip :data:`EXECUTED`."""

    def __init__(self, content: dict) -> None:
        self._content = content

    def __setstate__(self, state: dict) -> None:
        EXECUTED.append(True)
        self.__dict__.update(state)


EXECUTED: list[bool] = []


class FakeModelCheckpoint:
    """Stands for Lightning 1.x's ``ModelCheckpoint`` class, which its checkpoints pickle as a ``callbacks`` key."""


# EMOCA's released checkpoints sit one folder deeper than the stage's checkpoints/: Lightning's file name holds
# the metric name 'val_loss/dataloader_idx_0', whose '/' makes a folder (EMOCA's locate_checkpoint uses rglob
# and reads the loss after the last '=').
EMOCA_CKPT = "deca-epoch=10-val_loss/dataloader_idx_0=3.25521111.ckpt"
EMOCA_CFG = ("{stage}:\n  model:\n    deca_class: ExpDECA\n    expression_backbone: deca_clone\n"
             "    exp_deca_jaw_pose: true\n    exp_deca_global_pose: false\n    n_exp: 50\n    n_pose: 6\n")


def write_emoca_folder(root: Path, n_expression_out: int = 53, seed: int = 0, cfg: str | None = None,
                       stage: str = "detail", name: str = EMOCA_CKPT) -> Path:
    """An EMOCA model folder: ``cfg.yaml`` (``coarse`` and ``detail`` sections) + ``<stage>/checkpoints/<name>``:
    a Lightning-like dict whose ``state_dict`` is ``DecaModule``'s (``deca.E_flame``, ``deca.E_expression`` as
    ``ExpDECA`` builds them with ``deca_clone``; ``deca.E_detail``/``deca.D_detail`` small fakes) and whose
    hyper-parameters and callback keys are objects a weights-only load refuses."""
    state = OrderedDict()
    for k, v in resnet_coder_state(236, seed).items():
        state[f"deca.E_flame.{k}"] = v
    for k, v in resnet_coder_state(n_expression_out, seed + 10).items():
        state[f"deca.E_expression.{k}"] = v
    state["deca.E_detail.layers.2.weight"] = torch.zeros(2, 2)
    state["deca.D_detail.conv_blocks.0.weight"] = torch.zeros(2, 2)
    ckpt = root / stage / "checkpoints" / name
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    hp = {"model_params": FakeDictConfig({"expression_backbone": "deca_clone"})}
    callbacks = {FakeModelCheckpoint: {"monitor": "val_loss/dataloader_idx_0", "best_model_path": str(ckpt)}}
    torch.save({"epoch": 10, "global_step": 100, "pytorch-lightning_version": "1.4.9", "state_dict": state,
                "callbacks": callbacks, "hyper_parameters": hp, "optimizer_states": [], "lr_schedulers": []}, ckpt)
    if cfg is None:
        cfg = EMOCA_CFG.format(stage="coarse") + EMOCA_CFG.format(stage="detail")
    (root / "cfg.yaml").write_text(cfg)
    return root


def write_smirk_pt(path: Path, seed: int = 0) -> Path:
    """``SMIRK_em1.pt`` as SMIRK's ``save_model`` writes it: a flat state dict, ``smirk_encoder.`` (``SmirkEncoder``:
    three timm MobileNetV3 ``features_only`` trunks + Linear heads) and ``smirk_generator.`` (a small fake)."""
    import timm

    torch.manual_seed(seed)
    state = OrderedDict()
    parts = (("pose_encoder", "tf_mobilenetv3_small_minimal_100", "pose_cam_layers", 6),
             ("shape_encoder", "tf_mobilenetv3_large_minimal_100", "shape_layers", 300),
             ("expression_encoder", "tf_mobilenetv3_large_minimal_100", "expression_layers", 55))
    for name, arch, head, n in parts:
        trunk = timm.create_model(arch, pretrained=False, features_only=True)
        for k, v in trunk.state_dict().items():
            state[f"smirk_encoder.{name}.encoder.{k}"] = v
        c = trunk.feature_info[-1]["num_chs"]
        state[f"smirk_encoder.{name}.{head}.0.weight"] = torch.randn(n, c) * 0.01
        state[f"smirk_encoder.{name}.{head}.0.bias"] = torch.zeros(n)
    state["smirk_generator.conv.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return path
