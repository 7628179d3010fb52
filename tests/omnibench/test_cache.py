import pytest
import torch

from omnibench.cache import SHARD_SIZE, SampleStore, cache_key, list_entries, remove_entries
from omnibench.errors import OmnibenchError


def _store(root, n=SHARD_SIZE * 2 + 5):
    return SampleStore(root, "main", "fake", cache_key({"name": "fake"}, "p" * 64, "main", {}), n,
                       {"protocol": {"name": "quick"}, "generator": {"generator": "fake"}})


def _shard(store, s):
    r = store.shard_range(s)
    return {"index": torch.arange(r.start, r.stop), "image": torch.full((len(r), 3, 2, 2), s, dtype=torch.uint8)}


def test_key_depends_on_every_part():
    base = cache_key({"name": "g", "sha256": "a"}, "h", "main", {"kind": "prior"})
    assert base == cache_key({"sha256": "a", "name": "g"}, "h", "main", {"kind": "prior"})
    for other in (
        cache_key({"name": "g", "sha256": "b"}, "h", "main", {"kind": "prior"}),
        cache_key({"name": "g", "sha256": "a"}, "h2", "main", {"kind": "prior"}),
        cache_key({"name": "g", "sha256": "a"}, "h", "views", {"kind": "prior"}),
        cache_key({"name": "g", "sha256": "a"}, "h", "main", {"kind": "labels"}),
    ):
        assert other != base


def test_shards_roundtrip_resume_and_rm(tmp_path):
    st = _store(tmp_path)
    assert st.n_shards == 3 and st.missing() == [0, 1, 2]
    st.write_shard(1, _shard(st, 1))
    assert st.missing() == [0, 2] and not st.complete()
    with pytest.raises(OmnibenchError):
        st.write_shard(0, _shard(st, 1))  # wrong index range
    st.write_shard(0, _shard(st, 0))
    st.write_shard(2, _shard(st, 2))
    data = st.read_all()
    assert data["index"].tolist() == list(range(st.n))
    assert data["image"][SHARD_SIZE, 0, 0, 0] == 1
    assert not list(st.dir.glob("*.tmp"))  # atomic writes leave no temporaries
    (e,) = list_entries(tmp_path)
    assert e["shards"] == "3/3" and e["n"] == st.n and e["protocol"] == "quick"
    assert remove_entries(tmp_path, [e["id"][:10]]) == [e["id"]]
    assert not st.dir.exists()


def test_corrupt_shard_is_reported(tmp_path):
    st = _store(tmp_path)
    st.write_shard(0, _shard(st, 0))
    st.shard_path(0).write_bytes(b"garbage")
    with pytest.raises(OmnibenchError, match="cache rm"):
        st.read_shard(0)
