"""A :class:`omnibench.metric_api.MetricContext` over sample sets held in memory.

Calibration runs and tests render a few sample sets themselves and hand them to metrics through this
class; nothing is generated, stored or cached on disk. Its defaults are the engine's (batch size
:data:`omnibench.metric_api.DEFAULT_BATCH_SIZE`, the ``quick`` protocol).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from omnibench.errors import OmnibenchError
from omnibench.imagesets import ImageSet, open_image_set
from omnibench.metric_api import DEFAULT_BATCH_SIZE, SampleSet
from omnibench.protocol import Protocol, get_protocol

T = TypeVar("T")


class InMemoryContext:
    """Sample sets, a head model and an optional real set, given up front.

    ``sets``: ``{set name: SampleSet}``; ``head``: the head model (``head_model()`` raises when None);
    ``real``: an :class:`ImageSet` or a path to one (``real_set`` raises when None); ``protocol``: a
    :class:`Protocol` or a protocol name (its seed is ``seed`` when given).
    """

    def __init__(
        self,
        sets: Mapping[str, SampleSet],
        *,
        head: Any = None,
        real: ImageSet | str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
        protocol: Protocol | str = "quick",
        seed: int | None = None,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        generator_head: str | None = None,
        progress: bool = False,
    ) -> None:
        if batch_size < 1:
            raise OmnibenchError(f"batch size must be >= 1, got {batch_size}")
        proto = protocol if isinstance(protocol, Protocol) else get_protocol(protocol)
        self.protocol = proto.with_seed(seed) if seed is not None else proto
        self.sets = dict(sets)
        self.options: dict[str, Any] = dict(options or {})
        self.device = str(torch.device(device))
        self.batch_size = int(batch_size)
        self.seed = self.protocol.seed
        self.progress = progress
        self.generator_head = generator_head
        self._head = head
        self._real = real
        self._memo: dict[tuple[Any, ...], Any] = {}

    def samples(self, set_name: str) -> SampleSet:
        if set_name not in self.sets:
            raise OmnibenchError(f"this context holds no '{set_name}' sample set (it has {sorted(self.sets)})")
        return self.sets[set_name]

    def sample_images(self, set_name: str, batch_size: int | None = None) -> Iterator[torch.Tensor]:
        images = self.samples(set_name).images
        bs = batch_size or self.batch_size
        for i in range(0, len(images), bs):
            yield images[i : i + bs]

    def sample_fingerprint(self, set_name: str) -> dict[str, Any] | None:
        return None  # nothing is stored: features are never cached across contexts

    def head_model(self) -> Any:
        if self._head is None:
            raise OmnibenchError("this context has no head model")
        return self._head

    @property
    def real_set(self) -> ImageSet:
        if self._real is None:
            raise OmnibenchError("this metric needs real images: pass --real PATH")
        if not isinstance(self._real, ImageSet):
            self._real = open_image_set(self._real)
        return self._real

    def memo(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def feature_cache(self, namespace: str, key: dict[str, Any],
                      compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return self.memo(("feature_cache", namespace, repr(sorted(key.items()))), compute)


def sample_set(name: str, images: torch.Tensor, controls: Any, *, z: torch.Tensor | None = None,
               depth: torch.Tensor | None = None, mask: torch.Tensor | None = None,
               group: torch.Tensor | None = None, member: torch.Tensor | None = None,
               n_members: int = 1) -> SampleSet:
    """A :class:`SampleSet` from images ``(N, 3, H, W)`` uint8 and controls; ``group``/``member`` default to
    ``index // n_members`` / ``index % n_members``; ``z`` defaults to zeros ``(N, 1)``."""
    n = int(images.shape[0])
    index = torch.arange(n)
    group = index // n_members if group is None else group
    member = index % n_members if member is None else member
    return SampleSet(name=name, images=images, depth=depth, mask=mask,
                     z=torch.zeros(n, 1) if z is None else z, controls=controls, index=index, group=group,
                     member=member, n_groups=int(group.max()) + 1 if n else 0, n_members=n_members)
