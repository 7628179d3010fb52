"""``omnibench cache ls|rm``: the sample cache's entries, listed and removed."""

import dataclasses
import json
from pathlib import Path

from omnibench.cli import main
from omnibench.evaluation import evaluate
from omnibench.protocol import PROTOCOLS, SetSize


def test_cache_ls_and_rm(capsys, fresh_cache):
    fresh_cache()
    small = dataclasses.replace(PROTOCOLS["quick"], resolution=16, main=SetSize(130))
    evaluate("fake", generator="tests.omnibench.fakes:FakeGenerator", metrics=["tests.omnibench.fakes:MeanPixel"],
             protocol=small, progress=False)
    assert main(["cache", "ls", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["samples"]
    assert entry["set"] == "main" and entry["shards"] == "2/2" and entry["protocol"] == "quick"
    assert main(["cache", "rm", "nothing-like-this"]) == 2
    assert main(["cache", "rm", entry["id"]]) == 0
    assert not Path(entry["path"]).exists()
