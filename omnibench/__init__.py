"""omnibench: evaluation suite for controllable 3D head synthesis.

The core package (heads, protocol, generator interface, cache, results, assets) depends on none of
the sibling packages `metrics` and `reference_model`; those plug in through registries and entry points.
"""

__version__ = "0.1.0"
