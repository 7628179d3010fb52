"""synthflame: a deterministic synthetic head written in exactly the FLAME file layout (flame.md §5).

It is *not* FLAME and contains no MPI data; it exists so every FLAME-facing code path (loading, LBS,
landmarks, masks, eyelids, fitting, re-estimation metrics) can run and be tested without the licensed
files. Entry point::

    from omnibench.heads.synthetic import make_synthetic_head
    folder = make_synthetic_head("small", seed=0)   # -> Path holding generic_model.pkl, embeddings, ...

Presets: ``tiny`` (plumbing tests), ``small`` (default), ``flame-count`` (V=5023, F=9976).
``build_head(preset, seed)`` returns the arrays in memory (mesh, regions, rig, landmarks, FLAME-layout
dict) without writing anything; ``reference_lbs`` is the independent float64 forward pass used for
validation (an oracle for the production one). See docs/synthetic-head.md.
"""

from omnibench.heads.synthetic.generate import (
    GENERATOR_NAME,
    GENERATOR_VERSION,
    default_dir,
    make_synthetic_head,
    manifest_is_valid,
)
from omnibench.heads.synthetic.model import SynthHead, build_head
from omnibench.heads.synthetic.presets import PRESETS
from omnibench.heads.synthetic.reference_lbs import reference_lbs
from omnibench.heads.synthetic.validate import SynthValidationError

__all__ = [
    "GENERATOR_NAME",
    "GENERATOR_VERSION",
    "PRESETS",
    "SynthHead",
    "SynthValidationError",
    "build_head",
    "default_dir",
    "make_synthetic_head",
    "manifest_is_valid",
    "reference_lbs",
]
