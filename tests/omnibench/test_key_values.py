"""omnibench.key_values: repeatable KEY=VALUE items."""

from __future__ import annotations

import pytest

from omnibench.errors import OmnibenchError
from omnibench.key_values import parse_options


def test_items_become_a_stripped_dict_and_the_last_repeat_wins():
    assert parse_options([" a = 1", "b=x=y", "a=2", "c="]) == {"a": "2", "b": "x=y", "c": ""}
    assert parse_options([]) == {}


@pytest.mark.parametrize("item", ["novalue", "=1"])
def test_an_item_without_a_key_or_equals_sign_is_one_error_naming_the_flag(item):
    with pytest.raises(OmnibenchError, match=r"--set expects KEY=VALUE, got '"):
        parse_options([item], flag="--set")
