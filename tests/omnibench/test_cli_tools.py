"""omnibench ls / doctor / cache, and evaluate without network access."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnibench.cli import main
from omnibench.evaluation import evaluate

ROOT = Path(__file__).resolve().parents[2]


def test_ls_protocols_and_generators(capsys):
    assert main(["ls", "protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["quick", "standard", "paper"]
    assert main(["ls", "generators"]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["ls", "metrics", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


def test_doctor_reports_every_asset(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIBENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "s3fd-619a316812.pth").write_bytes(b"stand-in")
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by = {a["name"]: a for a in report["assets"]}
    assert by["fan-s3fd"]["found"] and by["fan-s3fd"]["origin"] == "OMNIBENCH_WEIGHTS"
    assert len(by["fan-s3fd"]["sha256"]) == 64
    assert not by["fan-3d"]["found"] and "face-alignment" in by["fan-3d"]["how_to_get"]
    assert {"fid-inception", "flame", "arcface-buffalo_l", "reference-checkpoint", "synthetic-head"} <= set(by)
    # a found file with the wrong bytes for a pinned checksum makes doctor fail
    (tmp_path / "default_1.pt").write_bytes(b"bad")
    assert main(["doctor", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["assets"][0]["ok"] is False


def test_cache_ls_and_rm(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path))
    evaluate("fake64", generator="tests.omnibench.fakes:FakeGenerator64", metrics=["tests.omnibench.fakes:MeanPixel"],
             progress=False)
    assert main(["cache", "ls", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["samples"]
    assert entry["set"] == "main" and entry["shards"] == "4/4" and entry["protocol"] == "quick"
    assert main(["cache", "rm", "nothing-like-this"]) == 2
    assert main(["cache", "rm", entry["id"]]) == 0
    assert not Path(entry["path"]).exists()


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
