"""Stage II training data: an EG3D-style dataset read with its provenance (content hash, camera framing)."""

from __future__ import annotations

from omnibench.data.synth import synthesize_dataset
from reference_model.gan.data import load_training_set


def test_training_set_records_the_datasets_camera_framing(tmp_path):
    synthesize_dataset(tmp_path / "v1", n=2, resolution=16, head="synthetic:tiny", seed=0)
    synthesize_dataset(tmp_path / "v2", n=2, resolution=16, head="synthetic:tiny", seed=0, framing="ffhq")
    a, b = load_training_set(str(tmp_path / "v1")), load_training_set(str(tmp_path / "v2"))
    assert (a.framing, b.framing) == ("v1", "ffhq") and a.content_hash != b.content_hash
    assert a.images.shape == (2, 3, 16, 16) and not a.camera.equal(b.camera)
