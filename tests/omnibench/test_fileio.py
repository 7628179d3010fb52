import os
import stat

import numpy as np
import pytest
import torch

from omnibench.fileio import atomic_directory, atomic_path, atomic_savez, atomic_torch_save, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_written_files_get_the_umask_permissions_not_mkstemps_private_ones(tmp_path, umask_022):
    atomic_write_text(tmp_path / "result.json", "{}\n")
    atomic_torch_save({"a": torch.ones(2)}, tmp_path / "sub" / "w.pt")
    for p in (tmp_path / "result.json", tmp_path / "sub" / "w.pt"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    assert (tmp_path / "result.json").read_text() == "{}\n"
    assert torch.equal(torch.load(tmp_path / "sub" / "w.pt", weights_only=True)["a"], torch.ones(2))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    dst = tmp_path / "table.md"
    dst.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dst) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert dst.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]


def test_savez_keeps_the_name_and_the_umask_permissions(tmp_path, umask_022):
    atomic_savez(tmp_path / "feats.cache", {"x": np.arange(3.0), "s": np.asarray("meta")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.cache"]  # no ".npz" appended, no temporary
    assert stat.S_IMODE((tmp_path / "feats.cache").stat().st_mode) == 0o644
    with np.load(tmp_path / "feats.cache") as z:
        assert z["x"].tolist() == [0.0, 1.0, 2.0] and str(z["s"]) == "meta"


def test_directory_appears_whole_with_umask_permissions_and_replaces_an_old_one(tmp_path, umask_022):
    dst = tmp_path / "sets" / "ds"
    with atomic_directory(dst) as tmp:
        (tmp / "images").mkdir()
        (tmp / "images" / "a.png").write_bytes(b"a")
        assert not dst.exists()
    assert stat.S_IMODE(dst.stat().st_mode) == 0o755 and (dst / "images" / "a.png").read_bytes() == b"a"
    with atomic_directory(dst) as tmp:
        (tmp / "b.txt").write_text("b")
    assert sorted(p.name for p in dst.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in dst.parent.iterdir()) == ["ds"]  # nothing moved aside is left


def test_a_failed_directory_leaves_the_old_one_and_no_temporary(tmp_path):
    dst = tmp_path / "ds"
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(dst) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("render failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"] and (dst / "old.txt").read_text() == "old"


def test_directory_keeps_an_existing_one_when_asked(tmp_path):
    dst = tmp_path / "head"
    dst.mkdir()
    (dst / "done").write_text("theirs")
    with atomic_directory(dst, keep_existing=lambda p: (p / "done").is_file()) as tmp:
        (tmp / "done").write_text("mine")
    assert (dst / "done").read_text() == "theirs" and sorted(p.name for p in tmp_path.iterdir()) == ["head"]
