"""``--option KEY=VALUE`` (repeatable) as the commands that take it read it."""

from __future__ import annotations

from omnibench.errors import OmnibenchError


def parse_options(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (keys and values stripped); an item without ``=`` or key is one error."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OmnibenchError(f"--option expects KEY=VALUE, got '{item}'")
        options[key.strip()] = value.strip()
    return options
