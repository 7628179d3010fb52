"""The AniFaceGAN-style baseline: imitation loss on a case of known answer, gradients into the deformation field,
a deterministic training step, checkpoint round trip under its own kind, refusal of another head model."""

from dataclasses import dataclass

import pytest
import torch

from omnibench.errors import CheckpointError
from reference_model.gan.anifacegan import AniFaceGANG
from reference_model.gan.checkpoint import load_generator, read_gan_checkpoint
from reference_model.gan.config import ABLATIONS
from reference_model.gan.imitation import imitation_loss, imitation_targets, neutral_loss
from reference_model.gan.train import Trainer, export_release
from tests.reference_model.gan.test_gan import CFG, make_data, make_sdf, sdf_meta

ACFG = CFG.with_overrides(**ABLATIONS["anifacegan"], deform_hidden=8, imitate_points=16)
SHIFT = 0.01  # metres of +x translation per unit of expression column 0
EXPR_SD, JAW_SD = 0.25, 0.05  # spread of the synthetic training labels' expression and jaw angle (radians)


@dataclass
class _Out:
    vertices: torch.Tensor
    landmarks3d: torch.Tensor


class ShiftHead(torch.nn.Module):
    """Head-model stand-in whose expression column 0 translates the whole mesh (an octahedron) by ``SHIFT`` m along
    +x and whose jaw (pose[6]) by 0.02 m along -y: the deformation back to the canonical space is known exactly."""

    def __init__(self, sha="head-a"):
        super().__init__()
        self.template = torch.tensor([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
                                     dtype=torch.float32) * 0.1
        self.faces = torch.tensor([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
        self.name, self.sha256 = "shift", sha
        self.n_shape = self.n_expression = 4

    def forward(self, shape, expression, pose, translation=None):
        move = torch.stack([expression[:, 0] * SHIFT, -pose[:, 6] * 0.02, torch.zeros_like(pose[:, 0])], dim=1)
        v = self.template + move[:, None, :]
        return _Out(v, v)


def true_offsets(points, expression, pose):
    """The exact observation -> canonical offsets of :class:`ShiftHead` (the same at every point)."""
    move = torch.stack([expression[:, 0] * SHIFT, -pose[:, 6] * 0.02, torch.zeros_like(pose[:, 0])], dim=1)
    return (-move)[:, None, :].expand_as(points)


def gens(n, seed=0):
    return [torch.Generator().manual_seed(seed * 100 + i) for i in range(n)]


def test_imitation_loss_is_zero_for_the_head_models_own_deformation_and_not_otherwise():
    d = make_data()
    head = ShiftHead()
    t = imitation_targets(head, d.shape[:3], d.expression[:3], d.pose[:3], 64, 0.005, gens(3))
    assert t.points.shape == (3, 64, 3) and t.displacement.shape == (3, 64, 3)
    exact = true_offsets(t.points, d.expression[:3], d.pose[:3])
    assert float(imitation_loss(exact, t)) == pytest.approx(0.0, abs=1e-7)
    expected = float(exact[:, 0].norm(dim=-1).mean())  # a field that deforms nothing misses by the whole motion
    assert float(imitation_loss(torch.zeros_like(exact), t)) == pytest.approx(expected, rel=1e-5)
    assert float(neutral_loss(torch.zeros_like(exact))) == 0.0
    # samples lie near the expressive surface: |x| + |y| + |z| = 0.1 m (octahedron) within the normal offsets
    moved = t.points + exact
    l1 = moved.abs().sum(-1)
    assert float((l1 - 0.1).abs().max()) < 0.05 and float((l1 - 0.1).abs().mean()) < 0.01
    # a sample's points depend on its own generator only, not on the batch it is drawn in
    t1 = imitation_targets(head, d.shape[1:2], d.expression[1:2], d.pose[1:2], 64, 0.005, gens(3)[1:2])
    assert torch.equal(t1.points[0], t.points[1])


def test_deformation_starts_as_identity_and_imitation_reaches_it():
    G = AniFaceGANG(ACFG)
    d = make_data()
    head = ShiftHead()
    shape, expr, pose = d.shape[:2], d.expression[:2], d.pose[:2]
    t = imitation_targets(head, shape, expr, pose, 16, 0.005, gens(2))
    off = G.deform(t.points, shape, expr, pose)
    assert torch.equal(off, torch.zeros_like(off))  # xbar = x at step 0
    loss = imitation_loss(off, t) + neutral_loss(G.deform(t.points, shape, t.neutral_expression, t.neutral_pose))
    loss.backward()
    assert G.deformation.out.weight.grad.abs().sum() > 0
    # the adversarial path reaches D too once it deforms: image depends on the deformation
    G.zero_grad()
    with torch.no_grad():
        G.deformation.out.bias.fill_(0.01)
    out = G(torch.randn(2, 8), d.camera[:2], shape, expr, pose)
    out.image.mean().backward()
    assert G.deformation.out.bias.grad.abs().sum() > 0 and out.s is None


def test_training_is_deterministic_round_trips_under_its_own_kind_and_refuses_another_head(tmp_path):
    head = ShiftHead()
    runs = []
    for name in ("a", "b"):
        sdf = make_sdf()
        tr = Trainer(ACFG, make_data(), sdf, head, sdf_meta(sdf), tmp_path / name, quiet=True)
        tr.run()
        runs.append(tr)
    assert isinstance(runs[0].G, AniFaceGANG) and runs[0].E is None
    for (k, va), vb in zip(runs[0].G_ema.state_dict().items(), runs[1].G_ema.state_dict().values()):
        assert torch.equal(va, vb), k
    log = (tmp_path / "a" / "log.jsonl").read_text()
    assert "loss_imitate" in log and "loss_neutral" in log and "loss_prior" not in log
    ckpt = tmp_path / "a" / "checkpoint.pt"
    assert read_gan_checkpoint(ckpt, "anifacegan")["config"]["method"] == "anifacegan"
    with pytest.raises(CheckpointError, match="not an OmniAvatar generator"):
        read_gan_checkpoint(ckpt)
    G, E, meta = load_generator(ckpt, head=head, method="anifacegan")
    d = make_data()
    args = (torch.zeros(1, 8), d.camera[:1], d.shape[:1], d.expression[:1], d.pose[:1])
    assert isinstance(G, AniFaceGANG) and E is None and torch.equal(G(*args).image, runs[0].G_ema(*args).image)
    release = export_release(ckpt, tmp_path / "release.pt")
    assert "training" not in read_gan_checkpoint(release, "anifacegan")
    with pytest.raises(CheckpointError, match="trained for head model"):
        load_generator(ckpt, head=ShiftHead(sha="other"), method="anifacegan")
    # resume continues the run
    sdf = make_sdf()
    tr = Trainer(ACFG.with_overrides(steps=3), make_data(), sdf, head, sdf_meta(sdf), tmp_path / "a", quiet=True)
    tr.run()
    assert tr.step == 3


def test_deformation_conditioning_is_scaled_by_the_training_labels_and_saved(tmp_path):
    from reference_model.gan.deformation import deformation_conditioning
    from reference_model.gan.generator import fit_columns

    d, head, sdf = make_data(), ShiftHead(), make_sdf()
    tr = Trainer(ACFG.with_overrides(steps=1), d, sdf, head, sdf_meta(sdf), tmp_path / "a", quiet=True)
    cond = deformation_conditioning(fit_columns(d.shape, ACFG.n_shape), fit_columns(d.expression, ACFG.n_expression),
                                    d.pose)
    sd = cond.double().std(0).float()
    scale = tr.G.deformation.cond_scale
    varied = sd > 1e-4
    assert torch.allclose(scale[varied], sd[varied]) and torch.all(scale[~varied] == 1)
    assert torch.equal(tr.G_ema.deformation.cond_scale, scale)
    tr.run()
    saved = read_gan_checkpoint(tmp_path / "a" / "checkpoint.pt", "anifacegan")["G_ema"]["deformation.cond_scale"]
    assert torch.equal(saved, scale)


def test_imitation_fits_small_controls_once_scaled():
    """Expression and jaw spread like the synthetic labels' (expression sd 0.25, jaw sd 0.05 rad): fitted alone on the
    head model's exact displacement with G's optimiser settings, D gets within 40 % of the motion in 200 steps once
    its conditioning is scaled, and clearly closer than without the scaling (measured 0.30 vs 0.53)."""
    from reference_model.gan.deformation import DeformationField, deformation_conditioning

    head, n = ShiftHead(), 8
    gen = torch.Generator().manual_seed(0)

    def controls():
        return (torch.zeros(n, 4), torch.randn(n, 4, generator=gen) * EXPR_SD,
                torch.cat([torch.zeros(n, 6), torch.randn(n, 1, generator=gen) * JAW_SD, torch.zeros(n, 8)], dim=1))

    losses = {}
    for scaled in (False, True):
        torch.manual_seed(0)
        D = DeformationField(4, 4, 32, 3, 2, (0.0, 0.0, 0.0), 0.2)
        if scaled:
            D.set_conditioning_scale(deformation_conditioning(*controls()[:2], controls()[2]))
        opt = torch.optim.Adam(D.parameters(), lr=2.5e-3, betas=(0.0, 0.99))
        rel = []
        for step in range(200):
            shape, expr, pose = controls()
            t = imitation_targets(head, shape, expr, pose, 64, 0.005, gens(n, step))
            loss = imitation_loss(D(t.points, deformation_conditioning(shape, expr, pose)), t)
            opt.zero_grad()
            (100 * loss).backward()
            opt.step()
            rel.append(loss.item() / t.displacement.norm(dim=-1).mean().item())
        losses[scaled] = sum(rel[-20:]) / 20
    assert losses[True] < 0.4 and losses[True] < 0.7 * losses[False], losses
