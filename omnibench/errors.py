"""User-facing errors.

Any :class:`OmnibenchError` raised below the CLI is printed as one line (``omnibench: error: ...``)
and the process exits with code 2, without a traceback and without leaving partial result files.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OmnibenchError(Exception):
    """Bad input or a missing asset: one actionable message, exit code 2."""

    exit_code = 2


class MissingAssetError(OmnibenchError):
    """A required file (weights, head model, dataset) was not found."""


class CheckpointError(OmnibenchError):
    """A checkpoint is missing, corrupt, or of the wrong kind."""


class ResultFileError(OmnibenchError):
    """A result file is malformed or incompatible."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
