"""Stand-in weight files of the field's estimators with their exact key layouts and random values, built at
test time from torchvision/timm directly (not through omnibench's network classes), as real-checkpoints.md
§6.4, §7 and §8 describe them."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

DECA_E_FLAME_ENTRIES = 322  # real-checkpoints.md §6.4 (53 of them num_batches_tracked)


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


def write_emoca_folder(root: Path, n_expression_out: int = 53, seed: int = 0, cfg: str | None = None) -> Path:
    """An EMOCA model folder: ``cfg.yaml`` + ``detail/checkpoints/*.ckpt`` (a Lightning-like dict whose
    ``state_dict`` keys are prefixed ``deca.`` and whose hyper-parameters are unpicklable-by-weights-only objects)."""
    state = OrderedDict()
    for k, v in resnet_coder_state(236, seed).items():
        state[f"deca.E_flame.{k}"] = v
    for k, v in resnet_coder_state(n_expression_out, seed + 10).items():
        state[f"deca.E_expression.{k}"] = v
    state["deca.E_detail.layers.0.weight"] = torch.zeros(2, 2)
    ckpt = root / "detail" / "checkpoints" / "deca-epoch=03-val_loss=-0.05.ckpt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    hp = {"model_params": FakeDictConfig({"expression_backbone": "deca_clone"})}
    torch.save({"epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.4.9", "state_dict": state,
                "hyper_parameters": hp, "optimizer_states": []}, ckpt)
    if cfg is None:
        cfg = ("coarse:\n  model:\n    expression_backbone: deca_clone\n    exp_deca_jaw_pose: true\n"
               "    exp_deca_global_pose: false\n    n_exp: 50\n"
               "detail:\n  model:\n    expression_backbone: deca_clone\n    exp_deca_jaw_pose: true\n"
               "    exp_deca_global_pose: false\n    n_exp: 50\n")
    (root / "cfg.yaml").write_text(cfg)
    return root


def write_smirk_pt(path: Path, seed: int = 0) -> Path:
    """``SMIRK_em1.pt``: flat state dict, ``smirk_encoder.`` (three timm MobileNetV3 ``features_only`` trunks +
    Linear heads) and ``smirk_generator.`` (a small fake)."""
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
