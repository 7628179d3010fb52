import json
from dataclasses import dataclass

import pytest
import torch

from omnibench.cameras import orbit_camera
from omnibench.errors import CheckpointError
from omnibench.fileio import atomic_torch_save
from reference_model.gan.checkpoint import load_generator
from reference_model.gan.config import GANConfig
from reference_model.gan.data import TrainingSet
from reference_model.gan.discriminator import DualDiscriminator
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.generator import OmniAvatarG, fit_columns
from reference_model.gan.losses import (
    d_adversarial,
    enc_loss,
    g_adversarial,
    prior_loss,
    prior_target,
    prior_weight,
    r1_penalty,
)
from reference_model.gan.renderer import camera_rays, composite
from reference_model.gan.train import Trainer
from reference_model.sdf.config import SDFConfig
from reference_model.sdf.model import SemanticSDF

CFG = GANConfig(z_dim=8, w_dim=8, mapping_layers=1, n_shape=4, n_expression=4, triplane_res=8, triplane_channels=4,
                synthesis_channels=8, neural_res=8, image_res=16, samples_coarse=4, samples_fine=4, decoder_hidden=8,
                feature_channels=4, expr_embed=4, sr_channels=4, d_channels=4, mbstd_group=2, batch=2, steps=2, encoder_steps=2,
                log_every=1, snapshot_every=100,
                density_shift=1.0)  # an opaque start, so a 2-step model still has depth for the plumbing tests
SDF_CFG = SDFConfig(n_shape=4, n_expression=4, hidden=16, layers=3, skip_layer=1, pe_frequencies=2)


@dataclass
class _Out:
    vertices: torch.Tensor
    landmarks3d: torch.Tensor


class LinearHead(torch.nn.Module):
    """Head-model stand-in: vertices linear in expression and jaw."""

    def __init__(self, sha="head-a"):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.template = torch.randn(30, 3, generator=g) * 0.1
        self.basis = torch.randn(4, 30, 3, generator=g) * 0.01
        self.name, self.sha256 = "linear", sha
        self.n_shape = self.n_expression = 4

    def forward(self, shape, expression, pose, translation=None):
        v = self.template + torch.einsum("be,evk->bvk", expression[:, :4], self.basis)
        v = v + pose[:, 6, None, None] * 0.02
        return _Out(v, v[:, :6])


def make_sdf():
    torch.manual_seed(0)
    return SemanticSDF(SDF_CFG, torch.zeros(3), 0.2)


def make_data(n=6):
    g = torch.Generator().manual_seed(1)
    cam = orbit_camera(torch.rand(n, generator=g) * 0.4 - 0.2, torch.zeros(n))
    pose = torch.zeros(n, 15)
    pose[:, 6] = torch.rand(n, generator=g) * 0.3
    return TrainingSet(images=torch.randint(0, 255, (n, 3, 16, 16), dtype=torch.uint8, generator=g), camera=cam,
                       shape=torch.randn(n, 4, generator=g), expression=torch.randn(n, 4, generator=g), pose=pose,
                       content_hash="abc", path="mem")


def sdf_meta(sdf):
    return {"sha256": "w-sha", "config": sdf.cfg.to_dict(), "center": sdf.center.clone(), "radius": float(sdf.radius)}


@pytest.mark.parametrize("use_sdf", [True, False])
def test_generator_output_shapes(use_sdf):
    G = OmniAvatarG(CFG.with_overrides(use_sdf=use_sdf, use_prior=use_sdf), make_sdf())
    d = make_data()
    out = G(torch.randn(2, 8), d.camera[:2], d.shape[:2], d.expression[:2], d.pose[:2])
    assert out.image.shape == (2, 3, 16, 16) and out.image_raw.shape == (2, 3, 8, 8)
    assert out.depth.shape == (2, 8, 8) and out.mask.shape == (2, 8, 8)
    assert out.sigma.shape == (2, 64 * 8)
    assert (out.s is not None) == use_sdf
    assert 0 <= float(out.image.detach().min()) and float(out.image.detach().max()) <= 1


def test_dynamic_gate_confines_expression_to_near_the_w_surface():
    """``dynamic_gate``: the decoder's expression code is scaled per sample by exp(-|s| / gate); where the gate is
    closed the decoded density and features do not depend on expression or jaw, where open they do; the generator
    hands the decoder exactly that gate, from W's signed distance of the same samples."""
    from reference_model.gan.decoder import DynamicDecoder

    torch.manual_seed(0)
    dec = DynamicDecoder(4, 4, 8, 4, 4, 100.0)
    feats, pose = torch.randn(2, 3, 4), torch.zeros(2, 15)
    e1, e2 = torch.randn(2, 4), torch.randn(2, 4)
    gate = torch.tensor([[0.0, 1.0, 0.5]]).expand(2, -1)
    (s1, f1), (s2, f2) = dec(feats, e1, pose, gate), dec(feats, e2, pose, gate)
    assert torch.equal(s1[:, 0], s2[:, 0]) and torch.equal(f1[:, 0], f2[:, 0])  # closed: expression-blind
    assert not torch.allclose(f1[:, 1], f2[:, 1])  # open: expression acts
    sn, fn = dec(feats, e1, pose)  # an open gate everywhere is the ungated decoder
    so, fo = dec(feats, e1, pose, torch.ones(2, 3))
    assert torch.allclose(sn, so) and torch.allclose(fn, fo)

    G = OmniAvatarG(CFG.with_overrides(dynamic_gate=0.01), make_sdf())
    seen: list[torch.Tensor] = []
    forward = G.decoder.forward
    G.decoder.forward = lambda f, e, p, g=None: (seen.append(g), forward(f, e, p, g))[1]
    d = make_data()
    out = G(torch.randn(2, 8), d.camera[:2], d.shape[:2], d.expression[:2], d.pose[:2])
    assert torch.allclose(torch.cat(seen, dim=1), torch.exp(-out.s.abs() / 0.01))
    with pytest.raises(ValueError, match="dynamic_gate needs W"):
        OmniAvatarG(CFG.with_overrides(dynamic_gate=0.01, use_sdf=False, use_prior=False), None)
    old = {k: v for k, v in CFG.to_dict().items() if k != "dynamic_gate"}  # a checkpoint from before the key
    assert GANConfig.from_dict(old).dynamic_gate == 0.0


def test_rays_go_through_pixels_and_compositing_is_exact():
    cam = orbit_camera(torch.tensor([0.0]), torch.tensor([0.0]), radius=1.0)
    rays = camera_rays(cam, 2)
    # the four pixel rays are symmetric around the optical axis (-z)
    assert torch.allclose(rays.dirs[0].mean(0), torch.tensor([0.0, 0.0, -1.0]) * rays.z_factor[0].mean(), atol=1e-6)
    # an opaque slab at t = 2: all weight there, depth = 2, opacity 1
    t = torch.linspace(1, 3, 21).expand(1, 1, 21)
    sigma = torch.where((t - 2).abs() < 0.05, 1e4, 0.0)
    feat, depth, acc, _ = composite(sigma, torch.ones(1, 1, 21, 3), t)
    assert torch.allclose(depth, torch.tensor([[2.0]]), atol=1e-3) and torch.allclose(acc, torch.ones(1, 1))


def test_prior_target_values_and_every_loss_backpropagates():
    kappa = 0.01
    assert torch.allclose(prior_target(torch.tensor([0.0]), kappa), torch.tensor([1 / (2 * kappa)]))
    assert float(prior_target(torch.tensor([-1.0]), kappa)) == pytest.approx(1 / kappa)
    assert float(prior_target(torch.tensor([1.0]), kappa)) == pytest.approx(0.0, abs=1e-6)
    s = torch.tensor([[0.0, 0.5]])
    assert float(prior_loss(prior_target(s, kappa), s, kappa, 50.0)) == 0.0

    d = make_data()
    G = OmniAvatarG(CFG, make_sdf())
    D = DualDiscriminator(16, 4)
    E = ControlEncoder(4).requires_grad_(False)
    out = G(torch.randn(2, 8), d.camera[:2], d.shape[:2], d.expression[:2], d.pose[:2])
    real = (d.images[:2].float() / 255).requires_grad_(True)
    d_real = D(real, real, d.camera[:2])
    losses = {
        "g_adv": g_adversarial(D(out.image, out.image_raw, d.camera[:2])),
        "prior": prior_loss(out.sigma, out.s, CFG.kappa, CFG.gamma_prior),
        "enc": enc_loss(E, LinearHead(), out.image, d.shape[:2], d.expression[:2], d.pose[:2], 100.0, 100.0)["total"],
        "d_adv": d_adversarial(d_real, D(out.image.detach(), out.image_raw.detach(), d.camera[:2])),
        "r1": r1_penalty(d_real, [real], 1.0),
    }
    for name, loss in losses.items():
        G.zero_grad()
        D.zero_grad()
        assert torch.isfinite(loss), name
        loss.backward(retain_graph=True)
        params = list(G.trainable_parameters()) if name in ("g_adv", "prior", "enc") else list(D.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), name
    # W stays frozen
    assert all(p.grad is None for p in G.sdf.parameters())


def test_face_aligned_encoder_passes_gradients_to_g_and_round_trips(tmp_path):
    """enc_aligned: E reads camera-aligned face crops; L_enc reaches G through the resampling; the layout
    survives the checkpoint; without a camera it refuses to guess."""
    from omnibench.errors import OmnibenchError
    from omnibench.heads.face_align import face_grid

    head = LinearHead()
    E = ControlEncoder(4, grid=face_grid(head, size=8)).requires_grad_(False)
    d = make_data()
    with pytest.raises(OmnibenchError, match="camera"):
        E(d.images[:2].float() / 255)
    G = OmniAvatarG(CFG, make_sdf())
    out = G(torch.randn(2, 8), d.camera[:2], d.shape[:2], d.expression[:2], d.pose[:2])
    loss = enc_loss(E, head, out.image, d.shape[:2], d.expression[:2], d.pose[:2], 100.0, 100.0, camera=d.camera[:2])
    loss["total"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.trainable_parameters())
    # the crop follows the camera: the same image read under two cameras gives two estimates
    img = d.images[:1].float().div(255).expand(2, -1, -1, -1)
    e1, _ = E(img, d.camera[:2])
    assert not torch.allclose(e1[0], e1[1])
    sdf = make_sdf()
    tr = Trainer(CFG.with_overrides(enc_aligned=True), make_data(), sdf, head, sdf_meta(sdf), tmp_path / "al", quiet=True)
    tr.run()
    _, E2, meta = load_generator(tmp_path / "al" / "checkpoint.pt", head=head)
    assert E2.aligned and meta["config"]["enc_aligned"] is True
    assert torch.equal(E2(img, d.camera[:2])[0], tr.E(img, d.camera[:2])[0])


def test_training_step_is_deterministic_and_checkpoint_round_trips(tmp_path):
    head = LinearHead()
    runs = []
    for name in ("a", "b"):
        sdf = make_sdf()
        tr = Trainer(CFG, make_data(), sdf, head, sdf_meta(sdf), tmp_path / name, quiet=True)
        tr.run()
        runs.append(tr)
    for (k, va), vb in zip(runs[0].G_ema.state_dict().items(), runs[1].G_ema.state_dict().values()):
        assert torch.equal(va, vb), k
    G, E, meta = load_generator(tmp_path / "a" / "checkpoint.pt", head=head)
    assert meta["step"] == 2 and meta["sdf"]["sha256"] == "w-sha" and E is not None
    d = make_data()
    args = (torch.zeros(1, 8), d.camera[:1], d.shape[:1], d.expression[:1], d.pose[:1])
    assert torch.equal(G(*args).image, runs[0].G_ema(*args).image)
    # resume continues at the saved step
    sdf = make_sdf()
    tr = Trainer(CFG.with_overrides(steps=3), make_data(), sdf, head, sdf_meta(sdf), tmp_path / "a", quiet=True)
    tr.run()
    assert tr.step == 3


def test_prior_weight_schedule_and_the_trainer_uses_it(tmp_path):
    assert [prior_weight(1.0, None, 0, 0, k) for k in (0, 10**6)] == [1.0, 1.0]  # no schedule: constant
    assert [prior_weight(1.0, 0.1, 100, 200, k) for k in (0, 100, 150, 200, 300)] == pytest.approx(
        [1.0, 1.0, 0.55, 0.1, 0.1])
    head, sdf = LinearHead(), make_sdf()
    cfg = CFG.with_overrides(steps=3, log_every=1, w_prior_final=0.0, prior_decay_start=0, prior_decay_end=2)
    tr = Trainer(cfg, make_data(), sdf, head, sdf_meta(sdf), tmp_path / "run", quiet=True)
    tr.run()
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["w_prior"] for r in logs] == pytest.approx([CFG.w_prior, CFG.w_prior / 2, 0.0])  # steps 0, 1, 2
    assert GANConfig.from_dict(cfg.to_dict()) == cfg  # the schedule travels in the checkpoint's config


def test_controls_conditioned_d_trains_with_each_batch_s_own_labels_and_resumes(tmp_path):
    """``d_controls``: D's projection reads the expression and jaw/neck pose of each batch's own labels (reals get
    theirs, fakes the ones G was given); a step runs, and the checkpoint resumes into the same layout."""
    head, sdf = LinearHead(), make_sdf()
    cfg = CFG.with_overrides(d_controls=True)
    tr = Trainer(cfg, make_data(), sdf, head, sdf_meta(sdf), tmp_path / "dc", quiet=True)
    assert tr.D.n_controls == cfg.n_expression + 6 and tr.D.cmap.in_features == cfg.c_dim + cfg.n_expression + 6
    labels = tr.labels(0, 1)
    ctl = tr.d_controls(labels)
    assert torch.equal(ctl[:, : cfg.n_expression], fit_columns(labels["expression"], cfg.n_expression))
    assert torch.equal(ctl[:, cfg.n_expression :], labels["pose"][:, 3:9])
    tr.run()
    assert all(torch.isfinite(p).all() for p in tr.D.parameters())
    tr2 = Trainer(cfg.with_overrides(steps=3), make_data(), make_sdf(), head, sdf_meta(sdf), tmp_path / "dc", quiet=True)
    tr2.run()
    assert tr2.step == 3 and GANConfig.from_dict(cfg.to_dict()).d_controls is True
    plain = Trainer(CFG, make_data(), make_sdf(), head, sdf_meta(sdf), tmp_path / "plain", quiet=True)
    assert plain.d_controls(labels) is None and plain.D.n_controls == 0


def test_config_overrides_from_the_command_line():
    from omnibench.errors import OmnibenchError
    from reference_model.gan.cli import parse_config_overrides

    got = parse_config_overrides(CFG, ["w_prior_final=0.1", "prior_decay_start=1000", "w_prior=2", "name=x"])
    assert got == {"w_prior_final": 0.1, "prior_decay_start": 1000, "w_prior": 2.0, "name": "x"}
    assert isinstance(got["w_prior"], float)
    for bad in ("w_prior", "no_such_field=1"):
        with pytest.raises(OmnibenchError, match="--set"):
            parse_config_overrides(CFG, [bad])


def test_pose_conditioning_swaps_the_mapping_camera_with_the_configured_probability(tmp_path):
    sdf, data = make_sdf(), make_data(n=40)
    cam = data.camera[:2]

    def trainer(p, name):
        return Trainer(CFG.with_overrides(gpc_swap_prob=p), data, sdf, LinearHead(), sdf_meta(sdf), tmp_path / name, quiet=True)

    assert torch.equal(trainer(0.0, "never").pose_conditioning(0, cam), cam)
    always = trainer(1.0, "always")
    swapped = torch.cat([always.pose_conditioning(step, cam) for step in range(50)])
    is_label = (swapped[:, None, :] == data.camera[None]).all(-1).any(-1)
    assert is_label.all()  # every conditioning camera is some dataset label's camera
    assert (swapped != cam.repeat(50, 1)).any(-1).float().mean() > 0.9
    half = trainer(0.5, "half")
    frac = torch.stack([(half.pose_conditioning(step, cam) != cam).any(-1) for step in range(200)]).float().mean()
    assert 0.38 < float(frac) < 0.6  # 0.5 x 39/40 expected; 400 coins
    assert torch.equal(half.pose_conditioning(7, cam), trainer(0.5, "again").pose_conditioning(7, cam))
    assert GANConfig.from_dict({k: v for k, v in CFG.to_dict().items() if k != "gpc_swap_prob"}).gpc_swap_prob == 0.0


def test_mismatched_head_model_or_foreign_file_is_refused(tmp_path):
    head = LinearHead()
    sdf = make_sdf()
    tr = Trainer(CFG.with_overrides(steps=0), make_data(), sdf, head, sdf_meta(sdf), tmp_path / "r", quiet=True)
    tr.run()
    with pytest.raises(CheckpointError, match="trained for head model"):
        load_generator(tmp_path / "r" / "checkpoint.pt", head=LinearHead(sha="other"))
    other_w = {**sdf_meta(sdf), "sha256": "another-w"}
    with pytest.raises(CheckpointError, match="trained with W sha256"):
        Trainer(CFG, make_data(), sdf, head, other_w, tmp_path / "r", quiet=True).run()
    atomic_torch_save({"kind": "omnibench.sdf", "format": 1}, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="not an OmniAvatar generator"):
        load_generator(tmp_path / "w.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_generator(tmp_path / "junk.pt")
