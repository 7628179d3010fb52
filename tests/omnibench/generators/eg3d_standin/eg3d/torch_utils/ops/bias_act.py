"""Stand-in of the custom op ``bias_act``: the plugin path is taken only on CUDA when ``_init()`` succeeds."""

import torch


def _init():
    """Compiles the CUDA plugin in a real checkout; here: no compiler, as on a machine without nvcc."""
    raise RuntimeError("bias_act: cannot compile the CUDA plugin (nvcc not found)")


def apply(x: torch.Tensor, impl: str = "cuda") -> torch.Tensor:
    if impl == "cuda" and x.device.type == "cuda" and _init():
        raise AssertionError("plugin path")
    return x
