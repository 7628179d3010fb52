"""The pre-trained control encoder file (omnibench train gan-encoder -> train gan --encoder)."""

import pytest
import torch

from omnibench.errors import CheckpointError, OmnibenchError
from omnibench.heads.face_align import face_grid
from reference_model.gan.checkpoint import load_generator
from reference_model.gan.data import TrainingSet
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.encoder_training import (
    TINTS,
    EncoderRecipe,
    concat_training_sets,
    load_encoder,
    photometric_jitter,
    save_encoder,
    score_encoder,
    train_encoder,
)
from reference_model.gan.train import Trainer
from tests.reference_model.gan.test_gan import CFG, LinearHead, make_data, make_sdf, sdf_meta


def _const_set(value: float, n: int = 8) -> TrainingSet:
    d = make_data(n)
    return TrainingSet(images=d.images, camera=d.camera, shape=d.shape, expression=torch.full((n, 4), value),
                       pose=torch.zeros(n, 15), content_hash=f"c{value}", path=f"mem{value}")


def test_finish_phase_draws_only_from_the_finish_set():
    """Labels constant per set: after a finish phase on the set labelled 0 the estimates move toward 0,
    without it they stay near the main set's 3."""
    recipe = EncoderRecipe(steps=60, batch=8, lr=1e-2, seed=0, finish_fraction=0.5)
    main, finish = _const_set(3.0), _const_set(0.0)
    with_finish = train_encoder(4, False, main, recipe, finish=finish, quiet=True)
    without = train_encoder(4, False, main, EncoderRecipe(steps=60, batch=8, lr=1e-2, seed=0), quiet=True)
    img = main.images.float() / 255
    assert without(img)[0].mean() > 2.0
    assert with_finish(img)[0].abs().mean() < 1.0


def test_training_is_deterministic_and_scores_a_known_answer():
    d = make_data(8)
    r = EncoderRecipe(steps=3, batch=4, seed=1)
    a, b = train_encoder(4, False, d, r, quiet=True), train_encoder(4, False, d, r, quiet=True)
    for va, vb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(va, vb)
    # an encoder that outputs the labels' mean has R^2 exactly 0 on every column
    E = ControlEncoder(4)
    with torch.no_grad():
        for p in E.parameters():
            p.zero_()
        E.head.bias[:4] = d.expression.mean(0)
    s = score_encoder(E, d)
    assert s["expression_r2"] == pytest.approx([0.0] * 4, abs=1e-4)
    assert s["expression_rmse_zero"] == pytest.approx(float(d.expression.square().mean().sqrt()), abs=1e-4)
    assert s["tint_shift"] == {name: 0.0 for name in TINTS}  # a constant read ignores every tint


def test_tint_shift_is_the_rms_change_of_the_read_under_each_tint():
    """An E whose expression read is the image's mean intensity moves by exactly the tint's change of that mean."""
    d = make_data(6)

    class MeanReader(torch.nn.Module):
        n_expression = 1

        def forward(self, image, camera=None):
            m = image.mean(dim=(1, 2, 3))[:, None]
            return m, torch.zeros(len(image), 6)

    s = score_encoder(MeanReader(), TrainingSet(images=d.images, camera=d.camera, shape=d.shape,
                                                expression=d.expression[:, :1], pose=d.pose, content_hash="h", path="p"))
    img = d.images.float() / 255
    for name, tint in TINTS.items():
        want = float((tint(img).clamp(0, 1).mean(dim=(1, 2, 3)) - img.mean(dim=(1, 2, 3))).square().mean().sqrt())
        assert s["tint_shift"][name] == pytest.approx(want, abs=1e-4), name


def test_photometric_jitter_bounds_determinism_and_training_use():
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    x = torch.rand(64, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(photometric_jitter(x, 0.0, g()), x)  # strength 0 is the identity
    y = photometric_jitter(x, 0.3, g())
    assert torch.equal(y, photometric_jitter(x, 0.3, g())) and float(y.min()) >= 0 and float(y.max()) <= 1
    # a flat grey image: the output is gain * 0.5 blended towards a grey, within the documented bounds
    flat = photometric_jitter(torch.full((256, 3, 1, 1), 0.5), 0.3, g()).flatten(1)
    lo, hi = 0.5 * 0.7 * 0.85 * 0.7, 0.5 * 1.3 * 1.15 * 0.7 + 0.3
    assert float(flat.min()) >= lo - 1e-6 and float(flat.max()) <= hi + 1e-6 and float(flat.std()) > 0.02
    d = make_data(8)
    plain = train_encoder(4, False, d, EncoderRecipe(steps=3, batch=4, seed=1), quiet=True)
    jit = [train_encoder(4, False, d, EncoderRecipe(steps=3, batch=4, seed=1, photometric=0.3), quiet=True) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(jit[0].state_dict().values(), jit[1].state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), jit[0].state_dict().values()))


def test_concat_pads_coefficients_and_refuses_mixed_sizes():
    a = make_data(3)
    b = make_data(2)
    b = TrainingSet(images=b.images, camera=b.camera, shape=b.shape[:, :2], expression=b.expression, pose=b.pose)
    c = concat_training_sets([a, b])
    assert len(c) == 5 and c.shape.shape == (5, 4) and torch.equal(c.shape[3:, 2:], torch.zeros(2, 2))
    small = TrainingSet(images=a.images[:, :, :8, :8], camera=a.camera, shape=a.shape, expression=a.expression, pose=a.pose)
    with pytest.raises(OmnibenchError, match="image sizes"):
        concat_training_sets([a, small])


def test_encoder_file_round_trips_into_a_gan_run_and_refuses_mismatches(tmp_path):
    head = LinearHead()
    d = make_data()
    E = train_encoder(4, True, d, EncoderRecipe(steps=2, batch=4), head=head, quiet=True)
    assert E.aligned
    path = save_encoder(tmp_path / "E.pt", E, head, EncoderRecipe(steps=2, batch=4),
                        [{"path": "mem", "content_hash": "abc", "n": 6}], [], score_encoder(E, d))
    E2, meta = load_encoder(path, head=head)
    img = d.images[:2].float() / 255
    assert torch.equal(E2(img, d.camera[:2])[0], E(img, d.camera[:2])[0])
    assert meta["data"][0]["content_hash"] == "abc" and len(meta["sha256"]) == 64
    with pytest.raises(CheckpointError, match="head model"):
        load_encoder(path, head=LinearHead(sha="head-b"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_encoder(tmp_path / "junk.pt")
    # a run freezes the given E (no training on its own data) and records where E came from
    sdf = make_sdf()
    with pytest.raises(OmnibenchError, match="expression columns"):
        Trainer(CFG, d, sdf, head, sdf_meta(sdf), tmp_path / "x", quiet=True, encoder=(E2, meta))
    tr = Trainer(CFG.with_overrides(enc_aligned=True), d, sdf, head, sdf_meta(sdf), tmp_path / "run", quiet=True,
                 encoder=(E2, meta))
    tr.run()
    _, E3, gmeta = load_generator(tmp_path / "run" / "checkpoint.pt", head=head)
    assert torch.equal(E3(img, d.camera[:2])[0], E(img, d.camera[:2])[0])
    assert gmeta["encoder"]["sha256"] == meta["sha256"] and gmeta["encoder"]["heldout"]["n"] == 6
    assert torch.equal(face_grid(head, size=32), E3.grid)


def test_fine_tuning_starts_from_the_given_encoder_and_refuses_another_layout():
    d = make_data(8)
    base = train_encoder(4, False, d, EncoderRecipe(steps=3, batch=4, seed=1), quiet=True)
    same = train_encoder(4, False, d, EncoderRecipe(steps=0, batch=4, seed=2), quiet=True, init=base)
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), same.state_dict().values()))
    moved = train_encoder(4, False, d, EncoderRecipe(steps=2, batch=4, seed=2), quiet=True, init=base)
    assert not all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), moved.state_dict().values()))
    assert not base.training and all(not p.requires_grad for p in base.parameters())  # the start is left frozen
    with pytest.raises(OmnibenchError, match="expression columns"):
        train_encoder(5, False, d, EncoderRecipe(steps=1, batch=4), quiet=True, init=base)
