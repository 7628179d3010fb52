"""Runs of one model that differ only in training seed, and their mean with an interval over seeds.

A generator reports its training seed in its description (``checkpoint.description.training.seed``, e.g. the
reference model's adapter). Two result files are *seed siblings* when they carry the same row label (if either
sets ``checkpoint.label``), the same generator, and the same description apart from ``training.seed``; groups of
2+ distinct seeds get a summary row: the mean over seeds ± half the 95% Student-t interval over seeds
(``t_{0.975, n-1} * sd / sqrt(n)``, the spread between training runs), beside the per-run rows whose intervals
are over evaluation samples.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from scipy import stats


def training_seed(data: dict[str, Any]) -> int | None:
    """The training seed a result file's generator reports, or None."""
    seed = ((data.get("checkpoint") or {}).get("description") or {}).get("training", {})
    seed = seed.get("seed") if isinstance(seed, dict) else None
    return int(seed) if isinstance(seed, int) and not isinstance(seed, bool) else None


def sibling_key(data: dict[str, Any]) -> str | None:
    """What seed siblings share (None when the run reports no training seed)."""
    if training_seed(data) is None:
        return None
    ck = data["checkpoint"]
    desc = copy.deepcopy(ck.get("description") or {})
    desc["training"].pop("seed", None)
    return json.dumps({"generator": ck.get("generator"), "label": ck.get("label"), "description": desc},
                      sort_keys=True, default=str)


@dataclass
class SeedGroup:
    label: str  # the summary row's model name (without the "(mean of N seeds)" suffix)
    members: list[int]  # indices into the block's runs, in seed order
    seeds: list[int]


def _base_label(labels: list[str]) -> str:
    """The model name seed siblings share: their common label, else the common prefix of their labels with a
    trailing seed token (``-s``, ``_seed``, digits) and unbalanced brackets cleaned up."""
    if len(set(labels)) == 1:
        return labels[0]
    prefix = labels[0]
    for other in labels[1:]:
        while not other.startswith(prefix):
            prefix = prefix[:-1]
    prefix = re.sub(r"[\s\-_.]*(seed|s)?[\s\-_.]*\d*$", "", prefix, flags=re.IGNORECASE).rstrip(" -_.([")
    for open_, close in ("()", "[]"):
        if prefix.count(open_) > prefix.count(close):
            prefix += close
    return prefix or labels[0]


def seed_groups(runs: list[Any]) -> list[SeedGroup]:
    """Groups of seed siblings with 2+ distinct seeds among ``runs`` (objects with ``data`` and ``label``)."""
    by_key: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        key = sibling_key(run.data)
        if key is not None:
            by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        seeds = [training_seed(runs[i].data) for i in members]
        if len(set(seeds)) < 2 or len(set(seeds)) != len(seeds):
            continue  # one seed, or the same seed twice (re-evaluations): nothing to average
        order = sorted(range(len(members)), key=lambda k: seeds[k])
        members, seeds = [members[k] for k in order], [seeds[k] for k in order]
        groups.append(SeedGroup(_base_label([runs[i].label for i in members]), members, seeds))
    return groups


def seed_interval(values: list[float | None]) -> tuple[float | None, float | None]:
    """(mean, half the 95% Student-t interval) over per-seed values; (None, None) if any value is missing."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None, None
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
