"""``omnibench evaluate``'s engine, one concern a module:

* :mod:`~omnibench.evaluation.engine` -- :func:`evaluate`: arguments, the run loop, the result file;
* :mod:`~omnibench.evaluation.context` -- :class:`EvalContext`, the engine's metric context (sample sets
  generated once into the cache, memos, the on-disk feature cache);
* :mod:`~omnibench.evaluation.draws` -- per-sample latents and controls keyed by (seed, set, index);
* :mod:`~omnibench.evaluation.generation` -- running the generator and checking its output;
* :mod:`~omnibench.evaluation.real_set` -- ``--real`` or the synthetic profile's default real set;
* :mod:`~omnibench.evaluation.provenance` -- metric entries, code version, environment, real-set block.
"""

from omnibench.evaluation.context import EvalContext
from omnibench.evaluation.engine import evaluate
from omnibench.evaluation.generation import GenerationError

__all__ = ["EvalContext", "GenerationError", "evaluate"]
