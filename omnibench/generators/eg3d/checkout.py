"""The user's EG3D-style checkout: where it is, whether it has what a pickle needs, one per process.

Every checkout of the family (EG3D, Next3D, OmniAvatar, StyleGAN2/3 forks) uses the same top-level module names
(:data:`TOP_LEVEL`), so two of them cannot share a process: :func:`activate` refuses a second, different one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omnibench.errors import CheckpointError, MissingAssetError

ENV_REPO = "OMNIBENCH_EG3D_REPO"
TOP_LEVEL = ("torch_utils", "dnnlib", "training", "legacy", "camera_utils", "training_avatar_texture")
REQUIRED_FILES = ("torch_utils/persistence.py", "legacy.py", "dnnlib/__init__.py")
CUSTOM_OPS = ("torch_utils.ops.bias_act", "torch_utils.ops.upfirdn2d", "torch_utils.ops.filtered_lrelu")


@dataclass(frozen=True)
class Checkout:
    """A located checkout: ``root`` is the folder holding ``torch_utils/``, ``dnnlib/`` and ``legacy.py``."""

    root: Path

    @staticmethod
    def locate(repo: str | os.PathLike | None, family: str) -> Checkout:
        """The checkout from ``--option repo=PATH`` or ``$OMNIBENCH_EG3D_REPO``: the folder itself or its ``eg3d/``
        subfolder (NVlabs/eg3d keeps the code there)."""
        if not repo:
            raise MissingAssetError(
                f"the {family} generator needs the user's own {family} code checkout: pass --option repo=PATH "
                f"(or set {ENV_REPO}); omnibench never ships it"
            )
        base = Path(repo).expanduser()
        if not base.is_dir():
            raise MissingAssetError(f"{family} checkout '{base}' is not a folder: pass --option repo=PATH of a clone")
        for root in (base, base / "eg3d"):
            if all((root / f).is_file() for f in REQUIRED_FILES):
                return Checkout(root.resolve())
        lacking = next(f for f in REQUIRED_FILES if not (base / f).is_file())
        raise MissingAssetError(f"{family} checkout '{base}' lacks {lacking}: pass --option repo=PATH of the "
                                "repository root (or its eg3d/ folder)")

    def has_module(self, dotted: str) -> bool:
        rel = Path(*dotted.split("."))
        return (self.root / rel.with_suffix(".py")).is_file() or (self.root / rel / "__init__.py").is_file()

    def module_file(self, dotted: str) -> str:
        rel = Path(*dotted.split("."))
        return str(rel / "__init__.py") if (self.root / rel).is_dir() else str(rel.with_suffix(".py"))

    def check_modules(self, modules: set[str], family: str) -> None:
        """Every module the pickle needs (its globals and its stored sources' imports) resolves: checkout
        modules exist under :attr:`root`, others are installed. Raises naming what is missing."""
        lacking, absent = [], []
        for m in sorted(modules):
            top = m.split(".")[0]
            if top in TOP_LEVEL or (self.root / top).is_dir() or (self.root / f"{top}.py").is_file():
                if not self.has_module(m):
                    lacking.append(self.module_file(m))
            elif top not in absent and not _installed(top):
                absent.append(top)
        if lacking:
            raise MissingAssetError(f"your {family} checkout '{self.root}' lacks {', '.join(lacking)}, which the "
                                    "pickle needs: pass --option repo=PATH of the code it was trained with")
        if absent:
            raise MissingAssetError(f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed; the "
                                    f"{family} pickle imports {'it' if len(absent) == 1 else 'them'}: pip install "
                                    "it into this environment")

    def describe(self) -> dict:
        return {"path": str(self.root), "git": _git_describe(self.root)}


def _installed(top: str) -> bool:
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _git_describe(root: Path) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True,
                           text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def loaded_root() -> Path | None:
    """The checkout whose family modules this process has imported (None: none yet)."""
    for name in TOP_LEVEL:
        mod = sys.modules.get(name)
        f = getattr(mod, "__file__", None) if mod is not None else None
        if f:
            p = Path(f).resolve()
            return p.parent.parent if p.name == "__init__.py" else p.parent
    return None


def activate(checkout: Checkout) -> None:
    """Put ``checkout`` first on ``sys.path``; refuse when another checkout's modules are already imported."""
    other = loaded_root()
    if other is not None and other != checkout.root:
        raise CheckpointError(
            f"another EG3D-style checkout ('{other}') is already loaded in this process and shares the module "
            f"names torch_utils/dnnlib/training/legacy with '{checkout.root}': evaluate one checkout per process"
        )
    if str(checkout.root) not in sys.path:
        sys.path.insert(0, str(checkout.root))
    importlib.invalidate_caches()


def disable_custom_ops() -> list[str]:
    """Make the checkout's custom CUDA ops report "unavailable" (their reference PyTorch path runs instead of
    compiling a plugin on first use); returns the modules patched."""
    patched = []
    for name in CUSTOM_OPS:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "_init"):
            mod._init = _no_plugin
            patched.append(name)
    return patched


def _no_plugin() -> bool:
    return False
