"""Calibration of AED / ASD / APD on generators whose answer is known; writes a section of
``reports/calibration.md``.

The built-in generators ``oracle`` (renders exactly the given controls), ``oracle-noexpr`` (ignores
expression), ``oracle-noshape`` (ignores shape) and ``noise`` render the same ``n`` FFHQ-like controls
(``omnibench.data.synth.sample_controls``, seed ``--seed``); each control metric is computed with the
chosen estimator. Expected: ``oracle`` at the metric's floor (the estimator's own error), ``oracle-noexpr``
clearly worse on AED but not on ASD, ``oracle-noshape`` the reverse, ``noise`` worst (every sample a
failure, scored as the null estimate).

Usage::

    python -m metrics.calibration.control [--n 200] [--seed 7] [--res 64] [--estimator regressor]
                                          [--protocol quick|quick@2] [--out reports/calibration.md]

Each generator's samples reach the metrics through an :class:`omnibench.memory_context.InMemoryContext`
(``--protocol`` with seed ``--seed``: its ``bootstrap`` count and seed give every interval, its camera
framing places the cameras and picks the estimator's weights). Each protocol version has its own section.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from metrics.control import control_pairs
from metrics.estimators.choice import DEFAULT_ESTIMATOR
from omnibench.fileio import atomic_write_text
from omnibench.memory_context import InMemoryContext, sample_set
from omnibench.metric_api import bootstrap_ci, parse_metric_spec
from omnibench.protocol import get_protocol

GENERATOR_NAMES = ("oracle", "oracle-noexpr", "oracle-noshape", "noise")
METRIC_SPECS = ("aed@rmse", "aed@l1", "aed@vertex", "asd@rmse", "asd@vertex", "apd@rmse", "apd@jaw", "apd@camera")
BEGIN, END = "<!-- control-accuracy:begin -->", "<!-- control-accuracy:end -->"
PROTOCOL = "quick"  # its bootstrap count and camera framing matter here (the samples are rendered below)
BATCH_SIZE = 32


def _generator(name: str, head64: Any, res: int) -> Any:
    from omnibench.generators import GENERATORS

    cls = GENERATORS.get(name)
    if name == "noise":
        return cls(resolution=res)
    return cls(head=head64, resolution=res)


def run_calibration(n: int = 64, seed: int = 7, res: int = 64, estimator: str = DEFAULT_ESTIMATOR, head: str = "synthetic",
                    generators: tuple[str, ...] = GENERATOR_NAMES, specs: tuple[str, ...] = METRIC_SPECS,
                    log: Any = None, estimator_options: dict[str, Any] | None = None,
                    protocol_name: str = PROTOCOL) -> dict[str, Any]:
    """``{generator: {spec: {"value", "ci95", "failures", "n", "unit"}}}`` plus timing per generator."""
    from omnibench.data.control_prior import sample_controls, sample_latents
    from omnibench.heads import load_head_model

    head32 = load_head_model(head)
    head64 = load_head_model(head, dtype=torch.float64)
    protocol = get_protocol(protocol_name, seed)
    controls = sample_controls(n, seed, head32, start_index=0, framing=protocol.camera.framing)
    options = {"estimator": estimator, "estimator_options": dict(estimator_options or {})}
    results: dict[str, Any] = {}
    per_sample: dict[str, dict[str, torch.Tensor]] = {}
    for name in generators:
        t0 = time.time()
        gen = _generator(name, head64, res)
        z = sample_latents(n, seed, gen.z_dim, start_index=0)
        imgs = []
        with torch.no_grad():
            for i in range(0, n, 16):
                out = gen.synthesize(z[i : i + 16], controls.fit_layout(gen.flame_layout).index(slice(i, i + 16)))
                imgs.append(out.image_uint8())
        ctx = InMemoryContext({"main": sample_set("main", torch.cat(imgs), controls, z=z)}, head=head32,
                              options=options, protocol=protocol, batch_size=BATCH_SIZE)
        control_pairs(ctx)  # estimate once (ctx.memo): the metrics below share it
        row, per_sample[name] = {}, {}
        for spec in specs:
            cls, variant = parse_metric_spec(spec)
            r, per_sample[name][spec] = cls().compute_with_values(ctx, variant)
            row[spec] = {"value": r.value, "ci95": r.ci95, "failures": r.failures, "n": r.n, "unit": r.unit}
        results[name] = row
        if log:
            log(f"{name}: {time.time() - t0:.0f}s")
    if "oracle" in per_sample:
        for name in results:
            for spec, row in results[name].items():
                if name != "oracle":
                    row["diff_vs_oracle_ci95"] = paired_difference_ci(per_sample[name][spec], per_sample["oracle"][spec],
                                                                      spec, protocol.seed, protocol.bootstrap)
    return results


def paired_difference_ci(values: torch.Tensor, floor: torch.Tensor, spec: str, seed: int,
                         n_boot: int) -> tuple[float, float] | None:
    """Bootstrap 95 % interval of ``metric(values) - metric(floor)`` resampling the *samples* jointly (both
    generators received the same controls, so the comparison is paired: far tighter than two intervals);
    ``n_boot``/``seed``: the protocol's ``bootstrap`` and seed, as every per-sample interval."""
    import numpy as np

    from metrics.control_math import aggregate

    cls, variant = parse_metric_spec(spec)
    kind = cls._kind(variant)
    both = np.stack([values.double().numpy(), floor.double().numpy()], 1)
    return bootstrap_ci(both, statistic=lambda rows: aggregate(rows[:, 0], kind) - aggregate(rows[:, 1], kind),
                        n_boot=n_boot, seed=seed)


def versioned_markers(protocol: Any, begin: str, end: str) -> tuple[str, str]:
    """``begin``/``end`` for ``protocol``'s version (a name or a :class:`omnibench.protocol.Protocol`): v1 keeps the
    original, unversioned markers, version N inserts ``-vN``."""
    v = (get_protocol(protocol) if isinstance(protocol, str) else protocol).version
    return (begin, end) if v == 1 else (begin.replace(":begin", f"-v{v}:begin"), end.replace(":end", f"-v{v}:end"))


def markers(protocol_name: str = PROTOCOL) -> tuple[str, str]:
    """The begin/end markers of this section for a protocol version."""
    return versioned_markers(protocol_name, BEGIN, END)


def render_markdown(results: dict[str, Any], n: int, seed: int, res: int, estimator: str,
                    protocol_name: str = PROTOCOL) -> str:
    gens = list(results)
    specs = list(next(iter(results.values())))
    p = get_protocol(protocol_name)
    begin, end = markers(protocol_name)
    cmd_protocol = "" if protocol_name == PROTOCOL else f" --protocol {protocol_name}"
    lines = [
        begin,
        f"## Control accuracy (AED / ASD / APD), protocol v{p.version} ({p.camera.framing.name} framing)",
        "",
        f"Estimator `{estimator}`, {n} FFHQ-like controls (`sample_controls`, seed {seed}, cameras on the "
        f"`{p.camera.framing.name}` framing of `{p.ref}`) rendered at {res} px "
        "by each generator; lower is better. `floor` = the oracle's value (the estimator's own error); other "
        "columns give the value, its ratio to the floor and the paired bootstrap 95 % interval of the difference "
        "to the floor (same controls, samples resampled jointly; an interval above 0 = clearly worse). Regenerate with "
        f"`python -m metrics.calibration.control --n {n} --seed {seed} --res {res} --estimator {estimator}"
        f"{cmd_protocol}`.",
        "",
        "| metric | unit | " + " | ".join(gens) + " |",
        "|---|---|" + "---|" * len(gens),
    ]
    for spec in specs:
        floor = results[gens[0]][spec]["value"]
        cells = []
        for g in gens:
            r = results[g][spec]
            v = r["value"]
            ci = r.get("diff_vs_oracle_ci95")
            paired = f", diff [{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci else ""
            ratio = f" (x{v / floor:.2f}{paired})" if g != gens[0] and floor else ""
            fail = f", {r['failures']}/{r['n']} failed" if r["failures"] else ""
            cells.append(f"{v:.4g}{ratio}{fail}")
        lines.append(f"| `{spec}` | {results[gens[0]][spec]['unit']} | " + " | ".join(cells) + " |")
    lines += ["", "Expected pattern: `oracle-noexpr` high on AED only, `oracle-noshape` high on ASD only, `noise` "
              "high everywhere with every sample counted as a failure.", end]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace (or append) the section of ``path`` marked by ``begin``/``end`` (default: this module's),
    atomically; ``section`` includes the markers."""
    path = Path(path)
    text = path.read_text() if path.is_file() else "# Calibration report\n\n"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1].lstrip("\n")
        text = pre + section + ("\n" + post if post else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--estimator", default=DEFAULT_ESTIMATOR)
    p.add_argument("--head", default="synthetic")
    p.add_argument("--protocol", default=PROTOCOL, help="quick (v1) or quick@2: cameras, estimator weights, intervals")
    p.add_argument("--out", default="reports/calibration.md")
    a = p.parse_args(argv)
    res = run_calibration(a.n, a.seed, a.res, a.estimator, a.head, log=lambda s: print(s, file=sys.stderr, flush=True),
                          protocol_name=a.protocol)
    md = render_markdown(res, a.n, a.seed, a.res, a.estimator, a.protocol)
    write_section(Path(a.out), md, *markers(a.protocol))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
