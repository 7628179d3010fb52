"""The fast Inception path (metrics.inception, impl="fast") against torch-fidelity's own network.

25 images of five sizes (random noise and structured patterns; 299x299 skips the resize, the others
take the up- and down-sampling paths). The torch-fidelity features are computed once a module.
"""

import numpy as np
import pytest
import torch
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

from metrics import inception
from omnibench.errors import OmnibenchError

FEATURE_RTOL = 1e-5  # max |fast - reference| / max |reference|, per image
FID_RTOL = 1e-4


def _structured(h: int, w: int, kind: int) -> np.ndarray:
    """An (h, w, 3) uint8 image: gradients, checkerboards, rings, stripes, flat colours."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:
        img = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1)], -1) * 255
    elif kind == 1:
        img = np.repeat((((x // 4) + (y // 4)) % 2 * 255)[..., None], 3, -1)
    elif kind == 2:
        r = np.hypot(x - w / 2, y - h / 2)
        img = np.stack([np.sin(r / 3), np.cos(r / 5), np.sin(r / 7 + 1)], -1) * 127.5 + 127.5
    elif kind == 3:
        img = np.stack([(x % 7) * 36, (y % 5) * 60, ((x + 2 * y) % 11) * 23], -1)
    elif kind == 4:
        img = np.zeros((h, w, 3))
    elif kind == 5:
        img = np.full((h, w, 3), 255.0)
    else:
        img = np.broadcast_to(np.array([200.0, 30.0, 90.0]), (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _groups() -> list[torch.Tensor]:
    """One uint8 (B, 3, H, W) tensor per image size."""
    rng = np.random.default_rng(0)
    groups = []
    # five images a size: every call below then runs the same batch shapes (fewer oneDNN kernels to build)
    for (h, w), n_random, kinds in [((32, 32), 3, [0, 4]), ((64, 64), 1, [2, 3, 5, 6]),
                                     ((299, 299), 3, [0, 2]), ((48, 80), 3, [1, 3]), ((320, 352), 3, [2, 1])]:
        imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n_random)]
        imgs += [_structured(h, w, k) for k in kinds]
        groups.append(torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous())
    return groups


def _features(groups: list[torch.Tensor], batch_size: int, impl: str | None = None) -> np.ndarray:
    return np.concatenate([inception.extract_features([g], batch_size=batch_size, impl=impl) for g in groups])


def _rel(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(a - ref).max(axis=1) / np.abs(ref).max(axis=1)


def _fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID in float64; tr sqrt(S_a S_b) from the singular values of the small cross-Gram matrix."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    ca, cb = a - a.mean(0), b - b.mean(0)
    na, nb = len(a) - 1, len(b) - 1
    tr_sqrt = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na * nb)
    mean_term = ((a.mean(0) - b.mean(0)) ** 2).sum()
    return float(mean_term + (ca**2).sum() / na + (cb**2).sum() / nb - 2 * tr_sqrt)


@pytest.fixture(scope="module")
def groups():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return _groups()


@pytest.fixture(scope="module")
def reference(groups):
    return _features(groups, batch_size=16, impl="torch-fidelity")


@pytest.fixture(scope="module")
def fast(groups):
    return _features(groups, batch_size=16)


def test_fast_is_the_default_and_matches_torch_fidelity(groups, reference, fast):
    assert isinstance(inception.load_extractor("cpu"), inception.FastInceptionV3)
    assert inception.load_extractor("cpu") is inception.load_extractor("cpu", impl="fast")  # built once
    assert fast.shape == reference.shape == (sum(len(g) for g in groups), 2048)
    assert fast.dtype == np.float32
    rel = _rel(fast, reference)
    assert rel.max() < FEATURE_RTOL, rel.max()
    assert not np.array_equal(fast, reference)  # really two implementations


def test_fid_matches_reference(reference, fast):
    idx = np.arange(len(fast))
    a, b = idx % 2 == 0, idx % 2 == 1
    ref_fid, fast_fid = _fid(reference[a], reference[b]), _fid(fast[a], fast[b])
    assert ref_fid > 1.0
    assert abs(fast_fid - ref_fid) / ref_fid < FID_RTOL


def test_features_do_not_depend_on_batch_size_and_are_deterministic(groups, fast):
    # 32x32 and 299x299 images (5 + 2) against the fixture's run of all of them at batch 16
    n0, n01 = len(groups[0]), len(groups[0]) + len(groups[1])
    sub, rows = [groups[0], groups[2][:2]], np.r_[0:n0, n01 : n01 + 2]
    want = fast[rows]
    scale = np.abs(want).max(axis=1, keepdims=True)
    for bs in (1, 7):
        f = _features(sub, batch_size=bs)
        np.testing.assert_allclose(f / scale, want / scale, rtol=0, atol=1e-6)
    # the same call twice is bit-identical
    few = [groups[1][:3]]
    np.testing.assert_array_equal(_features(few, batch_size=2), _features(few, batch_size=2))


def test_portable_conv2d_path_matches(groups, reference):
    """The path CUDA (and a torch without oneDNN) takes: conv2d + relu, no packed weights."""
    model = inception.FastInceptionV3(inception.load_extractor("cpu", impl="torch-fidelity"))
    model = model.to(memory_format=torch.channels_last)
    assert all(m.packed is None for m in model.modules() if isinstance(m, inception._ConvReLU))
    n0, n1 = len(groups[0]), len(groups[1])
    got = np.concatenate([model(groups[0][:1])[0].numpy(), model(groups[1][-2:])[0].numpy()])
    want = np.concatenate([reference[:1], reference[n0 + n1 - 2 : n0 + n1]])
    assert _rel(got, want).max() < FEATURE_RTOL


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (299, 299), (300, 299), (512, 384), (1, 7)])
def test_preprocess_is_bit_identical_to_torch_fidelity(size):
    g = torch.Generator().manual_seed(sum(size))
    x = torch.randint(0, 256, (2, 3, *size), generator=g, dtype=torch.uint8)
    want = (interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False) - 128) / 128
    got = inception.preprocess(x)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, want)


def test_extractor_info_records_the_implementation():
    fast, ref = inception.extractor_info(), inception.extractor_info(impl="torch-fidelity")
    assert fast["implementation"].startswith("omnibench-fast-v")
    assert ref["implementation"].startswith("torch-fidelity-")
    assert {k: v for k, v in fast.items() if k != "implementation"} == {
        k: v for k, v in ref.items() if k != "implementation"}
    with pytest.raises(OmnibenchError, match="unknown Inception implementation"):
        inception.extract_features([torch.zeros(1, 3, 8, 8, dtype=torch.uint8)], impl="tf")


def test_environment_chooses_the_implementation_where_none_is_passed(monkeypatch):
    from metrics import fid

    fast_key = fid.stats_cache_key("set", "w")
    monkeypatch.setenv(inception.IMPL_ENV, "torch-fidelity")
    assert inception.extractor_info()["implementation"].startswith("torch-fidelity-")
    assert inception.load_extractor("cpu") is inception.load_extractor("cpu", impl="torch-fidelity")
    assert fid.stats_cache_key("set", "w") != fast_key  # cached statistics of the two never mix
    assert inception.resolve_impl("fast") == "fast"  # an explicit argument wins
    monkeypatch.setenv(inception.IMPL_ENV, "tf")
    with pytest.raises(OmnibenchError, match="OMNIBENCH_INCEPTION_IMPL"):
        inception.extractor_info()


def test_check_device_accepts_cuda_index_strings(monkeypatch):
    assert inception.parse_device("cpu") == "cpu"
    assert inception.parse_device("cuda") == "cuda"
    assert inception.parse_device("cuda:1") == "cuda:1"
    assert inception.parse_device(torch.device("cuda", 3)) == "cuda:3"
    for bad in ("gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "cuda:1:2", "mps"):
        with pytest.raises(OmnibenchError, match="unknown device"):
            inception.check_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OmnibenchError, match="no CUDA device is available"):
        inception.check_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert inception.check_device("cuda:1") == "cuda:1"
    assert inception.check_device("cuda") == "cuda"
    with pytest.raises(OmnibenchError, match="only 2 CUDA device"):
        inception.check_device("cuda:2")


def test_cuda_index_devices_get_deterministic_settings():
    b = torch.backends
    before = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
    with inception._deterministic("cuda:1"):
        assert not b.cuda.matmul.allow_tf32 and not b.cudnn.allow_tf32
        assert b.cudnn.deterministic and not b.cudnn.benchmark
    assert (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark) == before


def test_cpu_extraction_keeps_ieee_float32_convolutions():
    conv = getattr(torch.backends.mkldnn, "conv", None)
    before = getattr(conv, "fp32_precision", None)
    if before is None:
        pytest.skip("this torch has no mkldnn.conv.fp32_precision")
    conv.fp32_precision = "bf16"  # a process that asked for reduced precision elsewhere
    try:
        with inception._deterministic("cpu"):
            assert conv.fp32_precision == "ieee"
        assert conv.fp32_precision == "bf16"
    finally:
        conv.fp32_precision = before
