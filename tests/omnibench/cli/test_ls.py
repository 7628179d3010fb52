"""``omnibench ls``: protocols, generators and metrics, as text and JSON."""

import json

from omnibench.cli import main


def test_ls_protocols_and_generators(capsys):
    assert main(["ls", "protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["quick", "standard", "paper"]
    assert main(["ls", "generators"]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["ls", "metrics", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
