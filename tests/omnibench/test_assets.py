import sysconfig
from pathlib import Path

import pytest

from omnibench.assets import ASSETS, asset_status, cache_root, resolve_asset, sha256_file
from omnibench.errors import MissingAssetError, OmnibenchError


def test_cache_root_env_and_site_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "c"))
    assert cache_root() == (tmp_path / "c").resolve() and (tmp_path / "c").is_dir()
    monkeypatch.setenv("OMNIBENCH_CACHE", str(Path(sysconfig.get_paths()["purelib"]) / "omnibench-cache"))
    with pytest.raises(OmnibenchError, match="site-packages"):
        cache_root()


def test_resolution_order(monkeypatch, tmp_path):
    """flag > OMNIBENCH_WEIGHTS > standard cache (torch hub) for a FAN file (stand-in bytes)."""
    name = "2DFAN4-11f355bf06.pth.tar"
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    weights, flag = tmp_path / "weights", tmp_path / "flag"
    for d in (hub, weights, flag):
        d.mkdir(parents=True)
        (d / name).write_bytes(d.name.encode())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("OMNIBENCH_WEIGHTS", raising=False)
    assert resolve_asset("fan-2d") == hub / name
    monkeypatch.setenv("OMNIBENCH_WEIGHTS", str(weights))
    assert resolve_asset("fan-2d") == weights / name
    assert resolve_asset("fan-2d", flag) == flag / name
    assert resolve_asset("fan-2d", flag / name) == flag / name
    with pytest.raises(MissingAssetError):
        resolve_asset("fan-2d", tmp_path / "nowhere")
    rec = asset_status("fan-2d")
    assert rec["found"] and rec["origin"] == "OMNIBENCH_WEIGHTS" and rec["sha256"] == sha256_file(weights / name)


def test_missing_asset_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("OMNIBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingAssetError, match="face-alignment"):
        resolve_asset("fan-3d")
    assert asset_status("fan-3d")["found"] is False


def test_pinned_checksum_mismatch(monkeypatch, tmp_path):
    (tmp_path / "default_1.pt").write_bytes(b"not the inception")
    monkeypatch.setenv("OMNIBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingAssetError, match="sha256"):
        resolve_asset("fid-inception")
    assert asset_status("fid-inception")["ok"] is False


def test_registry_covers_the_suite():
    names = set(ASSETS)
    assert {"fid-inception", "flame", "arcface-buffalo_l", "fan-s3fd", "fan-2d", "fan-3d", "reference-checkpoint"} <= names
    assert any(n.startswith("dlib-") for n in names)
    for a in ASSETS.values():
        assert a.how_to_get


def test_flame_env(monkeypatch, tmp_path):
    f = tmp_path / "generic_model.pkl"
    f.write_bytes(b"x")
    monkeypatch.setenv("OMNIBENCH_FLAME", str(f))
    assert resolve_asset("flame") == f
    monkeypatch.setenv("OMNIBENCH_FLAME", str(tmp_path))
    assert resolve_asset("flame") == f
