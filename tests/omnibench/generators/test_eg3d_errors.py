"""Bad input to the EG3D-family generators on the command line: one ``omnibench: error:`` line, exit code 2,
no result file."""

from __future__ import annotations

import shutil

import pytest

from omnibench.cli import main
from omnibench.protocol import PROTOCOLS
from tests.omnibench.generators.test_eg3d import EG3D_TINY, METRICS

pytestmark = pytest.mark.usefixtures("one_checkout_per_test")


@pytest.fixture(autouse=True)
def _protocol(monkeypatch, fresh_cache):
    monkeypatch.setitem(PROTOCOLS, "eg3d-tiny", EG3D_TINY)
    monkeypatch.delenv("OMNIBENCH_FLAME", raising=False)
    fresh_cache()


def _fails(capsys, tmp_path, ckpt, *extra, match):
    out = tmp_path / "res.json"
    code = main(["evaluate", "--no-progress", "--protocol", "eg3d-tiny", "--metrics", METRICS[0], "--out", str(out),
                 "--ckpt", str(ckpt), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("omnibench: error:") and match in err[0], err
    assert not out.exists() and not list(tmp_path.glob("res.json*"))
    return err[0]


def test_no_repo(capsys, tmp_path, eg3d_files):
    _fails(capsys, tmp_path, eg3d_files["pkl"], match="needs the user's own eg3d code checkout: pass --option repo=PATH")


def test_repo_without_the_checkout_files(capsys, tmp_path, eg3d_files):
    empty = tmp_path / "not-a-checkout"
    empty.mkdir()
    _fails(capsys, tmp_path, eg3d_files["pkl"], "--option", f"repo={empty}", match="lacks torch_utils/persistence.py")
    _fails(capsys, tmp_path, eg3d_files["pkl"], "--option", f"repo={tmp_path / 'nowhere'}", match="is not a folder")


def test_repo_lacking_a_module_the_pickle_needs(capsys, tmp_path, eg3d_files):
    broken = shutil.copytree(eg3d_files["repo"], tmp_path / "broken")
    (broken / "training" / "volumetric_rendering" / "ray_sampler.py").unlink()
    _fails(capsys, tmp_path, eg3d_files["pkl"], "--option", f"repo={broken}",
           match="lacks training/volumetric_rendering/ray_sampler.py, which the pickle needs")


def test_pickle_of_another_family(capsys, tmp_path, eg3d_files):
    repo = f"repo={eg3d_files['repo']}"
    _fails(capsys, tmp_path, eg3d_files["stylegan2"], "--option", repo,
           match="is not an EG3D-family snapshot (G_ema is Generator, not a TriPlaneGenerator)")
    _fails(capsys, tmp_path, eg3d_files["next3d"], "--generator", "eg3d", "--option", repo,
           match="is a next3d pickle, not eg3d: pass --generator next3d")


def test_truncated_pickle(capsys, tmp_path, eg3d_files):
    _fails(capsys, tmp_path, eg3d_files["truncated"], "--option", f"repo={eg3d_files['repo']}",
           match="is truncated or corrupt")


def test_second_checkout(capsys, tmp_path, eg3d_files):
    assert main(["evaluate", "--no-progress", "--protocol", "eg3d-tiny", "--metrics", METRICS[0],
                 "--ckpt", str(eg3d_files["pkl"]), "--option", f"repo={eg3d_files['repo']}"]) == 0
    capsys.readouterr()
    clone = shutil.copytree(eg3d_files["repo"], tmp_path / "clone")
    _fails(capsys, tmp_path, eg3d_files["pkl"], "--option", f"repo={clone}", match="is already loaded in this process")


def test_bad_option_value(capsys, tmp_path, eg3d_files):
    _fails(capsys, tmp_path, eg3d_files["pkl"], "--option", f"repo={eg3d_files['repo']}", "--option",
           "trust_code=maybe", match="--option trust_code= expects true or false, got 'maybe'")


def test_next3d_without_flame(capsys, tmp_path, eg3d_files):
    line = _fails(capsys, tmp_path, eg3d_files["next3d"], "--option", f"repo={eg3d_files['next3d_repo']}",
                  match="FLAME")
    assert "--option head=PATH" in line and "OMNIBENCH_FLAME" in line


def test_missing_package_named_before_anything_runs(capsys, tmp_path, eg3d_files):
    """A stored source importing a package this environment lacks (as Next3D's imports pytorch3d): the
    recognition step names it, and no checkout module is imported."""
    import sys

    from tests.omnibench.generators.eg3d_checkouts import build_pickle, make_checkout

    inject = "try:\n    import absent_pkg_for_omnibench_tests  # noqa: F401\nexcept ImportError:\n    pass\n"
    repo = make_checkout(tmp_path / "needs-pkg", inject=inject)
    pkl = build_pickle(repo, tmp_path / "needs-pkg.pkl")
    _fails(capsys, tmp_path, pkl, "--option", f"repo={repo}",
           match="absent_pkg_for_omnibench_tests is not installed; the eg3d pickle imports it")
    assert "training" not in sys.modules and "torch_utils" not in sys.modules
