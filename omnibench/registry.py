"""A generic name -> object registry with lazy ``"module:attr"`` entries.

One instance exists per plug-in kind (generators, metrics, estimators, backbones, protocols).
Lazy entries keep ``omnibench --help`` fast and heavy dependencies optional.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from omnibench.errors import OmnibenchError, suggest

T = TypeVar("T")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def load_object(spec: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    if ":" not in spec:
        raise OmnibenchError(f"expected 'module:attr', got '{spec}'")
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise OmnibenchError(f"cannot import '{module_name}' for '{spec}': {exc}") from exc
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise OmnibenchError(f"'{module_name}' has no attribute '{attr}'") from exc
    return obj


class Registry(Generic[T]):
    """Name -> object (or lazy ``"module:attr"`` string) with aliases and 'did you mean'."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: T | str, *, aliases: tuple[str, ...] = (), replace: bool = False) -> None:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``."""
        for n in (name, *aliases):
            if not _NAME_RE.match(n):
                raise ValueError(f"invalid {self.kind} name '{n}': letters, digits, '_', '-', '.' only")
            if not replace and (n in self._items or n in self._aliases):
                raise ValueError(f"{self.kind} '{n}' is already registered")
        self._items[name] = obj
        for a in aliases:
            self._aliases[a] = name

    def decorator(self, name: str, **kw: Any) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            self.register(name, obj, **kw)
            return obj

        return wrap

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            if ep.name not in self._items:
                self._items[ep.name] = ep.value

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Resolve ``name`` (or an alias), importing lazy entries; unknown names raise with a suggestion."""
        self._load_entry_points()
        key = self._aliases.get(name, name)
        if key not in self._items:
            raise OmnibenchError(
                f"unknown {self.kind} '{name}'{suggest(name, self.names())}; available: {', '.join(self.names())}"
            )
        obj = self._items[key]
        if isinstance(obj, str):
            obj = load_object(obj)
            self._items[key] = obj
        return obj  # type: ignore[return-value]
