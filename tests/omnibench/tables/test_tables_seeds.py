"""Runs of one model that differ only in training seed: a summary row with the mean and a Student-t interval over
seeds, beside the per-seed rows (which are shown, not ranked)."""

import json
import math

import pytest
from helpers_tables import metric, write_run
from scipy import stats

from omnibench.tables import build_table, load_runs, render
from omnibench.tables.seeds import _base_label, seed_interval


def seeded_run(tmp_path, name, seed, metrics, label=None, config="tiny", generator="omniavatar"):
    path = write_run(tmp_path / f"{name}.json", metrics, label=label)
    data = json.loads(open(path).read())
    data["checkpoint"].update({"generator": generator, "path": f"/ck/{name}.pt"})
    data["checkpoint"]["description"] = {"generator": generator, "config": config,
                                         "training": {"seed": seed, "steps": 100, "batch": 8, "dataset": "abc"}}
    open(path, "w").write(json.dumps(data))
    return path


def test_seed_interval_is_the_student_t_interval():
    mean, half = seed_interval([1.0, 2.0, 4.0])
    sd = math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    assert mean == pytest.approx(7 / 3) and half == pytest.approx(stats.t.ppf(0.975, 2) * sd / math.sqrt(3))
    assert seed_interval([1.0, None]) == (None, None)
    assert seed_interval([2.0]) == (2.0, None)


def test_base_label_strips_the_seed_token():
    assert _base_label(["omniavatar (full-s0.pt)", "omniavatar (full-s1.pt)"]) == "omniavatar (full)"
    assert _base_label(["OmniAvatar", "OmniAvatar"]) == "OmniAvatar"
    assert _base_label(["run_seed3", "run_seed4"]) == "run"


def test_seed_siblings_get_a_mean_row_and_are_not_ranked_themselves(tmp_path):
    paths = [
        seeded_run(tmp_path, "full-s0", 0, {"aed": metric(0.30, ci95=[0.28, 0.32])}, label="OmniAvatar"),
        seeded_run(tmp_path, "full-s1", 1, {"aed": metric(0.34, ci95=[0.32, 0.36])}, label="OmniAvatar"),
        seeded_run(tmp_path, "nop-s0", 0, {"aed": metric(0.31, ci95=[0.29, 0.33])}, label="no prior"),
        seeded_run(tmp_path, "nop-s1", 1, {"aed": metric(0.40, ci95=[0.38, 0.42])}, label="no prior"),
        # another config: not a sibling of the tiny runs, and a single seed: no summary row
        seeded_run(tmp_path, "other", 0, {"aed": metric(0.29)}, label="OmniAvatar", config="ffhq512"),
    ]
    t = build_table(load_runs(paths))
    (b,) = t.blocks
    assert b.rows == ["OmniAvatar, seed 0", "OmniAvatar, seed 1", "OmniAvatar (mean of 2 seeds)",
                      "no prior, seed 0", "no prior, seed 1", "no prior (mean of 2 seeds)", "OmniAvatar"]
    cell = b.cell("OmniAvatar (mean of 2 seeds)", "aed")
    half = stats.t.ppf(0.975, 1) * math.sqrt(((0.30 - 0.32) ** 2 + (0.34 - 0.32) ** 2) / 1) / math.sqrt(2)
    assert cell["value"] == pytest.approx(0.32) and cell["half"] == pytest.approx(half)
    # the lowest single number is a per-seed row (0.30) and the "other" run (0.29): only the latter may be bold
    assert b.cell("OmniAvatar", "aed")["best"] and not b.cell("OmniAvatar, seed 0", "aed")["best"]
    assert "mean of N seeds" in t.caption and "training seeds 0, 1" in " ".join(b.notes)
    csv = render(t, "csv")
    assert ",seeds\n" in csv and ",samples\n" in csv
    md = render(t, "md")
    assert "| OmniAvatar (mean of 2 seeds) |" in md


def test_same_seed_twice_or_unseeded_runs_are_left_alone(tmp_path):
    paths = [seeded_run(tmp_path, "a", 0, {"fid": metric(1.0)}), seeded_run(tmp_path, "b", 0, {"fid": metric(2.0)}),
             write_run(tmp_path / "c.json", {"fid": metric(3.0)}, label="c")]
    t = build_table(load_runs(paths))
    assert not any("mean of" in r for r in t.blocks[0].rows) and "mean of N seeds" not in t.caption
