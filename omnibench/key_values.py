"""Repeatable ``KEY=VALUE`` command-line items (``evaluate``/``export`` ``--option``, ``train gan --set``) as a dict.

In the core, not in ``omnibench.cli``, so plug-in packages' own commands read them the same way without
importing the CLI."""

from __future__ import annotations

from omnibench.errors import OmnibenchError


def parse_options(items: list[str], flag: str = "--option") -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}`` (keys and values stripped); an item without ``=`` or key is one error
    naming ``flag``."""
    options: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OmnibenchError(f"{flag} expects KEY=VALUE, got '{item}'")
        options[key.strip()] = value.strip()
    return options
