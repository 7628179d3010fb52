import pytest

from omnibench.generators.eg3d import checkout as co
from tests.omnibench.generators.eg3d_checkouts import (
    SIDE_EFFECT,
    build_pickle,
    forget_checkouts,
    make_checkout,
    set_injection,
)


@pytest.fixture(scope="session")
def small_head():
    """The embedded synthetic head (``small`` preset: fine enough for landmark checks)."""
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


@pytest.fixture(scope="session")
def oracle(small_head):
    from omnibench.generators.oracle import OracleGenerator

    return OracleGenerator(head=small_head, resolution=48)


@pytest.fixture(scope="session")
def eg3d_files(tmp_path_factory):
    """Stand-in checkouts and pickles: ``eg3d`` (clean), ``side`` (a pickle whose stored source writes the file
    named by $STANDIN_SIDE_EFFECT when executed; the checkout itself is clean again), ``stylegan2`` (another
    family), ``next3d``, ``omni`` (OmniAvatar's release layout), ``truncated``; ``*_repo``: their checkouts."""
    root = tmp_path_factory.mktemp("eg3d")
    f = {"root": root, "repo": make_checkout(root / "eg3d")}
    f["pkl"] = build_pickle(f["repo"], root / "snapshot.pkl")
    f["side_repo"] = make_checkout(root / "side", inject=SIDE_EFFECT)
    f["side_pkl"] = build_pickle(f["side_repo"], root / "side.pkl")
    set_injection(f["side_repo"], "eg3d", "")  # the user's checkout is clean; only the pickle carries the code
    f["stylegan2"] = build_pickle(f["repo"], root / "stylegan2.pkl", "stylegan2")
    f["next3d_repo"] = make_checkout(root / "next3d", "next3d")
    f["next3d"] = build_pickle(f["next3d_repo"], root / "next3d.pkl", "next3d")
    f["omni_repo"] = make_checkout(root / "omniavatar", "omniavatar")
    f["omni"] = build_pickle(f["omni_repo"], root / "omniavatar.pkl", "omniavatar")
    data = f["pkl"].read_bytes()
    (root / "truncated.pkl").write_bytes(data[: len(data) // 2])
    f["truncated"] = root / "truncated.pkl"
    return f


@pytest.fixture
def one_checkout_per_test(monkeypatch):
    """No EG3D-style checkout is loaded before or after the test, and $OMNIBENCH_EG3D_REPO is unset."""
    monkeypatch.delenv(co.ENV_REPO, raising=False)
    forget_checkouts()
    yield
    forget_checkouts()
