"""Real-set plumbing: the default synthetic set is built once and cached; bad real sets exit 2."""

import json
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from omnibench.cli import main
from omnibench.evaluation import evaluate

GEN = "tests.omnibench.fakes:FakeGenerator64"
REAL = "tests.omnibench.fakes:RealCount"


class _Set:
    def __init__(self, path):
        self.files = sorted(Path(path).rglob("*.png"))
        self.content_hash = "c" * 64

    def __len__(self):
        return len(self.files)


@pytest.fixture
def stub_modules(monkeypatch, tmp_path):
    """Stand-ins for the dataset renderer and the image-set reader of the real-set module, recording calls."""
    calls = []

    def synthesize_dataset(out, n, resolution=64, head="synthetic", seed=0, workers=1, force=False, **kw):
        calls.append((n, resolution, head, seed))
        out = Path(out)
        (out / "images").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (out / "images" / f"img{i:08d}.png").write_bytes(b"png")
        (out / "manifest.json").write_text("{}")
        return {}

    import omnibench.evaluation.real_set as real_set

    monkeypatch.setattr(real_set, "synthesize_dataset", synthesize_dataset)
    monkeypatch.setattr(real_set, "SYNTH_VERSION", "t")
    monkeypatch.setattr(real_set, "open_image_set", _Set)
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    return calls


def test_default_real_set_is_built_once(stub_modules, monkeypatch):
    import omnibench.evaluation as ev

    monkeypatch.setattr(ev.EvalContext, "head_model", lambda self: types.SimpleNamespace(sha256="h" * 64, n_shape=10, n_expression=5))
    r = evaluate("fake64", generator=GEN, metrics=[REAL], progress=False, protocol="quick@1")
    assert stub_modules == [(500, 64, "synthetic", 0)]  # quick: real_n 500 at 64 px, protocol seed
    assert r["metrics"]["real-count"]["value"] == 500 and r["real"]["hash"] == "c" * 64
    assert "/datasets/synth-synthetic-hhhhhhhhhhhh-n500-r64-s0-vt" in r["real"]["path"]
    r2 = evaluate("fake64", generator=GEN, metrics=[REAL], progress=False, protocol="quick@1")
    assert len(stub_modules) == 1 and r2["real"] == r["real"]


def test_explicit_real_path_is_used(stub_modules, tmp_path):
    d = tmp_path / "real"
    d.mkdir()
    (d / "a.png").write_bytes(b"x")
    r = evaluate("fake64", generator=GEN, metrics=[REAL], progress=False, real=d)
    assert r["metrics"]["real-count"]["value"] == 1 and stub_modules == []


# --- bad real sets: one clear error, exit 2, nothing written ---------


def _write_png(path, size):
    from PIL import Image

    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(path)


def _bad_real_sets(tmp: Path) -> dict[str, Path]:
    empty = tmp / "empty"
    empty.mkdir()
    mixed = tmp / "mixed"
    mixed.mkdir()
    _write_png(mixed / "a.png", 16)
    _write_png(mixed / "b.png", 32)
    badzip = tmp / "bad.zip"
    badzip.write_bytes(b"PK not really a zip")
    emptyzip = tmp / "empty.zip"
    with zipfile.ZipFile(emptyzip, "w"):
        pass
    return {"empty": empty, "mixed": mixed, "badzip": badzip, "emptyzip": emptyzip}


@pytest.mark.parametrize("case", ["empty", "mixed", "badzip", "emptyzip"])
def test_bad_real_set_exits_2(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMNIBENCH_CACHE", str(tmp_path / "cache"))
    path = _bad_real_sets(tmp_path)[case]
    out = tmp_path / "r.json"
    code = main(["evaluate", "--no-progress", "--ckpt", "fake64", "--generator", GEN, "--metrics", REAL,
                 "--real", str(path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("omnibench: error:"), err
    assert not out.exists()


def test_v2_real_set_is_rendered_with_the_ffhq_framing(tmp_path, monkeypatch):
    from dataclasses import replace

    from omnibench.errors import OmnibenchError
    from omnibench.evaluation.real_set import default_real_path
    from omnibench.protocol import get_protocol

    q1 = replace(get_protocol("quick@1"), real_n=2, resolution=24)
    q2 = replace(get_protocol("quick@2"), real_n=2, resolution=24)
    p1, _ = default_real_path(q1, "synthetic:tiny", "c" * 64, tmp_path, progress=False)
    p2, built = default_real_path(q2, "synthetic:tiny", "c" * 64, tmp_path, progress=False)
    assert p1.name.endswith("-v1") and p2.name == p1.name + "-ffhq" and built > 0  # v1 names as before
    assert "framing" not in json.loads((p1 / "manifest.json").read_text())
    assert json.loads((p2 / "manifest.json").read_text())["framing"]["name"] == "ffhq"
    assert default_real_path(q2, "synthetic:tiny", "c" * 64, tmp_path, progress=False) == (p2, 0.0)  # cached
    odd = replace(q2, camera=replace(q2.camera, radius=2.0))
    with pytest.raises(OmnibenchError, match="pass --real"):
        default_real_path(odd, "synthetic:tiny", "c" * 64, tmp_path, progress=False)
