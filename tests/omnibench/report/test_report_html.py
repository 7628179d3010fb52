import base64
import io
import re

import pytest
from PIL import Image
from report_fixtures import FIX, report_runs

from omnibench.cli import main
from omnibench.report import build_report


def test_self_contained_with_table_plots_grids_provenance(tmp_path, capsys):
    html = build_report(report_runs(tmp_path), baselines=["published"])
    # nothing external: every src is a data URI, no stylesheet or script links
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/") for s in srcs)
    assert "<link" not in html and "<script" not in html and "url(" not in html
    for s in srcs:  # every embedded image decodes
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).verify()
    # one plot per measured metric (fid, kid, id-views, aed@rmse, apd) + one grid for the toy run
    assert html.count('alt="plot of ') == 5
    assert html.count('alt="qualitative grid: toy"') == 1
    # the noise run's checkpoint is the built-in generator 'noise': it resolves, so it gets a grid, not a warning
    assert html.count('alt="qualitative grid: noise"') == 1 and "no qualitative grid" not in html
    # with two models, a first figure shows them side by side
    assert html.index('alt="qualitative grid: all models side by side"') < html.index('alt="qualitative grid: toy"')
    assert "<strong>5.63</strong><sup>*</sup>" in html  # the table with published baselines
    for needle in ("Provenance", "sha256", "protocol &#x27;full&#x27; v1", "git 0123456789abcdef", "torch 2.14.1"):
        assert needle in html
    capsys.readouterr()


def test_deterministic(tmp_path):
    runs = report_runs(tmp_path)
    assert build_report(runs, grids=True) == build_report(runs, grids=True)


def test_cli_and_extra_images(tmp_path, capsys):
    png = tmp_path / "fig.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(png)
    out = tmp_path / "r.html"
    assert main(["report", *report_runs(tmp_path), "--no-grids", "--images", str(png), "--out", str(out)]) == 0
    html = out.read_text()
    assert 'alt="qualitative grid: fig.png"' in html and 'alt="qualitative grid: toy"' not in html


@pytest.mark.parametrize("args, message", [
    (["--out", "r.txt"], "--out must end in .html"),
    (["--out", "r.html", "--images", "nope.png"], "does not exist"),
])
def test_cli_bad_arguments(tmp_path, capsys, args, message):
    assert main(["report", str(FIX / "oracle_quick.json"), *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_malformed_run_exit_2(tmp_path, capsys):
    assert main(["report", str(FIX / "malformed.json"), "--out", str(tmp_path / "r.html")]) == 2
    assert "malformed.json" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_grids_render_with_the_runs_protocol_framing(tmp_path):
    from omnibench.protocol import get_protocol
    from omnibench.report import grid_framing
    from omnibench.tables import load_runs

    runs = load_runs(report_runs(tmp_path))
    assert grid_framing(runs) == "v1"
    runs[0].data["protocol"] = get_protocol("quick@2").summary()
    assert grid_framing(runs) == "ffhq"
    runs[0].data["protocol"]["settings"]["camera"]["radius"] = 3.0  # not a known framing
    assert grid_framing(runs) == "v1"


def test_seed_siblings_grids_are_named_by_training_seed(tmp_path, capsys):
    import json

    base = json.loads((FIX / "oracle_quick.json").read_text())
    paths = []
    for seed in (0, 1):
        run = dict(base, checkpoint={"path": f"toy-s{seed}", "sha256": None, "generator": "toygen_report:ToySeeded",
                                     "label": "toy", "description": {"training": {"seed": seed, "steps": 10}}})
        paths.append(tmp_path / f"toy-s{seed}.json")
        paths[-1].write_text(json.dumps(run))
    html = build_report([str(p) for p in paths])
    # one label, two training runs: each grid says which seed it is (as the table's rows do)
    assert html.count('alt="qualitative grid: toy, seed 0"') == 1
    assert html.count('alt="qualitative grid: toy, seed 1"') == 1
    capsys.readouterr()
