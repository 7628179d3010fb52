import json

import pytest
import torch

from omnibench.errors import OmnibenchError
from omnibench.evaluation.draws import LabelBank, draw_samples, index_generator
from omnibench.generators.base import Controls
from omnibench.protocol import get_protocol

Q = get_protocol("quick@1")


class IndexPrior:
    """A cheap control source keyed like the real ones: shape ~ N(0, 1), expression ~ N(0, 0.25), no camera."""

    def __init__(self, n_shape: int, n_expression: int) -> None:
        self.n_shape, self.n_expression = n_shape, n_expression

    def draw(self, seed, set_name, stream, keys):
        gens = [index_generator(seed, set_name, stream, k) for k in keys]
        return Controls(
            camera=torch.zeros(len(keys), 0),
            shape=torch.stack([torch.randn(self.n_shape, generator=g) for g in gens]),
            expression=torch.stack([0.5 * torch.randn(self.n_expression, generator=g) for g in gens]),
            pose=torch.zeros(len(keys), 15),
        )

    def describe(self):
        return {"kind": "prior", "sampler": "test-index-prior"}


def _eq(a, b):
    for f in ("index", "group", "member", "z"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    for f in ("camera", "shape", "expression", "pose"):
        assert torch.equal(getattr(a.controls, f), getattr(b.controls, f)), f


@pytest.mark.parametrize("set_name", ["main", "views", "expr"])
def test_draws_do_not_depend_on_batching_or_order(set_name):
    src = IndexPrior(10, 5)
    full = draw_samples(Q, set_name, list(range(12)), 8, src)
    one_by_one = [draw_samples(Q, set_name, [i], 8, src) for i in range(12)]
    for i, s in enumerate(one_by_one):
        assert torch.equal(s.z[0], full.z[i])
        assert torch.equal(s.controls.camera[0], full.controls.camera[i])
        assert torch.equal(s.controls.expression[0], full.controls.expression[i])
    rev = draw_samples(Q, set_name, list(range(11, -1, -1)), 8, src)
    assert torch.equal(rev.z.flip(0), full.z)
    _eq(draw_samples(Q, set_name, list(range(12)), 8, src), full)


def test_set_structure():
    src = IndexPrior(10, 5)
    v = draw_samples(Q, "views", list(range(6)), 8, src)  # 2 groups x 3 views
    assert v.group.tolist() == [0, 0, 0, 1, 1, 1] and v.member.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(v.z[0], v.z[2]) and not torch.equal(v.z[0], v.z[3])
    assert torch.equal(v.controls.expression[0], v.controls.expression[1])
    assert not torch.equal(v.controls.camera[0], v.controls.camera[1])
    assert torch.equal(v.controls.camera[0], v.controls.camera[3])
    e = draw_samples(Q, "expr", list(range(6)), 8, src)
    assert torch.equal(e.z[0], e.z[1]) and torch.equal(e.controls.shape[0], e.controls.shape[2])
    assert not torch.equal(e.controls.expression[0], e.controls.expression[1])
    assert torch.equal(e.controls.camera[0], e.controls.camera[4])
    m = draw_samples(Q, "main", list(range(4)), 8, src)
    assert len({tuple(c.tolist()) for c in m.controls.camera}) == 4
    # sets and seeds are independent streams
    assert not torch.equal(m.z[0], draw_samples(Q, "expr", [0], 8, src).z[0])
    assert not torch.equal(m.z[0], draw_samples(Q.with_seed(1), "main", [0], 8, src).z[0])
    with pytest.raises(OmnibenchError):
        draw_samples(Q, "main", [Q.main.n], 8, src)


def test_label_bank_joint_draw(tmp_path):
    labels, flame = [], []
    for i in range(5):
        cam = [float(i)] * 25
        labels.append([f"img{i}.png", cam])
        flame.append([f"img{i}.png", {"shape": [float(i)] * 3, "expression": [float(i)] * 2, "pose": [float(i)] * 15}])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels, "flame": flame}))
    bank = LabelBank.from_dataset_json(tmp_path)
    c = bank.draw(0, "main", "flame", list(range(50)))
    # camera and FLAME come from the same row
    assert torch.equal(c.camera[:, 0], c.shape[:, 0]) and torch.equal(c.pose[:, 0], c.expression[:, 0])
    assert len(set(c.camera[:, 0].tolist())) > 1
    assert torch.equal(bank.draw(0, "main", "flame", [7]).camera[0], c.camera[7])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "dataset.json").write_text("{not json")
    with pytest.raises(OmnibenchError, match="dataset.json"):
        LabelBank.from_dataset_json(tmp_path / "bad")


def test_head_prior_uses_sampler_camera_and_per_key_seeds():
    from omnibench.cameras import orbit_camera
    from omnibench.evaluation.draws import HeadPrior
    from omnibench.generators.base import Controls

    calls = []

    def stub(n, seed, head, start_index=0):  # same signature as omnibench.data.synth.sample_controls
        calls.append((n, seed, start_index))
        g = torch.Generator().manual_seed(seed % (2**62))
        yaw = torch.rand(n, generator=g) - 0.5
        return Controls(orbit_camera(yaw, torch.zeros(n)), torch.randn(n, head.n_shape, generator=g),
                        torch.randn(n, head.n_expression, generator=g), torch.zeros(n, 15))

    class Head:
        name, sha256, n_shape, n_expression = "stub", "ab" * 32, 4, 3

    src = HeadPrior(Head(), stub, "1")
    m = draw_samples(Q, "main", list(range(6)), 8, src)
    assert all(c[0] == 1 for c in calls)
    # main takes the sampler's camera (joint draw), not the protocol's fallback distribution
    assert torch.equal(m.controls.camera[2], stub(1, calls[2][1], Head()).camera[0])
    assert torch.equal(draw_samples(Q, "main", [4], 8, src).controls.shape[0], m.controls.shape[4])
    assert src.describe()["head_sha256"] == "ab" * 32 and src.describe()["sampler_version"] == "1"


def test_v2_protocols_draw_cameras_on_the_ffhq_framing():
    """quick@2 differs from quick only in where the cameras sit: same latents, same FLAME draws, same yaw/pitch."""
    from omnibench.cameras import FRAMING_FFHQ, yaw_pitch_of
    from omnibench.data.control_prior import SAMPLER_VERSION, sample_controls
    from omnibench.evaluation.draws import HeadPrior
    from omnibench.protocol import get_protocol

    class Head:
        name, sha256, n_shape, n_expression = "stub", "ab" * 32, 4, 3

    q2 = get_protocol("quick@2")
    v1_src = HeadPrior(Head(), sample_controls, SAMPLER_VERSION)
    v2_src = HeadPrior(Head(), sample_controls, SAMPLER_VERSION, q2.camera.framing)
    assert "framing" not in v1_src.describe() and v2_src.describe()["framing"]["name"] == "ffhq"
    for set_name in ("main", "views", "expr"):
        a = draw_samples(Q, set_name, range(6), 8, v1_src)
        b = draw_samples(q2, set_name, range(6), 8, v2_src)
        assert torch.equal(a.z, b.z) and torch.equal(a.controls.expression, b.controls.expression)
        assert torch.allclose(yaw_pitch_of(a.controls.camera), yaw_pitch_of(b.controls.camera, FRAMING_FFHQ.look_at),
                              atol=1e-5)
        dist = (b.controls.camera[:, [3, 7, 11]] - torch.tensor(FRAMING_FFHQ.look_at)).norm(dim=1)
        assert torch.allclose(dist, torch.full((6,), FRAMING_FFHQ.radius), atol=1e-5)
