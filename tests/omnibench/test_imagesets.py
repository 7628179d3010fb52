import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omnibench.errors import MissingAssetError, OmnibenchError
from omnibench.imagesets import FeatureStats, open_image_set


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))


def _write_images(folder: Path, n: int = 5, size: int = 16, seed: int = 0, ext: str = "png") -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"img{i:03d}.{ext}")
        arrays.append(a)
    return arrays


def test_folder_opens_in_sorted_order_and_decodes_exactly(tmp_path):
    arrays = _write_images(tmp_path / "set", n=5)
    (tmp_path / "set" / ".DS_Store").write_bytes(b"junk")  # hidden files are ignored
    s = open_image_set(tmp_path / "set")
    assert s.kind == "folder" and len(s) == 5 and s.resolution == (16, 16)
    assert [e.name for e in s.entries] == sorted(e.name for e in s.entries)
    batches = list(s.iter_batches(2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    x = np.concatenate([b.numpy() for b in batches])
    assert x.dtype == np.uint8 and x.shape == (5, 3, 16, 16)
    np.testing.assert_array_equal(x, np.stack(arrays).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(np.concatenate([b.numpy() for b in s.iter_batches(5)]), x)


def test_content_hash_depends_on_bytes_not_location_and_zip_matches_folder(tmp_path):
    _write_images(tmp_path / "a", n=4, seed=1)
    _write_images(tmp_path / "b", n=4, seed=1)
    _write_images(tmp_path / "c", n=4, seed=2)
    ha, hb, hc = (open_image_set(tmp_path / d).content_hash for d in "abc")
    assert ha == hb != hc
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        for p in sorted((tmp_path / "a").iterdir()):
            zf.write(p, p.name)
    z = open_image_set(tmp_path / "a.zip")
    assert z.kind == "zip" and z.content_hash == ha
    np.testing.assert_array_equal(
        np.concatenate([b.numpy() for b in z.iter_batches(3)]),
        np.concatenate([b.numpy() for b in open_image_set(tmp_path / "a").iter_batches(3)]),
    )


def test_hash_memo_trusts_unchanged_size_and_mtime_only(tmp_path):
    _write_images(tmp_path / "s", n=3)
    h1 = open_image_set(tmp_path / "s").content_hash
    p = tmp_path / "s" / "img001.png"
    st = p.stat()
    # same size, same mtime, different bytes: the memo (like make/git) keeps the old hash ...
    data = bytearray(p.read_bytes())
    data[-13] ^= 0xFF  # inside the IEND/CRC tail region is still a decodable header
    p.write_bytes(bytes(data))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert open_image_set(p.parent).content_hash == h1
    # ... re-hashing on demand, or any mtime change, sees the new content
    assert open_image_set(p.parent, trust_mtime=False).content_hash != h1
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert open_image_set(p.parent).content_hash != h1


def test_dataset_folder_uses_labelled_images(tmp_path):
    d = tmp_path / "ds"
    _write_images(d / "images", n=4)
    labels = [[f"images/img{i:03d}.png", [0.0] * 25] for i in (2, 0)]  # subset, unsorted
    (d / "dataset.json").write_text(json.dumps({"labels": labels}))
    (d / "manifest.json").write_text("{}")
    s = open_image_set(d)
    assert s.kind == "dataset" and [e.name for e in s.entries] == ["images/img000.png", "images/img002.png"]
    (d / "dataset.json").write_text(json.dumps({"labels": [["img000.png", [0.0] * 25]]}))  # relative to images/
    assert [e.name for e in open_image_set(d).entries] == ["images/img000.png"]
    (d / "dataset.json").write_text(json.dumps({"labels": [["images/nope.png", [0.0] * 25]]}))
    with pytest.raises(OmnibenchError, match="do not exist: images/nope.png"):
        open_image_set(d)
    (d / "dataset.json").write_text("{not json")
    with pytest.raises(OmnibenchError, match="not valid JSON"):
        open_image_set(d)
    (d / "dataset.json").write_text(json.dumps({"labels": None}))
    assert len(open_image_set(d)) == 4


def test_missing_path(tmp_path):
    with pytest.raises(MissingAssetError, match="does not exist"):
        open_image_set(tmp_path / "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(OmnibenchError, match="contains no images"):
        open_image_set(tmp_path / "empty")


def test_unreadable_image(tmp_path):
    _write_images(tmp_path / "s", n=2)
    (tmp_path / "s" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(OmnibenchError, match="cannot read image 'broken.png'"):
        open_image_set(tmp_path / "s")


def test_truncated_image_fails_at_decode_with_its_name(tmp_path):
    _write_images(tmp_path / "s", n=2, size=64)
    p = tmp_path / "s" / "img001.png"
    p.write_bytes(p.read_bytes()[:200])  # header intact, pixel data cut
    s = open_image_set(tmp_path / "s")
    with pytest.raises(OmnibenchError, match="img001.png"):
        list(s.iter_batches(2))


def test_mixed_sizes(tmp_path):
    _write_images(tmp_path / "s", n=2, size=16)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "s" / "small.png")
    with pytest.raises(OmnibenchError, match="mixes image sizes.*16x16.*8x8"):
        open_image_set(tmp_path / "s")


def test_non_image_files(tmp_path):
    _write_images(tmp_path / "s", n=2)
    (tmp_path / "s" / "notes.txt").write_text("hello")
    with pytest.raises(OmnibenchError, match="non-image files: notes.txt"):
        open_image_set(tmp_path / "s")


def test_sixteen_bit_images_rejected(tmp_path):
    (tmp_path / "s").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint16)).save(tmp_path / "s" / "deep.png")
    with pytest.raises(OmnibenchError, match="more than 8 bits"):
        open_image_set(tmp_path / "s")


def test_grayscale_becomes_rgb_and_jpeg_warns(tmp_path):
    (tmp_path / "g").mkdir()
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "g" / "a.png")
    (x,) = open_image_set(tmp_path / "g").iter_batches(4)
    assert x.shape == (1, 3, 8, 8) and int(x.min()) == int(x.max()) == 77
    _write_images(tmp_path / "j", n=2, ext="jpg")
    with pytest.warns(UserWarning, match="lossy"):
        assert open_image_set(tmp_path / "j").lossy


def test_bad_zip_and_unknown_file_type(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"PK garbage")
    with pytest.raises(OmnibenchError, match="cannot read zip"):
        open_image_set(tmp_path / "x.zip")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(OmnibenchError, match="not an image set"):
        open_image_set(tmp_path / "x.txt")
    with zipfile.ZipFile(tmp_path / "e.zip", "w"):
        pass
    with pytest.raises(OmnibenchError, match="contains no images"):
        open_image_set(tmp_path / "e.zip")


def test_stats_file_roundtrip_and_validation(tmp_path):
    rng = np.random.default_rng(0)
    f = rng.normal(size=(10, 4)).astype(np.float32)
    st = FeatureStats(mu=f.mean(0).astype(np.float64), sigma=np.cov(f.astype(np.float64), rowvar=False),
                      features=f, n=10, meta={"weights_sha256": "abc"})
    st.save(tmp_path / "s.npz")
    s = open_image_set(tmp_path / "s.npz")
    assert s.is_stats and len(s) == 10
    back = s.stats()
    np.testing.assert_array_equal(back.features, f)
    np.testing.assert_array_equal(back.sigma, st.sigma)
    assert back.meta == {"weights_sha256": "abc"}
    with pytest.raises(OmnibenchError, match="holds no images"):
        next(s.iter_batches(2))
    # features only: mu/sigma derived; mu/sigma only (pytorch-fid style): no features
    np.savez(tmp_path / "f.npz", features=f)
    np.testing.assert_allclose(open_image_set(tmp_path / "f.npz").stats().mu, f.mean(0), rtol=1e-6)
    np.savez(tmp_path / "m.npz", mu=st.mu, sigma=st.sigma)
    assert open_image_set(tmp_path / "m.npz").stats().features is None
    np.savez(tmp_path / "bad.npz", foo=f)
    with pytest.raises(OmnibenchError, match="neither 'mu'\\+'sigma' nor 'features'"):
        open_image_set(tmp_path / "bad.npz")
    np.savez(tmp_path / "shape.npz", mu=st.mu, sigma=st.sigma[:2])
    with pytest.raises(OmnibenchError, match="do not match"):
        open_image_set(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(OmnibenchError, match="cannot read statistics file"):
        open_image_set(tmp_path / "junk.npz")
