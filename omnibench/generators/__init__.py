"""Generator registry: built-in generators plus the ``omnibench.generators`` entry-point group.

``--ckpt NAME`` resolves a built-in name here; ``--ckpt PATH`` is passed to the generator selected by
``--generator`` (a registry name or ``module:Class``), or to the one whose checkpoint format matches.
"""

from __future__ import annotations

from omnibench.generators.base import Controls, FlameLayout, Generator, GeneratorOutput
from omnibench.registry import Registry

GENERATORS: Registry[type[Generator]] = Registry("generator", entry_point_group="omnibench.generators")
GENERATORS.register("noise", "omnibench.generators.noise:NoiseGenerator")
GENERATORS.register("oracle", "omnibench.generators.oracle:OracleGenerator")
GENERATORS.register("oracle-noexpr", "omnibench.generators.oracle:OracleNoExprGenerator")
GENERATORS.register("oracle-noshape", "omnibench.generators.oracle:OracleNoShapeGenerator")
GENERATORS.register("eg3d", "omnibench.generators.eg3d.generator:EG3DGenerator")
GENERATORS.register("next3d", "omnibench.generators.eg3d.generator:Next3DGenerator")
GENERATORS.register("omniavatar-pkl", "omnibench.generators.eg3d.generator:OmniAvatarPklGenerator")
GENERATORS.register("torchscript", "omnibench.generators.exported:TorchScriptGenerator")
GENERATORS.register("onnx", "omnibench.generators.exported:OnnxGenerator")

__all__ = ["GENERATORS", "Controls", "FlameLayout", "Generator", "GeneratorOutput"]
