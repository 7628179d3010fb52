"""Estimators side by side: one calibration row per FLAME estimator (and per ``akd`` variant) on generators of
known answer; writes a section of ``reports/calibration.md``.

The built-in generators ``oracle``, ``oracle-noexpr``, ``oracle-noshape`` and ``noise`` render the same ``n``
FFHQ-like controls (:func:`omnibench.data.control_prior.sample_controls`, seed ``--seed``, the protocol's camera
framing) once, at ``--res`` px; every estimator and ``akd`` then read the same images. A row gives the oracle's
value (the floor: the estimator's own error), and for the other generators the value, its ratio to the floor,
the paired bootstrap 95 % interval of the difference to the floor (same controls, samples resampled jointly)
and the failures: so a user sees which estimator separates what (``oracle-noexpr`` should rise on AED and
``akd@mouth``, ``oracle-noshape`` on ASD, ``noise`` fail everywhere).

Estimators whose weights are the user's (``deca``, ``emoca``, ``smirk``: their licences forbid shipping them)
are listed with the command that adds their rows once you have the files::

    python -m metrics.calibration.estimators --estimators deca --weights deca=/path/to/deca_model.tar

Usage::

    python -m metrics.calibration.estimators [--n 24] [--seed 7] [--res 128] [--protocol quick@2]
        [--estimators regressor,landmark-fit,photo-fit] [--no-akd] [--weights NAME=PATH ...] [--out reports/calibration.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from metrics.calibration.control import (
    GENERATOR_NAMES,
    _generator,
    paired_difference_ci,
    versioned_markers,
    write_section,
)
from metrics.control import control_pairs
from omnibench.memory_context import InMemoryContext, sample_set
from omnibench.metric_api import parse_metric_spec
from omnibench.protocol import get_protocol

BEGIN, END = "<!-- estimator-calibration:begin -->", "<!-- estimator-calibration:end -->"
OFFLINE = ("regressor", "landmark-fit", "photo-fit")
USER_WEIGHTS = {"deca": "deca_model.tar", "emoca": "EMOCA_v2_lr_mse_20", "smirk": "SMIRK_em1.pt"}
ESTIMATOR_SPECS = ("aed@rmse", "asd@rmse", "apd@jaw", "apd@camera")
AKD_SPECS = ("akd@whole", "akd@mouth", "akd@eyes")
# the fitting estimators' optimisation shortened for a calibration run (their defaults: 200 / 100 / 60)
FAST_FIT = {"landmark-fit": {"steps": 60}, "photo-fit": {"steps": 60, "rigid_steps": 60, "refine": 20}}
PROTOCOL = "quick@2"


def render_sets(n: int, seed: int, res: int, protocol_name: str, head: str = "synthetic",
                generators: tuple[str, ...] = GENERATOR_NAMES) -> tuple[Any, dict[str, Any], Any]:
    """``(head model, {generator: (images uint8, z)}, controls)``: the same controls rendered by each generator."""
    from omnibench.data.control_prior import sample_controls, sample_latents
    from omnibench.heads import load_head_model

    head32 = load_head_model(head)
    head64 = load_head_model(head, dtype=torch.float64)
    protocol = get_protocol(protocol_name, seed)
    controls = sample_controls(n, seed, head32, start_index=0, framing=protocol.camera.framing)
    sets = {}
    for name in generators:
        gen = _generator(name, head64, res)
        z = sample_latents(n, seed, gen.z_dim, start_index=0)
        with torch.no_grad():
            imgs = [gen.synthesize(z[i : i + 16], controls.fit_layout(gen.flame_layout).index(slice(i, i + 16))).image_uint8()
                    for i in range(0, n, 16)]
        sets[name] = (torch.cat(imgs), z)
    return head32, sets, controls


def calibrate(head: Any, sets: dict[str, Any], controls: Any, protocol_name: str, estimators: tuple[str, ...],
              akd: bool = True, weights: dict[str, str] | None = None, log: Any = None) -> dict[str, Any]:
    """``{row name: {"specs": {spec: {generator: {...}}}, "seconds": float}}`` for each estimator and ``akd``."""
    protocol = get_protocol(protocol_name)
    rows: dict[str, Any] = {}
    jobs = [(est, ESTIMATOR_SPECS) for est in estimators] + ([("akd", AKD_SPECS)] if akd else [])
    for row, specs in jobs:
        t0 = time.time()
        opts = dict(FAST_FIT.get(row, {}))
        if weights and row in weights:
            opts["weights"] = weights[row]
        options = {"estimator": row, "estimator_options": opts} if row != "akd" else {"landmark_detector": "dlib"}
        values: dict[str, dict[str, torch.Tensor]] = {}
        table: dict[str, dict[str, Any]] = {spec: {} for spec in specs}
        for gen, (images, z) in sets.items():
            ctx = InMemoryContext({"main": sample_set("main", images, controls, z=z)}, head=head, options=options,
                                  protocol=protocol, batch_size=16)
            if row != "akd":
                control_pairs(ctx)
            values[gen] = {}
            for spec in specs:
                cls, variant = parse_metric_spec(spec)
                r, values[gen][spec] = cls().compute_with_values(ctx, variant)
                table[spec][gen] = {"value": r.value, "failures": r.failures, "n": r.n, "unit": r.unit}
        for spec in specs:
            for gen in sets:
                if gen != "oracle" and "oracle" in sets:
                    table[spec][gen]["diff_vs_oracle_ci95"] = paired_difference_ci(
                        values[gen][spec], values["oracle"][spec], spec, protocol.seed, protocol.bootstrap)
        rows[row] = {"specs": table, "seconds": time.time() - t0, "options": opts}
        if log:
            log(f"{row}: {time.time() - t0:.0f}s")
    return rows


def _cell(r: dict[str, Any], floor: float | None, is_floor: bool) -> str:
    v = r["value"]
    fail = f", {r['failures']}/{r['n']} failed" if r["failures"] else ""
    if is_floor or not floor:
        return f"{v:.4g}{fail}"
    ci = r.get("diff_vs_oracle_ci95")
    paired = f", [{ci[0]:+.3g}, {ci[1]:+.3g}]" if ci else ""
    return f"{v:.4g} (x{v / floor:.2f}{paired}){fail}"


def render_markdown(rows: dict[str, Any], n: int, seed: int, res: int, protocol_name: str, command: str) -> str:
    p = get_protocol(protocol_name)
    begin, end = versioned_markers(protocol_name, BEGIN, END)
    gens = list(next(iter(rows.values()))["specs"][next(iter(next(iter(rows.values()))["specs"]))])
    lines = [
        begin,
        f"## Estimators side by side, protocol v{p.version} ({p.camera.framing.name} framing)",
        "",
        f"{n} FFHQ-like controls (seed {seed}) rendered once at {res} px by each generator; every estimator and "
        "`akd` (dlib's 68 points) read the same images. `oracle` = the floor; other columns: value (ratio to the floor, "
        "paired bootstrap 95 % interval of the difference to it; above 0 = clearly worse). The fitting estimators ran "
        f"shortened ({FAST_FIT}). Regenerate with `{command}`.",
        "",
        "| estimator | metric | unit | " + " | ".join(gens) + " | seconds |",
        "|---|---|---|" + "---|" * len(gens) + "---|",
    ]
    for row, data in rows.items():
        for spec, cells in data["specs"].items():
            floor = cells.get("oracle", {}).get("value")
            unit = next(iter(cells.values()))["unit"]
            lines.append(f"| `{row}` | `{spec}` | {unit} | " + " | ".join(_cell(cells[g], floor, g == "oracle") for g in gens)
                         + f" | {data['seconds']:.0f} |")
    for name, file in USER_WEIGHTS.items():
        if name not in rows:
            lines.append(f"| `{name}` | needs your weights | | " + " | ".join("" for _ in gens) +
                         f" | `python -m metrics.calibration.estimators --protocol {protocol_name} --estimators {name} "
                         f"--no-akd --weights {name}=/path/to/{file}` |")
    lines += ["", end]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--protocol", default=PROTOCOL)
    p.add_argument("--estimators", default=",".join(OFFLINE))
    p.add_argument("--no-akd", action="store_true")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="an estimator's weights file")
    p.add_argument("--out", default="reports/calibration.md")
    a = p.parse_args(argv)
    weights = dict(w.split("=", 1) for w in a.weights)
    estimators = tuple(e for e in a.estimators.split(",") if e)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    head, sets, controls = render_sets(a.n, a.seed, a.res, a.protocol)
    rows = calibrate(head, sets, controls, a.protocol, estimators, not a.no_akd, weights, log)
    cmd = " ".join(["python -m metrics.calibration.estimators", *(argv if argv is not None else sys.argv[1:])])
    md = render_markdown(rows, a.n, a.seed, a.res, a.protocol, cmd.strip())
    write_section(Path(a.out), md, *versioned_markers(a.protocol, BEGIN, END))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
