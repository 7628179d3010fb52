"""Calibration of identity, multi-view and geometry metrics on generators whose answer is known; writes a
section of ``reports/calibration.md`` next to the control-accuracy one.

``oracle`` renders exactly the requested controls with exact depth: identity high across views and
expressions and far above the between-latent baseline (``details.baseline``: mean similarity of images
of *different* latents), multi-view disagreement and geometry error at the floor. ``oracle-noshape``
ignores shape: geometry clearly worse. ``noise``: no face (every identity image a failure), no depth.
The same assertions run in CI (``tests/metrics/test_idmv_calibration.py``, a smaller protocol).

Usage::

    python -m metrics.calibration.idmv [--protocol quick] [--out reports/calibration.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from metrics.calibration.control import versioned_markers, write_section

GENERATORS = ("oracle", "oracle-noshape", "noise")
METRICS = ("id-views@synthetic", "id-expr@synthetic", "mv-reproj", "mv-reproj@depth", "geometry")
BEGIN, END = "<!-- identity-multiview:begin -->", "<!-- identity-multiview:end -->"


def run(protocol: Any = "quick", generators: tuple[str, ...] = GENERATORS, metrics: tuple[str, ...] = METRICS) -> dict[str, Any]:
    """``{generator: result-file "metrics" dict}`` from one evaluation each (``protocol``: a name or a
    :class:`omnibench.protocol.Protocol`) in a private, temporary sample cache."""
    from omnibench.evaluation import evaluate

    old = os.environ.get("OMNIBENCH_CACHE")
    with tempfile.TemporaryDirectory(prefix="omnibench-calib-") as tmp:
        os.environ["OMNIBENCH_CACHE"] = tmp
        try:
            return {g: evaluate(g, protocol=protocol, metrics=list(metrics), progress=False)["metrics"] for g in generators}
        finally:
            if old is None:
                os.environ.pop("OMNIBENCH_CACHE", None)
            else:
                os.environ["OMNIBENCH_CACHE"] = old


def _cell(r: dict[str, Any], baseline: bool) -> str:
    if r.get("value") is None:
        return f"n/a ({r.get('failures', 0)} failures)"
    ci = r.get("ci95")
    text = f"{r['value']:.4g}" + (f" [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "")
    if baseline and r.get("details", {}).get("baseline") is not None:
        text += f"; between latents {r['details']['baseline']:.3f}"
    if r.get("failures"):
        text += f", {r['failures']} failures"
    return text


def _protocol(protocol: Any) -> Any:
    from omnibench.protocol import get_protocol

    return get_protocol(protocol) if isinstance(protocol, str) else protocol


def markers(protocol: Any = "quick") -> tuple[str, str]:
    """The begin/end markers of this section for a protocol version (a name or a Protocol)."""
    return versioned_markers(protocol, BEGIN, END)


def render_markdown(results: dict[str, Any], protocol: Any) -> str:
    """The report section for ``results`` of ``protocol`` (a name or a :class:`omnibench.protocol.Protocol`)."""
    gens = list(results)
    specs = list(next(iter(results.values())))
    p = _protocol(protocol)
    protocol = protocol if isinstance(protocol, str) else p.name
    begin, end = markers(p)
    title = "## Identity, multi-view consistency and geometry" + (
        "" if p.version == 1 else f", protocol v{p.version} ({p.camera.framing.name} framing)")
    lines = [begin, title, "",
             f"Protocol `{protocol}`, built-in generators of known answer; 95 % bootstrap intervals. Identity: mean "
             "cosine similarity within a latent (higher is better) and, after `between latents`, the same for images "
             "of different latents (the floor a generator that loses identity would reach). `mv-reproj` (RGB in [0, 1]) "
             "and `mv-reproj@depth` (metres) and `geometry` (metres): lower is better. Regenerate with "
             f"`python -m metrics.calibration.idmv --protocol {protocol}`.", "",
             "| metric | " + " | ".join(gens) + " |", "|---|" + "---|" * len(gens)]
    for spec in specs:
        lines.append(f"| `{spec}` | " + " | ".join(_cell(results[g][spec], spec.startswith("id-")) for g in gens) + " |")
    lines += ["", "Expected pattern: the oracle's identity far above its between-latent baseline and its multi-view and "
              "geometry errors at the floor; `oracle-noshape` worse on geometry; `noise` a failure everywhere.", end]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", default="quick")
    p.add_argument("--out", default="reports/calibration.md")
    a = p.parse_args(argv)
    md = render_markdown(run(a.protocol), a.protocol)
    write_section(Path(a.out), md, *markers(a.protocol))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
