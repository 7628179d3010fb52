import os
import stat

import pytest
import torch

from omnibench.fileio import atomic_path, atomic_torch_save, atomic_write_text


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
