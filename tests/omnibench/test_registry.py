import pytest

from omnibench.errors import OmnibenchError
from omnibench.registry import Registry


def test_lazy_entry_resolves_and_suggests():
    reg: Registry = Registry("thing")
    reg.register("json-dumps", "json:dumps", aliases=("dumps",))
    import json

    assert reg.get("json-dumps") is json.dumps
    assert reg.get("dumps") is json.dumps
    with pytest.raises(OmnibenchError, match="did you mean 'json-dumps'"):
        reg.get("json-dump")


def test_duplicate_and_bad_names_rejected():
    reg: Registry = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(ValueError):
        reg.register("a", 2)
    with pytest.raises(ValueError):
        reg.register("bad name", 3)
