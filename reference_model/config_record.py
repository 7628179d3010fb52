"""What the Stage I and Stage II configurations share: a frozen dataclass that travels in checkpoints as a dict."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="ConfigRecord")


class ConfigRecord:
    """Mixin of the reference model's frozen config dataclasses.

    ``to_dict`` / ``from_dict`` round-trip a config through a checkpoint (unknown keys are ignored, lists come back
    as tuples, keys missing from files written before a field existed take ``LEGACY_DEFAULTS``, which reproduce
    those files' behaviour); ``with_overrides`` applies command-line values, ``None`` meaning "keep".
    """

    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict) -> C:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        known = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        for k, v in cls.LEGACY_DEFAULTS.items():
            known.setdefault(k, v)
        return cls(**known)

    def with_overrides(self: C, **kw) -> C:
        return replace(self, **{k: v for k, v in kw.items() if v is not None})  # type: ignore[type-var]
