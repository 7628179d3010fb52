import textwrap

import pytest

from omnibench.cli import main
from omnibench.errors import OmnibenchError
from omnibench.tables import build_table, load_baselines, render
from omnibench.tables.baselines import CSV_COLUMNS

# AniPortraitGAN (arXiv 2309.02186) Table 1 as transcribed in shared/docs/metric-protocols.md section 2.4:
# method -> (face 256 FID, face 256 KIDx100, full 512 FID, full 512 KIDx100); None = N/A in the paper.
TABLE1 = {
    "EG3D": (5.63, 0.20, 6.81, 0.26),
    "GRAM-HD 64→512": (8.01, 0.41, 7.75, 0.29),
    "GRAM-HD 128→512": (8.14, 0.30, 8.82, 0.28),
    "AniFaceGAN": (11.56, 0.66, None, None),
    "AniPortraitGAN": (7.64, 0.43, 10.10, 0.43),
}
COLS = ("fid@face256", "kid@face256", "fid@full512", "kid@full512")


def test_published_numbers_match_sources():
    bs = load_baselines("published")
    got = {(e.method, e.metric): e for e in bs.entries if e.block == "aniportraitgan-table1"}
    assert len(got) == 20
    for method, values in TABLE1.items():
        for col, v in zip(COLS, values):
            e = got[(method, col)]
            assert e.value == v and e.status == "reported" and e.higher_is_better is False
            assert e.source["table"] == "Table 1" and "2309.02186" in e.source["url"]
            assert e.samples == {"generated": 20000, "real": 20000} and e.dataset == "SHHQ-HS"
    assert {e.mark for e in got.values() if e.method == "EG3D"} == {"*"}
    assert {e.mark for (m, c), e in got.items() if m == "AniFaceGAN" and e.value is not None} == {"†"}
    (omni,) = [e for e in bs.entries if e.method == "OmniAvatar"]
    assert (omni.metric, omni.value, omni.dataset, omni.status) == ("fid", 5.7, "FFHQ", "reported")
    assert omni.samples == {"generated": None, "real": None}
    assert {e.status for e in bs.entries} == {"reported"}


def test_published_rendering_keeps_paper_precision_and_footnotes():
    md = render(build_table([], [load_baselines("published")]), "md")
    assert "| EG3D | **5.63**\\* | **0.20**\\* | **6.81**\\* | **0.26**\\* |" in md
    assert "| AniFaceGAN | 11.56† | 0.66† | N/A | N/A |" in md
    assert "| AniPortraitGAN | 7.64 | 0.43 | 10.10 | 0.43 |" in md
    assert "| OmniAvatar | 5.7 |" in md
    assert "†: AniFaceGAN is trained on 128² by \\[60\\] and evaluated with 256² rendering." in md
    assert "Although EG3D has lowest FID and KID scores, it often generates planar geometry" in md


USER_YAML = """
    blocks:
      mine: {title: "My lab's numbers", notes: ["re-measured with clean-fid"]}
    entries:
      - {method: A, block: mine, metric: fid, value: 10.5, higher_is_better: false, definition: "FID 50k",
         dataset: FFHQ, resolution: "512²", samples: {generated: 50000, real: 70000},
         source: {paper: "Our paper", table: "Table 2"}, status: measured, ci95: [10.0, 11.0]}
      - {method: B, block: mine, metric: fid, value: 9.5, higher_is_better: false, definition: "FID 50k",
         dataset: FFHQ, source: {paper: "Other paper"}, status: reported}
"""


def test_user_yaml(tmp_path):
    p = tmp_path / "b.yaml"
    p.write_text(textwrap.dedent(USER_YAML))
    t = build_table([], [load_baselines(p)])
    md = render(t, "md")
    assert "#### 1. Mixed: My lab's numbers" in md
    assert "| A (measured) | 10.50 ± 0.50 |" in md and "| B (reported) | **9.50** |" in md
    assert "samples 50,000 generated / 70,000 real; source: Our paper, Table 2" in md


def test_user_csv_same_format(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text(
        ",".join(CSV_COLUMNS) + "\n"
        + "A,mine,fid,,10.5,10,11,1,,false,FID 50k,FFHQ,512²,50000,70000,Our paper,Table 2,,measured,a note | b note\n"
        + "B,mine,fid,,N/A,,,,,false,FID 50k,FFHQ,,,,Other paper,,,reported,\n"
    )
    (a, b) = load_baselines(p).entries
    assert (a.value, a.ci95, a.decimals, a.samples, a.notes) == (10.5, (10.0, 11.0), 1, {"generated": 50000, "real": 70000}, ("a note", "b note"))
    assert b.value is None and b.status == "reported"
    assert main(["table", "--baselines", str(p), "--format", "md"]) == 0


@pytest.mark.parametrize("text, message", [
    ("entries: [{method: A}]", "'block' is a required property"),
    ("entries:\n- {method: A, block: x, metric: fid, value: 1, higher_is_better: false, definition: d, dataset: D,"
     " source: {paper: P}, status: guessed}", "'guessed' is not one of"),
    ("entries:\n- {method: A, block: x, metric: fid, value: 1, higher_is_better: false, definition: d, dataset: D,"
     " source: {paper: P}, status: reported, colour: red}", "Additional properties"),
    ("entries:\n- {method: A, block: x, metric: fid, value: '1', higher_is_better: false, definition: d, dataset: D,"
     " source: {paper: P}, status: reported}", "entries/0/value"),
    ("entries:\n- {method: A, block: x, metric: fid, value: 1, higher_is_better: false, definition: d, dataset: D,"
     " source: {}, status: reported}", "'paper' is a required property"),
    ("entries:\n- &e {method: A, block: x, metric: fid, value: 1, higher_is_better: false, definition: d, dataset: D,"
     " source: {paper: P}, status: reported}\n- *e", "both give 'A' / 'fid'"),
    ("[1, 2]", "expected a mapping"),
    ("entries: [\n", "not valid YAML"),
])
def test_bad_yaml_is_rejected_clearly(tmp_path, text, message):
    p = tmp_path / "b.yaml"
    p.write_text(text)
    with pytest.raises(OmnibenchError, match="baseline file .*b.yaml") as exc:
        load_baselines(p)
    assert message in str(exc.value)


@pytest.mark.parametrize("header, row, message", [
    ("method,block,metric,value", "A,x,fid,1", "missing CSV column(s) higher_is_better"),
    (",".join(CSV_COLUMNS) + ",extra", "", "unknown CSV column(s) extra"),
    (",".join(CSV_COLUMNS), "A,x,fid,,one,,,,,false,d,D,,,,P,,,reported,", "column 'value' must be a number"),
    (",".join(CSV_COLUMNS), "A,x,fid,,1,,,,,maybe,d,D,,,,P,,,reported,", "higher_is_better' must be true or false"),
    (",".join(CSV_COLUMNS), "A,x,fid,,1,0.5,,,,false,d,D,,,,P,,,reported,", "both ci95_low and ci95_high"),
])
def test_bad_csv_is_rejected_clearly(tmp_path, header, row, message):
    p = tmp_path / "b.csv"
    p.write_text(header + "\n" + row + "\n")
    with pytest.raises(OmnibenchError) as exc:
        load_baselines(p)
    assert message in str(exc.value)


def test_bad_baseline_path_exit_2(tmp_path, capsys):
    assert main(["table", "--baselines", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "b.txt").write_text("x")
    assert main(["table", "--baselines", str(tmp_path / "b.txt")]) == 2
    assert "unsupported extension" in capsys.readouterr().err
