"""The one checkpoint header: ``{"kind", "format"}`` first, written by ``save_checkpoint``, read by every loader."""

from pathlib import Path

import pytest
import torch

from omnibench.errors import CheckpointError
from omnibench.generators.base import (
    checkpoint_format,
    checkpoint_kind,
    load_checkpoint,
    read_checkpoint,
    read_checkpoint_kind,
    save_checkpoint,
)

ROOT = Path(__file__).resolve().parents[3]


def test_header_comes_first_and_replaces_header_keys_of_the_payload(tmp_path):
    p = tmp_path / "g.pt"
    save_checkpoint(p, "fake-gen", {"gain": torch.tensor(2.0), "kind": "stale", "format": 7})
    raw = torch.load(p, weights_only=True)
    assert list(raw) == ["kind", "format", "gain"] and raw["kind"] == "fake-gen" and raw["format"] == 1
    assert load_checkpoint(p, "fake-gen")["gain"] == 2.0
    save_checkpoint(p, "fake-gen", load_checkpoint(p, "fake-gen"), format=2)  # read back, written again
    assert list(torch.load(p, weights_only=True)) == ["kind", "format", "gain"]
    assert load_checkpoint(p, "fake-gen", (1, 2))["format"] == 2


def test_refusals_say_what_is_wrong(tmp_path):
    p = tmp_path / "w.pt"
    save_checkpoint(p, "omnibench.sdf", {})
    with pytest.raises(CheckpointError, match=r"is a 'omnibench.sdf' checkpoint, not an OmniAvatar generator \('omnibench.gan'\); do"):
        load_checkpoint(p, "omnibench.gan", name="an OmniAvatar generator", hint="do this")
    with pytest.raises(CheckpointError, match="expected kind 'fake-gen'; pass the right --generator"):
        load_checkpoint(p, "fake-gen")
    with pytest.raises(CheckpointError, match="'omnibench.sdf' format 1 is not supported"):
        load_checkpoint(p, "omnibench.sdf", (2,))
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="is not an omnibench checkpoint"):
        load_checkpoint(tmp_path / "plain.pt", "fake-gen")
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="corrupt or not a readable torch file"):
        read_checkpoint_kind(tmp_path / "junk.pt")


def test_older_headers_are_still_read(tmp_path):
    nested = {"omnibench_checkpoint": {"kind": "fake-gen", "format": 1}, "gain": torch.tensor(1.0)}  # core, before
    torch.save(nested, tmp_path / "nested.pt")
    assert load_checkpoint(tmp_path / "nested.pt", "fake-gen")["gain"] == 1.0
    assert (checkpoint_kind({"kind": "k", "format_version": 2}), checkpoint_format({"kind": "k", "format_version": 2})) == ("k", 2)
    assert checkpoint_format({"kind": "k"}) == 1  # a header without a format is format 1
    assert checkpoint_kind({"state_dict": {}}) is None and checkpoint_format({"state_dict": {}}) is None
    assert checkpoint_kind([1, 2]) is None


@pytest.mark.parametrize(("rel", "kind", "fmt"), [
    ("reference_model/checkpoints/sdf-tiny.pt", "omnibench.sdf", 1),
    ("reference_model/checkpoints/tiny.pt", "omnibench.gan", 1),
    ("reference_model/checkpoints/tiny-no-prior.pt", "omnibench.gan", 1),
    ("metrics/estimators/weights/regressor-synthflame-small-seed0.pt", "omnibench-flame-regressor", 2),
    ("metrics/backbones/weights/synthetic_id_v1.pt", None, None),  # shipped before the header existed
])
def test_shipped_files_are_read_unchanged(rel, kind, fmt):
    data = read_checkpoint(ROOT / rel)
    assert (checkpoint_kind(data), checkpoint_format(data)) == (kind, fmt)
