"""HTML report and qualitative figures.

``build_report`` assembles the page for ``omnibench report``: the table (and optional baselines) from the
result files, one matplotlib plot per metric, qualitative grids rendered from each run's checkpoint through
the generator registry (when it can be loaded; otherwise a visible warning), extra images, and provenance.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omnibench.errors import OmnibenchError
from omnibench.report.html import Figure, ReportInputs, render_report
from omnibench.tables import build_table, load_baselines, load_runs

__all__ = ["Figure", "ReportInputs", "build_report", "render_report"]


def _grid_figures(runs, spec) -> tuple[list[Figure], list[str]]:
    """One figure per model (views and expressions of ``spec.n_ids`` identities) and, with 2+ models, a first
    figure showing them side by side (identity #1 of each, the same latents and controls)."""
    import io

    from omnibench.generators.resolve import resolve_generator
    from omnibench.report.grids import comparison_figure, grids_figure, model_grids

    def png(img) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    from omnibench.tables.model import row_labels

    labels = row_labels(runs)  # seed siblings "NAME, seed S", as the table's rows
    figs, warnings, seen, models = [], [], set(), []
    for run in runs:
        ck = run.data["checkpoint"]
        key = (ck["generator"], ck["path"])
        if key in seen:
            continue
        seen.add(key)
        try:
            # the generator options the run recorded (e.g. an EG3D checkout: repo=PATH) rebuild it the same way
            gen = resolve_generator(ck["path"], ck["generator"], options=ck.get("options"))[0]
            grids = model_grids(gen, spec, name=labels[run.path])
        except OmnibenchError as exc:
            msg = f"no qualitative grid for '{run.label}': {exc}"
            print(f"omnibench report: warning: {msg}", file=sys.stderr)
            warnings.append(msg)
            continue
        models.append(grids)
        figs.append(Figure(labels[run.path], png(grids_figure(grids, spec)),
                           f"rows: identities (seed {spec.seed}); top: camera views; bottom: expressions"))
    if len(models) > 1:
        figs.insert(0, Figure("all models side by side", png(comparison_figure(models, spec)),
                              f"rows: models; identity #1 of seed {spec.seed} (the same latent, shape, cameras and "
                              "expressions for every model)"))
    return figs, warnings


def grid_framing(runs) -> str:
    """The camera framing the runs' protocol renders with (the first run's; ``omnibench.cameras.FRAMINGS``), so
    the grids show the models as the metrics saw them; "v1" when the result does not record a known one."""
    from omnibench.protocol import CameraDistribution

    cam = dict((runs[0].data["protocol"].get("settings") or {}).get("camera") or {})
    if "look_at" in cam:
        cam["look_at"] = tuple(cam["look_at"])
    try:
        framing = CameraDistribution(**cam).framing.name
    except TypeError:
        return "v1"
    return framing if framing != "custom" else "v1"


def build_report(
    paths: list[str], baselines: list[str] = (), grids: bool = True, images: list[str] = (),
    title: str = "omnibench report", n_ids: int = 3, seed: int = 0,
) -> str:
    """The HTML page for result files ``paths`` (see module docstring)."""
    from omnibench.report.grids import GridSpec
    from omnibench.report.plots import all_metric_figures

    if not paths:
        raise OmnibenchError("give at least one result file (RUN.json)")
    runs = load_runs(paths)
    table = build_table(runs, [load_baselines(b) for b in baselines])
    plots = [Figure(k, png) for k, png in all_metric_figures(table).items()]
    inp = ReportInputs(runs, table, plots, title=title)
    if grids:
        figs, warns = _grid_figures(runs, GridSpec(n_ids=n_ids, n_expressions=5, seed=seed, framing=grid_framing(runs)))
        inp.grids.extend(figs)
        inp.warnings.extend(warns)
    for p in images:
        path = Path(p)
        if not path.is_file():
            raise OmnibenchError(f"image '{path}' does not exist")
        mime = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(
            path.suffix.lower())
        if mime is None:
            raise OmnibenchError(f"image '{path}': use .png, .gif or .jpg")
        inp.grids.append(Figure(path.name, path.read_bytes(), mime=mime))
    return render_report(inp)
