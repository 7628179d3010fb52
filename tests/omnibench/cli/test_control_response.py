"""``omnibench control-response`` on the command line: JSON on stdout and in ``--out``, exit 2 for bad input."""

import json

from omnibench.cli import main


def test_cli_writes_json_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["control-response", "--ckpt", "oracle-noexpr", "--reference", "oracle", "--n", "3", "--batch", "2",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    res = json.loads(out.read_text())
    assert json.loads(captured.out) == res
    assert res["n"] == 3 and res["groups"]["expression"]["mean_abs"] == 0.0
    assert res["reference_groups"]["expression"]["mean_abs"] > 0
    assert (res["ckpt"], res["reference"], res["protocol"], res["set"]) == ("oracle-noexpr", "oracle", "quick", "main")
    assert main(["control-response", "--ckpt", "oracle", "--n", "1"]) == 2
    assert "--n" in capsys.readouterr().err
    assert main(["control-response", "--ckpt", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt" in capsys.readouterr().err
