"""Metric contract and registries shared by the evaluation engine and the metric families.

A metric family (in the sibling package ``metrics``) registers :class:`Metric` subclasses into
:data:`METRICS` from its ``register_all(registries)`` entry point; the engine never imports it by name.
A metric sees one typed object, :class:`MetricContext`: the engine's
:class:`omnibench.evaluation.context.EvalContext` and the in-memory
:class:`omnibench.memory_context.InMemoryContext` (calibration, tests) both satisfy it.

Metric names on the command line are ``name`` or ``name@variant`` (``aed@rmse``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import torch

from omnibench.errors import OmnibenchError, suggest
from omnibench.generators.base import Controls
from omnibench.registry import Registry, load_object

if TYPE_CHECKING:  # the heavy modules stay unimported until a context hands their objects over
    from omnibench.heads import HeadModel
    from omnibench.imagesets import ImageSet
    from omnibench.protocol import Protocol as EvalProtocol

T = TypeVar("T")

DEFAULT_BATCH_SIZE = 16  # images per forward pass when none is given; batch size never changes a number


@dataclass
class SampleSet:
    """A generated sample set in global order.

    ``images`` uint8 ``(N, 3, H, W)``; ``depth`` ``(N, H, W)`` metres along the optical axis or None; ``mask``
    ``(N, H, W)`` in [0, 1] or None; ``z`` ``(N, z_dim)``; ``controls`` as drawn (before the generator's
    layout fit); ``index``, ``group``, ``member`` ``(N,)`` int64 (``main``: group = index, member = 0).
    """

    name: str
    images: torch.Tensor
    depth: torch.Tensor | None
    mask: torch.Tensor | None
    z: torch.Tensor
    controls: Controls
    index: torch.Tensor
    group: torch.Tensor
    member: torch.Tensor
    n_groups: int
    n_members: int

    def __len__(self) -> int:
        return int(self.images.shape[0])


class MetricContext(Protocol):
    """Everything a metric may read; nothing else. Attributes are plain values, normalised once.

    * ``protocol``: the :class:`omnibench.protocol.Protocol` being run (``protocol.bootstrap`` is the one
      bootstrap count of every per-sample interval; ``protocol.seed`` its seed);
    * ``options``: ``--option KEY=VALUE`` of evaluate (e.g. ``estimator``, ``estimator.weights``,
      ``identity_backbone``), recorded in the result because they can change numbers;
    * ``device``: a torch device string, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (``cuda:LOCAL_RANK`` under
      torchrun); ``batch_size``: images per forward pass (>= 1; never changes a number); ``seed``: the
      protocol's seed; ``progress``: whether to draw progress bars on stderr;
    * ``generator_head``: the head-model spec the generator's controls refer to (``None``: ``synthetic``).

    A static contract (checked by type checkers and, member by member, by the tests), deliberately not
    ``runtime_checkable``: an ``isinstance`` check would evaluate ``real_set`` and build the real set.
    """

    protocol: EvalProtocol
    options: Mapping[str, Any]
    device: str
    batch_size: int
    seed: int
    progress: bool
    generator_head: str | None

    def samples(self, set_name: str) -> SampleSet:
        """The whole sample set ``main``, ``views`` or ``expr`` in memory, in global order."""
        ...

    def sample_images(self, set_name: str, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        """uint8 ``(B, 3, H, W)`` batches of ``set_name`` in global order (``batch_size`` default: ctx's)."""
        ...

    def sample_fingerprint(self, set_name: str) -> dict[str, Any] | None:
        """Identity of the stored samples of ``set_name`` (key, size, shard stamps) for on-disk feature
        caches; None when the samples are not stored (nothing may then be cached across runs)."""
        ...

    def head_model(self) -> HeadModel:
        """The head model the controls refer to, loaded once."""
        ...

    @property
    def real_set(self) -> ImageSet:
        """The real image set (opened and validated); raises :class:`OmnibenchError` when there is none."""
        ...

    def memo(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """``compute()`` once per context and key (e.g. features shared by FID and KID, estimates shared by
        AED, ASD and APD, embeddings shared by the identity variants)."""
        ...

    def feature_cache(self, namespace: str, key: dict[str, Any],
                      compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Content-addressed on-disk ``.npz`` cache: ``key`` must hash everything the arrays depend on."""
        ...


@dataclass
class MetricResult:
    """One metric's outcome; ``ci95`` is a bootstrap 95% interval ``(low, high)`` or None."""

    value: float | None
    n: int
    ci95: tuple[float, float] | None = None
    failures: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    backbones: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> {"name", "sha256"}
    unit: str | None = None


class Metric(ABC):
    """Base class of metrics.

    Class attributes: ``name``, ``version`` (bump on any change that moves numbers), ``higher_is_better``,
    ``variants`` (variant -> one-line definition), ``default_variant``, ``requires`` (sample-set names
    the engine must generate: ``main``, ``views``, ``expr``; ``real`` for the real image set), ``controls``
    (the generator controls, names of :data:`omnibench.generators.base.CONTROL_NAMES`, its value measures;
    variants needing others override :meth:`required_controls`). A generator that ignores one of them gets the
    metric reported as not applicable, with the reason, instead of a number.
    """

    name: str = ""
    version: int = 1
    higher_is_better: bool = False
    variants: dict[str, str] = {"default": ""}
    default_variant: str = "default"
    requires: tuple[str, ...] = ("main",)
    controls: tuple[str, ...] = ()
    unit: str | None = None

    @classmethod
    def required_controls(cls, variant: str) -> frozenset[str]:
        """The controls ``variant`` measures (default: :attr:`controls` for every variant)."""
        return frozenset(cls.controls)

    @abstractmethod
    def compute(self, ctx: MetricContext, variant: str) -> MetricResult:
        """Compute ``variant`` from the context."""

    @classmethod
    def check(cls, ctx: MetricContext, variant: str) -> None:
        """Raise :class:`OmnibenchError` when ``variant`` cannot run here (a missing asset or backbone);
        called before any sample is generated. The default checks nothing."""
        return None


METRICS: Registry[type[Metric]] = Registry("metric")
ESTIMATORS: Registry[Any] = Registry("estimator")
BACKBONES: Registry[Any] = Registry("backbone")

_plugins_loaded = False


def load_metric_plugins() -> None:
    """Call every ``omnibench.metrics`` entry point with the registries (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    registries = {"metrics": METRICS, "estimators": ESTIMATORS, "backbones": BACKBONES}
    for ep in metadata.entry_points(group="omnibench.metrics"):
        fn: Callable[[dict[str, Registry]], None] = ep.load()
        fn(registries)


def parse_metric_spec(spec: str) -> tuple[type[Metric], str]:
    """``"aed@rmse"`` -> (metric class, variant); unknown names or variants raise with a suggestion."""
    load_metric_plugins()
    name, _, variant = spec.partition("@")
    cls = METRICS.get(name)
    variant = variant or cls.default_variant
    if variant not in cls.variants:
        raise OmnibenchError(
            f"unknown variant '{variant}' of metric '{name}'{suggest(variant, cls.variants)}; "
            f"available: {', '.join(cls.variants)}"
        )
    return cls, variant


def bootstrap_ci(
    values: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap 95% interval of ``statistic`` over per-sample ``values`` (first axis).

    Deterministic for a seed; returns None for fewer than 2 finite samples.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[np.isfinite(v)]
    if v.shape[0] < 2:
        return None
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, v.shape[0], size=(n_boot, v.shape[0]))
    stats = np.array([statistic(v[i]) for i in idx], dtype=np.float64)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def resolve_metrics(specs: list[str] | tuple[str, ...] | None) -> tuple[list[tuple[str, type[Metric], str]], dict[str, str]]:
    """``[(result key, class, variant)]`` for the given specs, or every registered metric when None.

    Specs are ``name``, ``name@variant`` or ``module:Class[@variant]``. With ``specs=None`` a metric that
    cannot be imported is skipped (reason returned); an explicit unknown name raises with a suggestion.
    """
    out: list[tuple[str, type[Metric], str]] = []
    skipped: dict[str, str] = {}
    if specs is None:
        load_metric_plugins()
        for name in METRICS.names():
            try:
                cls, variant = parse_metric_spec(name)
            except OmnibenchError as exc:
                skipped[name] = str(exc)
                continue
            out.append((name, cls, variant))
        return out, skipped
    seen: set[str] = set()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        base, _, variant = spec.partition("@")
        if ":" in base:
            cls = load_object(base)
            if not (isinstance(cls, type) and issubclass(cls, Metric)):
                raise OmnibenchError(f"'{base}' is not a subclass of omnibench.metric_api.Metric")
            variant = variant or cls.default_variant
            if variant not in cls.variants:
                raise OmnibenchError(f"unknown variant '{variant}' of metric '{cls.name}'{suggest(variant, cls.variants)}")
        else:
            cls, variant = parse_metric_spec(spec)
        key = cls.name if variant == cls.default_variant else f"{cls.name}@{variant}"
        if key not in seen:
            seen.add(key)
            out.append((key, cls, variant))
    if not out:
        raise OmnibenchError("--metrics is empty")
    return out, skipped
