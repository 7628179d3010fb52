"""Stand-in ``dnnlib`` (tests only)."""

from .util import EasyDict  # noqa: F401
