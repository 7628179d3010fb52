"""``omnibench ls``: protocols, generators and metrics, as text and JSON."""

import json

from omnibench.cli import main


def test_ls_protocols_and_generators(capsys):
    assert main(["ls", "protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["ref"] for r in rows] == ["quick@1", "quick@2", "standard@1", "standard@2", "paper@1", "paper@2"]
    assert [r["framing"] for r in rows if r["default"]] == ["ffhq", "ffhq", "ffhq"]  # v2 is the default since #20
    assert main(["ls", "protocols"]) == 0
    assert "quick@2" in capsys.readouterr().out
    assert main(["ls", "generators"]) == 0
    assert "oracle" in capsys.readouterr().out
    assert main(["ls", "metrics", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
