"""Sub-commands of plug-ins (``omnibench.tools`` entry points): in ``--help`` at the place SUBCOMMANDS gives
them, unlisted ones after the built-ins, missing ones left out."""

import argparse
from importlib import metadata

from omnibench import cli
from omnibench.cli import plugins


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def _register_hello(sub) -> None:
    sub.add_parser("hello", help="a tool of an outside plug-in")


def test_the_packages_contribute_their_tools():
    tools = plugins.installed()
    assert tools["fid"].value == "metrics.fid_cli:register"
    assert tools["estimators"].value == "metrics.estimators.cli:register"
    assert tools["eval-sdf"].value == "reference_model.sdf.cli:register_eval"
    assert {name for name, module in cli.SUBCOMMANDS.items() if module == cli.PLUGIN} == {"fid", "estimators", "eval-sdf"}


def test_help_lists_the_subcommands_in_order():
    assert _commands(cli.build_parser()) == list(cli.SUBCOMMANDS)


def test_unlisted_tools_come_last_and_missing_ones_are_left_out(monkeypatch):
    tools = {n: ep for n, ep in plugins.installed().items() if n != "fid"}
    tools["hello"] = metadata.EntryPoint("hello", f"{__name__}:_register_hello", plugins.GROUP)
    monkeypatch.setattr(plugins, "installed", lambda: dict(sorted(tools.items())))
    names = _commands(cli.build_parser())
    assert names == [n for n in cli.SUBCOMMANDS if n != "fid"] + ["hello"]
