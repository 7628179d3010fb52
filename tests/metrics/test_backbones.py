"""arcface (stand-in ONNX of the real input/output format) and dlib backbones on real package photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from metrics.backbones import load_backbone
from metrics.backbones.arcface import ArcFaceBackbone, resolve_model
from metrics.backbones.dlib_backbone import DlibBackbone
from omnibench.errors import MissingAssetError, OmnibenchError
from tests.metrics.real_photos import T1_BOXES, astronaut, crop_square, insightface_image, variants


def _nchw(*imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy())


class StandIn(torch.nn.Module):
    """Random recognition network with ArcFace's interface: 1x3x112x112 float -> 1x512."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
        self.fc = torch.nn.Linear(8 * 27 * 27, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def standin_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    folder = home / ".insightface" / "models" / "standin"
    folder.mkdir(parents=True)
    net = StandIn().eval()
    torch.onnx.export(
        net,
        torch.zeros(1, 3, 112, 112),
        str(folder / "w600k_standin.onnx"),
        input_names=["input.1"],
        output_names=["fc1"],
        dynamo=False,
    )
    return home, net


@pytest.fixture
def arcface(standin_home, monkeypatch):
    home, net = standin_home
    monkeypatch.setenv("HOME", str(home))
    return ArcFaceBackbone("standin"), net


def _reference(net: torch.nn.Module, rgb: np.ndarray, box=(0.1, 0.1, 0.9, 0.9)) -> np.ndarray:
    """Independent computation: centre crop, resize to 112, (x - 127.5) / 127.5 in RGB order (insightface
    reads BGR and swaps to RGB in ``blobFromImages``), network, L2-normalise."""
    h, w = rgb.shape[:2]
    c = rgb[round(box[1] * h) : round(box[3] * h), round(box[0] * w) : round(box[2] * w)]
    c = cv2.resize(c, (112, 112), interpolation=cv2.INTER_AREA if c.shape[0] > 112 else cv2.INTER_LINEAR)
    x = (c.astype(np.float32) - 127.5) / 127.5
    with torch.no_grad():
        e = net(torch.from_numpy(x.transpose(2, 0, 1).copy())[None]).numpy()[0]
    return e / np.linalg.norm(e)


def test_arcface_standin_matches_independent_computation_on_real_photos(arcface):
    bb, net = arcface
    hanks = insightface_image("Tom_Hanks_54745.png")
    astro = astronaut()
    emb, det = bb.embed(_nchw(hanks, hanks[:, ::-1].copy()))
    assert emb.shape == (2, 512) and det.all() and bb.dim == 512
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    assert np.allclose(emb[0].numpy(), _reference(net, hanks), atol=1e-4)
    assert np.allclose(emb[1].numpy(), _reference(net, hanks[:, ::-1].copy()), atol=1e-4)
    e2, _ = bb.embed(_nchw(astro))
    assert np.allclose(e2[0].numpy(), _reference(net, astro), atol=1e-4)
    assert bb.name == "arcface:standin/w600k_standin.onnx" and len(bb.sha256) == 64
    assert bb.describe()["crop"].startswith("centre")


def test_arcface_explicit_path_and_missing_model(standin_home, tmp_path, monkeypatch):
    home, _ = standin_home
    path = home / ".insightface" / "models" / "standin" / "w600k_standin.onnx"
    rec, det = resolve_model(str(path))
    assert rec == path and det is None
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingAssetError, match="insightface"):
        ArcFaceBackbone("buffalo_l")
    with pytest.raises(MissingAssetError):
        ArcFaceBackbone(str(tmp_path / "nope.onnx"))


def test_arcface_detector_alignment_path(arcface):
    """With a detector, the 5 keypoints align the crop to the ArcFace template (norm_crop)."""
    from insightface.utils.face_align import arcface_dst

    bb, net = arcface
    hanks = insightface_image("Tom_Hanks_54745.png")  # already an aligned 112 crop: template keypoints

    class FakeDetector:
        def detect(self, img, input_size=None, max_num=0):
            if img.mean() < 1:
                return np.zeros((0, 5)), np.zeros((0, 5, 2))
            return np.array([[0, 0, 112, 112, 0.99]]), arcface_dst[None].copy()

    bb.detector = FakeDetector()
    emb, det = bb.embed(_nchw(hanks, np.zeros_like(hanks)))
    assert det.tolist() == [True, False]
    assert np.allclose(emb[0].numpy(), _reference(net, hanks, box=(0, 0, 1, 1)), atol=1e-3)
    assert emb[1].abs().sum() == 0


def test_backbone_input_validation(arcface):
    bb, _ = arcface
    with pytest.raises(OmnibenchError, match="uint8"):
        bb.embed(torch.zeros(1, 3, 112, 112))
    with pytest.raises(OmnibenchError, match="shape"):
        bb.embed(torch.zeros(1, 112, 112, 3, dtype=torch.uint8))


def test_dlib_same_face_close_different_people_far():
    bb = load_backbone("dlib")
    assert isinstance(bb, DlibBackbone)
    t1 = insightface_image("t1.jpg")
    astro = cv2.resize(astronaut()[0:400, 60:420], (256, 256), interpolation=cv2.INTER_AREA)
    crop = cv2.resize(astronaut()[40:360, 100:400], (256, 256), interpolation=cv2.INTER_AREA)
    same = variants(astro) + [crop]
    people = [crop_square(t1, b) for b in T1_BOXES[:5]]  # the sixth face is small and blurred
    hanks = insightface_image("Tom_Hanks_54745.png")  # 112 px: upscaled before detection
    emb, det = bb.embed(_nchw(*same, *people, cv2.resize(hanks, (256, 256))))
    assert det.all()
    e = emb.double().numpy()
    sim = e @ e.T
    n = len(same)
    assert sim[:n, :n].min() > 0.97  # same person under flip / crop / brightness
    others = sim[n:, n:][~np.eye(len(people) + 1, dtype=bool)]
    assert others.max() < 0.93 and sim[:n, n:].max() < 0.93  # different people


def test_dlib_no_face_is_not_detected():
    bb = load_backbone("dlib")
    gray = np.full((128, 128, 3), 128, np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    emb, det = bb.embed(_nchw(gray, noise))
    assert det.tolist() == [False, False] and emb.abs().sum() == 0
