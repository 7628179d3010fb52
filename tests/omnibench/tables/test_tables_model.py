import json

import pytest
from helpers_tables import FIX, metric, write_run

from omnibench.cli import main
from omnibench.errors import OmnibenchError, ResultFileError
from omnibench.tables import build_table, load_runs, render
from omnibench.tables.model import auto_decimals, half_width, metric_label
from omnibench.tables.render import format_number


def _table(tmp_path, runs: dict[str, dict], **kw):
    paths = [write_run(tmp_path / f"{k}.json", v, label=k) for k, v in runs.items()]
    return build_table(load_runs(paths), **kw)


def test_best_is_direction_aware_and_ties_all_bold(tmp_path):
    t = _table(tmp_path, {
        "a": {"fid": metric(2.0), "id": metric(0.5, True)},
        "b": {"fid": metric(1.0), "id": metric(0.9, True)},
        "c": {"fid": metric(1.0), "id": metric(0.1, True)},
    })
    (b,) = t.blocks
    assert [r for r in b.rows if b.cell(r, "fid")["best"]] == ["b", "c"]  # lower is better, tie -> both
    assert [r for r in b.rows if b.cell(r, "id")["best"]] == ["b"]  # higher is better
    md = render(t, "md")
    assert "| FID ↓ [1] | ID ↑ [2] |" in md
    assert "| b | **1.00** | **0.900** |" in md


def test_single_value_column_is_not_bold(tmp_path):
    t = _table(tmp_path, {"a": {"fid": metric(2.0)}, "b": {"fid": metric(None)}})
    assert not t.blocks[0].cell("a", "fid")["best"]
    assert "| b | N/A |" in render(t, "md")


def test_value_and_half_interval(tmp_path):
    t = _table(tmp_path, {"a": {"fid": metric(12.3456, ci95=[12.0, 12.6])}})
    assert "12.35 ± 0.30" in render(t, "md")
    assert "12.35 $\\pm$ 0.30" in render(t, "latex")


def test_separate_blocks_for_protocol_profile_and_metric_version(tmp_path):
    a = write_run(tmp_path / "a.json", {"fid": metric(1.0)}, label="a")
    b = write_run(tmp_path / "b.json", {"fid": metric(2.0)}, label="b", protocol="full")
    c = write_run(tmp_path / "c.json", {"fid": metric(3.0)}, label="c", profile="fast")
    d = write_run(tmp_path / "d.json", {"fid": metric(0.5, version=2)}, label="d")
    e = write_run(tmp_path / "e.json", {"fid": metric(0.5, variant="clean")}, label="e")
    f = write_run(tmp_path / "f.json", {"fid": metric(4.0), "kid": metric(0.1)}, label="f")
    t = build_table(load_runs([a, b, c, d, e, f]))
    assert [blk.rows for blk in t.blocks] == [["a", "f"], ["b"], ["c"], ["d"], ["e"]]
    # rows in different blocks are never ranked together: 'd' has the lowest FID but is alone
    assert not t.blocks[3].cell("d", "fid")["best"]
    assert t.blocks[0].cell("a", "fid")["best"]
    assert "not ranked with block 1 (metric 'fid' version 1 vs 2)" in t.blocks[3].title


@pytest.mark.parametrize("other, why", [
    ({"protocol": "full"}, "protocol name 'quick' vs 'full'"),
    ({"profile": "fast"}, "profile 'default' vs 'fast'"),
])
def test_merge_refuses_with_clear_message(tmp_path, other, why):
    a = write_run(tmp_path / "a.json", {"fid": metric(1.0)}, label="a")
    b = write_run(tmp_path / "b.json", {"fid": metric(2.0)}, label="b", **other)
    with pytest.raises(OmnibenchError, match="cannot merge.*" + why):
        build_table(load_runs([a, b]), merge=True)
    assert len(build_table(load_runs([a, b])).blocks) == 2


def test_merge_of_metric_versions_refused_via_cli(tmp_path, capsys):
    a = write_run(tmp_path / "a.json", {"fid": metric(1.0)}, label="a")
    b = write_run(tmp_path / "b.json", {"fid": metric(2.0, version=3)}, label="b")
    assert main(["table", a, b, "--merge"]) == 2
    assert "metric 'fid' version 1 vs 3" in capsys.readouterr().err
    assert main(["table", a, b]) == 0


def test_merge_with_baselines_refused(tmp_path, capsys):
    a = write_run(tmp_path / "a.json", {"fid": metric(1.0)}, label="a")
    assert main(["table", a, "--baselines", "published", "--merge"]) == 2
    assert "never ranked together" in capsys.readouterr().err


def test_duplicate_labels_get_file_stem(tmp_path):
    a = write_run(tmp_path / "run1.json", {"fid": metric(1.0)}, label="m")
    b = write_run(tmp_path / "run2.json", {"fid": metric(2.0)}, label="m")
    assert build_table(load_runs([a, b])).blocks[0].rows == ["m [run1]", "m [run2]"]


@pytest.mark.parametrize("name, message", [
    ("malformed.json", "'omnibench_version' is a required property"),
    ("not_json.json", "not valid JSON"),
    ("missing.json", "does not exist"),
])
def test_bad_result_files_exit_2(name, message, capsys):
    assert main(["table", str(FIX / "oracle_quick.json"), str(FIX / name)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("omnibench: error:") and message in err and name in err
    with pytest.raises(ResultFileError):
        load_runs([FIX / name])


def test_wrong_schema_version_exits_2(tmp_path, capsys):
    d = json.loads((FIX / "oracle_quick.json").read_text())
    d["schema_version"] = 2
    (tmp_path / "v2.json").write_text(json.dumps(d))
    assert main(["table", str(tmp_path / "v2.json")]) == 2
    assert "schema_version 2 is not supported" in capsys.readouterr().err


def test_no_inputs_exit_2(capsys):
    assert main(["table"]) == 2
    assert "at least one result file" in capsys.readouterr().err


def test_format_from_extension_and_csv(tmp_path):
    out = tmp_path / "t.csv"
    assert main(["table", str(FIX / "oracle_quick.json"), str(FIX / "noise_quick.json"), "--out", str(out)]) == 0
    import pandas as pd

    df = pd.read_csv(out)
    fid = df[(df.metric == "fid")].set_index("model")
    assert fid.loc["oracle", "value"] == pytest.approx(3.4172)
    assert fid.loc["oracle", "ci95_half"] == pytest.approx(0.325)
    assert bool(fid.loc["oracle", "best"]) and not bool(fid.loc["noise", "best"])


def test_html_format(tmp_path):
    out = tmp_path / "t.html"
    assert main(["table", str(FIX / "oracle_quick.json"), "--baselines", "published", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<strong>5.63</strong><sup>*</sup>" in text


@pytest.mark.parametrize("value, half, dec", [(3.4172, 0.325, 2), (287.9, 7.6, 1), (0.9132, 0.0078, 4),
                                              (0.0071, None, 5), (1234.5, None, 0), (0.0, None, 3), (5.0, 0.0, 2)])
def test_auto_decimals(value, half, dec):
    assert auto_decimals(value, half) == dec


def test_small_helpers():
    assert half_width([1.0, 2.0]) == 0.5 and half_width(None) is None and half_width([None, 1.0]) is None
    assert metric_label("fid") == "FID" and metric_label("id-views") == "ID-views" and metric_label("aed@rmse") == "AED@rmse"
    assert metric_label("geometry") == "geometry"
    assert format_number(-0.0001, 2) == "0.00"


@pytest.mark.parametrize("key, va, vb, why", [
    ("real", {"path": "a", "hash": "aaaa"}, {"path": "b", "hash": "bbbb"}, "real set aaaa vs bbbb"),
    ("sampling", {"main": {"n": 5, "cache_key": "k1", "controls": {"kind": "prior", "sampler": "builtin-v1"}}},
     {"main": {"n": 5, "cache_key": "k2", "controls": {"kind": "labels", "bank": "x"}}}, "controls of sample set 'main'"),
])
def test_real_set_and_control_source_split_blocks(tmp_path, key, va, vb, why):
    a = write_run(tmp_path / "a.json", {"fid": metric(1.0)}, label="a", **{key: va})
    b = write_run(tmp_path / "b.json", {"fid": metric(2.0)}, label="b", **{key: vb})
    c = write_run(tmp_path / "c.json", {"fid": metric(3.0)}, label="c", **{key: va})
    t = build_table(load_runs([a, b, c]))
    assert [blk.rows for blk in t.blocks] == [["a", "c"], ["b"]]
    assert why in t.blocks[1].title
