"""``omnibench evaluate`` on the command line: the JSON result on stdout, one clear error line and exit 2 for bad
input (nothing written), and a run without network access. The engine behind it: tests/omnibench/evaluation."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnibench.cli import main
from tests.omnibench.fakes import GEN, METRICS, save_fake_checkpoint

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("tiny_protocol")


def test_cli_prints_json_on_stdout(fresh_cache, capsys, tmp_path):
    fresh_cache()
    out = tmp_path / "ok.json"
    assert main(["evaluate", "--no-progress", "--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0],
                 "--out", str(out), "--batch-size", "32", "--protocol", "tiny"]) == 0
    stdout = capsys.readouterr().out
    assert json.loads(stdout) == json.loads(out.read_text())
    assert os.path.basename(out) == "ok.json"


# ---------------------------------------------------------------------------------------------- error cases


def _cli_error(capsys, tmp_path, argv, match):
    out = tmp_path / "res.json"
    if "--protocol" not in argv:
        argv = [*argv, "--protocol", "tiny"]
    code = main(["evaluate", "--no-progress", "--out", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err and err[-1].startswith("omnibench: error:") and match in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()
    return err[-1]


def test_error_unknown_metric(fresh_cache, capsys, tmp_path):
    fresh_cache()
    from omnibench.metric_api import METRICS as REG

    REG.register("mean-pixel", "tests.omnibench.fakes:MeanPixel", replace=True)
    try:
        _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", "mean-pixle"],
                   "did you mean 'mean-pixel'")
    finally:
        REG._items.pop("mean-pixel", None)


def test_error_unknown_protocol(fresh_cache, capsys, tmp_path):
    fresh_cache()
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0], "--protocol", "standart"],
               "did you mean 'standard'")


def test_error_missing_checkpoint(fresh_cache, capsys, tmp_path):
    fresh_cache()
    _cli_error(capsys, tmp_path, ["--ckpt", str(tmp_path / "nope.pt"), "--metrics", METRICS[0]], "not found")
    _cli_error(capsys, tmp_path, ["--ckpt", str(tmp_path / "nope.pt"), "--generator", GEN, "--metrics", METRICS[0]],
               "does not exist")


def test_error_corrupt_checkpoint(fresh_cache, capsys, tmp_path):
    fresh_cache()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 definitely not a checkpoint")
    _cli_error(capsys, tmp_path, ["--ckpt", str(bad), "--generator", GEN, "--metrics", METRICS[0]], "corrupt")
    _cli_error(capsys, tmp_path, ["--ckpt", str(bad), "--metrics", METRICS[0]], "corrupt")


def test_error_wrong_kind_checkpoint(fresh_cache, capsys, tmp_path):
    fresh_cache()
    ck = tmp_path / "other.pt"
    save_fake_checkpoint(ck, kind="sdf-stage1")
    _cli_error(capsys, tmp_path, ["--ckpt", str(ck), "--generator", GEN, "--metrics", METRICS[0]],
               "'sdf-stage1' checkpoint")
    _cli_error(capsys, tmp_path, ["--ckpt", str(ck), "--metrics", METRICS[0]], "no installed generator")


def test_error_missing_asset(fresh_cache, capsys, tmp_path):
    fresh_cache()
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", "tests.omnibench.fakes:NeedsAsset"],
               "imaginary-net")


def test_error_missing_real_set(fresh_cache, capsys, tmp_path):
    fresh_cache()
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0], "--real",
                                  str(tmp_path / "no-such-folder")], "does not exist")


def test_error_nan_output(fresh_cache, capsys, tmp_path, monkeypatch):
    fresh_cache()
    monkeypatch.setenv("FAKE_NAN", "1")
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0]], "NaN")


def test_error_raised_by_the_generator_names_it_and_exits_2(fresh_cache, capsys, tmp_path, monkeypatch):
    fresh_cache()
    monkeypatch.setenv("FAKE_FAIL_AFTER_CALLS", "3")
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0]],
               "generator 'fake' failed on set 'main', samples 48-63: RuntimeError: simulated crash")


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-5"], "--seed must be a non-negative integer"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--device", "gpu"], "--device must be cpu, cuda or cuda:N"),
    (["--labels", "no-such-bank.json"], "label bank 'no-such-bank.json' does not exist"),
])
def test_arguments_are_checked_before_any_work(fresh_cache, capsys, tmp_path, argv, message):
    cache = fresh_cache()
    _cli_error(capsys, tmp_path, ["--ckpt", "tiny", "--metrics", "fid", *argv], message)
    assert not (cache / "datasets").exists() and not (cache / "samples").exists()  # no real set, no samples


def test_error_mixed_sizes(fresh_cache, capsys, tmp_path, monkeypatch):
    fresh_cache()
    monkeypatch.setenv("FAKE_MIXED", "1")
    from omnibench.protocol import PROTOCOLS

    # with resizing on (quick renders 64 px from the fake's 16 px), the mixed batches must still be caught: the
    # fake's odd batches come back at half size and without depth/mask, and the depth/mask check names them (the
    # images themselves agree in size once resized to the protocol's resolution)
    msg = _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", METRICS[0], "--protocol",
                                        "quick"], "generator returned")
    assert msg.endswith("generator returned depth/mask for some batches only")
    assert PROTOCOLS["quick"].resize_policy == "bicubic-aa"


def test_metric_check_runs_before_generation(fresh_cache, capsys, tmp_path, monkeypatch):
    cache = fresh_cache()
    monkeypatch.setenv("FAKE_CHECK_FAILS", "1")
    _cli_error(capsys, tmp_path, ["--ckpt", "fake", "--generator", GEN, "--metrics", "tests.omnibench.fakes:NeedsAsset"],
               "checked up front")
    assert not list(cache.glob("samples/*/shard_*.pt"))  # nothing was generated


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare")
def test_evaluate_without_network(tmp_path):
    """Under `unshare -n` (no network) with empty HOME/TORCH_HOME, evaluate and doctor still work."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -n not permitted here")
    env = dict(os.environ, HOME=str(tmp_path / "home"), TORCH_HOME=str(tmp_path / "torch"), PYTHONPATH=str(ROOT),
               OMNIBENCH_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "omnibench", "evaluate", "--no-progress", "--ckpt", "fake64", "--generator",
           "tests.omnibench.fakes:FakeGenerator64", "--metrics", "tests.omnibench.fakes:MeanPixel"]
    r = subprocess.run(["unshare", "-n", *cmd], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["mean-pixel"]["n"] == 500
    d = subprocess.run(["unshare", "-n", sys.executable, "-m", "omnibench", "doctor", "--no-hash"], env=env,
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert d.returncode == 0, d.stderr
