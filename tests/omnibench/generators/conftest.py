import pytest


@pytest.fixture(scope="session")
def small_head():
    """The embedded synthetic head (``small`` preset: fine enough for landmark checks)."""
    from omnibench.heads import load_head_model

    return load_head_model("synthetic")


@pytest.fixture(scope="session")
def oracle(small_head):
    from omnibench.generators.oracle import OracleGenerator

    return OracleGenerator(head=small_head, resolution=48)
