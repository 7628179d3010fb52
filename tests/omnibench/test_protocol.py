import dataclasses

import pytest

from omnibench.errors import OmnibenchError
from omnibench.protocol import PROTOCOLS, get_protocol

# Pinned: editing a released protocol must change its version (and these hashes) on purpose.
GOLDEN = {  # version 1
    "quick": "f525d249c3a80a15e44af04ad652a2561c1d1b377a904393d80535133335b68e",
    "standard": "ffa5457d5c3dcae655a2ba212c8ec58630f5edd690c0a5191f12b934ec33ad8e",
    "paper": "3d5411ca6ee948ffd011806ebfdf5707813a570066652a2c488f71558356f9a8",
}
GOLDEN_V2 = {
    "quick": "93c5411fffa5fb13bc084fa9990e915748ff812f6e5a0866475d0a9ca11c1644",
    "standard": "5a9c4b420f5b56b47e83e57aa76365a43ccfe38011bbbc1a92a2b090bec7437e",
    "paper": "2789ddad2ecda85598f309c2ff5a2e380e3bc93cfd73cf861a47a243da87f9c8",
}


def test_hash_is_pinned_and_stable():
    for name in GOLDEN:
        assert get_protocol(f"{name}@1").hash == GOLDEN[name]
        assert PROTOCOLS[name].hash == GOLDEN_V2[name]  # the bare name is the current default, v2
        assert get_protocol(name).hash == get_protocol(f"{name}@2").hash == GOLDEN_V2[name]


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


def test_v2_is_the_same_protocol_framed_like_ffhq():
    from omnibench.cameras import FRAMING_FFHQ
    from omnibench.protocol import DEFAULT_VERSIONS, RELEASES

    for name in ("quick", "standard", "paper"):
        v1, v2 = get_protocol(f"{name}@1"), get_protocol(f"{name}@v2")
        assert (v1.version, v2.version) == (1, 2) and v2 is PROTOCOLS[name] and DEFAULT_VERSIONS[name] == 2
        assert v2.camera.framing is FRAMING_FFHQ and v1.camera.framing.name == "v1"
        assert v1.hash == GOLDEN[name] and v2.hash == GOLDEN_V2[name]
        d1, d2 = v1.to_dict(), v2.to_dict()
        assert "look_at" not in d1["camera"] and d2["camera"]["look_at"] == [0.0, 0.0, 0.077]
        assert d2["camera"]["radius"] == FRAMING_FFHQ.radius
        # everything but the camera framing (and the description) is v1's
        for d in (d1, d2):
            d.pop("camera"), d.pop("version"), d.pop("description")
        assert d1 == d2
        assert RELEASES[(name, 2)] is v2 and v2.ref == f"{name}@2"
    assert get_protocol("quick@2", seed=5).seed == 5


def test_bad_versions_are_one_clear_error():
    with pytest.raises(OmnibenchError, match="'quick' has no version 3; released: quick@1, quick@2"):
        get_protocol("quick@3")
    with pytest.raises(OmnibenchError, match="must be a number"):
        get_protocol("quick@latest")
    with pytest.raises(OmnibenchError, match="did you mean 'quick'"):
        get_protocol("quik@2")
