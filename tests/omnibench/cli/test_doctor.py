"""``omnibench doctor``: every asset found or missing, its sha256, and how to get it."""

import json

from omnibench.cli import main


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
