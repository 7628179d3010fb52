import dataclasses

import pytest

from omnibench.errors import OmnibenchError
from omnibench.protocol import PROTOCOLS, get_protocol

# Pinned: editing a released protocol must change its version (and these hashes) on purpose.
GOLDEN = {
    "quick": "833cdcd616b2abdc875f9941cf4ab6ff96bc41cec0eca4eb93bbbc8faa5f2759",
    "standard": "d1780ac3e43d98a88bbfef6a59a9ecf00b69ccd955ef4f338a0e5e57783ffd92",
    "paper": "f04721c4a3fa064a4f8f5f8c3eee94c7de76e39cb351c8a2c057f371887462aa",
}


def test_hash_is_pinned_and_stable():
    for name, h in GOLDEN.items():
        assert PROTOCOLS[name].hash == h
        assert get_protocol(name).hash == h


def test_hashes_differ_and_follow_seed():
    hashes = {p.hash for p in PROTOCOLS.values()}
    assert len(hashes) == len(PROTOCOLS)
    q = get_protocol("quick", seed=7)
    assert q.seed == 7 and q.hash != PROTOCOLS["quick"].hash
    assert get_protocol("quick", seed=7).hash == q.hash
    assert get_protocol("quick", seed=0) is PROTOCOLS["quick"]


def test_protocols_are_frozen_and_complete():
    q = PROTOCOLS["quick"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.seed = 3  # type: ignore[misc]
    assert (q.main.n, q.views.n_groups, q.views.n_members, q.expr.n_groups, q.expr.n_members) == (500, 24, 3, 24, 3)
    assert q.resolution == 64
    assert PROTOCOLS["standard"].main.n == 5000
    paper = PROTOCOLS["paper"]
    assert paper.main.n == 50000 and paper.real_n is None and paper.flame_source == "labels"
    s = q.summary()
    assert {"name", "version", "seed", "hash"} <= set(s)


def test_unknown_protocol_suggests():
    with pytest.raises(OmnibenchError, match="did you mean 'quick'"):
        get_protocol("quik")
