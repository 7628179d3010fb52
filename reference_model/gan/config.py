"""Stage II configurations (``tiny``: 2 CPU cores; ``ffhq512``: EG3D/OmniAvatar scale on a GPU) and the
ablation switches (``use_prior``, ``use_enc``, ``dynamic``, ``use_sdf``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from reference_model.config_record import ConfigRecord


@dataclass(frozen=True)
class GANConfig(ConfigRecord):
    name: str = "tiny"
    # "omniavatar" (OmniAvatarG: W-guided tri-planes) or "anifacegan" (AniFaceGANG: template field + deformation
    # field trained by imitation of the head model; reference_model/gan/anifacegan.py)
    method: str = "omniavatar"
    # ablation switches
    use_sdf: bool = True  # False: plain EG3D (tri-planes read at x, no W, no L_prior)
    use_prior: bool = True  # L_prior
    use_enc: bool = True  # L_enc
    enc_aligned: bool = False  # E reads a face crop aligned by the rendering camera (reads expression at 64 px)
    dynamic: bool = True  # dynamic decoder conditioned on (beta, theta)
    # metres; > 0: phi(beta, theta) reaches each ray sample scaled by exp(-|s| / dynamic_gate), s = W's signed
    # distance there, so expression and jaw change density and colour only near the FLAME surface (the paper's
    # dynamic details: wrinkles, mouth interior) and not the background or far hair. Not in the paper: an experiment
    # of #20 against expression entangled with appearance. 0: the code reaches every sample (the paper)
    dynamic_gate: float = 0.0
    # latent and conditioning
    z_dim: int = 64
    # EG3D's generator pose conditioning: the mapping is conditioned on the rendering camera, swapped for another
    # label's camera with this probability, so that w does not have to follow the view (evaluation conditions on
    # one frontal camera); 0: always the rendering camera (checkpoints written before the key existed)
    gpc_swap_prob: float = 0.5
    w_dim: int = 64
    mapping_layers: int = 2
    c_dim: int = 25
    n_shape: int = 10  # FLAME coefficients the generator consumes (controls are truncated / padded)
    n_expression: int = 10  # the shipped tiny reads 10 (a 16-column run with a pre-trained E: docs/reference-model.md)
    # tri-plane synthesis
    triplane_res: int = 32
    triplane_channels: int = 16
    synthesis_channels: int = 64
    # rendering (metres; world = head frame)
    neural_res: int = 32
    image_res: int = 64
    samples_coarse: int = 12
    samples_fine: int = 12
    box_center: tuple[float, float, float] = (0.0, -0.01, 0.0)
    box_half: float = 0.2  # tri-plane / sampling box half-size
    density_scale: float = 100.0  # sigma = density_scale * softplus(raw - density_shift), 1/m
    # starts the volume nearly empty (0.7/m; optical depth ~0.3 across the box) so L_prior and D see the head;
    # with a shift of 1 (EG3D's) the box starts as fog of optical depth ~12 hiding it
    density_shift: float = 5.0
    decoder_hidden: int = 64
    feature_channels: int = 16  # decoded feature channels; the first 3 are the raw RGB
    expr_embed: int = 16  # phi(beta, theta) width
    # super-resolution and discriminator
    sr_channels: int = 32
    sr_style: bool = True  # SR convolutions modulated by w (EG3D); False: checkpoints from before it existed
    d_channels: int = 32
    mbstd_group: int = 4  # D's minibatch-std group (StyleGAN2/EG3D: 4); per-rank batch a multiple of it
    # D conditioned on the expression and jaw/neck pose as well as the camera (not in the paper: an experiment of
    # #20 against expression entangled with appearance); False: camera only, as EG3D and OmniAvatar
    d_controls: bool = False
    # losses
    r1_gamma: float = 1.0  # 0.1 let D win outright within 150 tiny steps (loss_d 0.04)
    kappa: float = 0.005  # metres: sigma* = (1/kappa) sigmoid(-s/kappa)
    gamma_prior: float = 50.0  # 1/m: decay exp(-gamma |s|)
    w_prior: float = 1.0  # L_prior ~5 at the start: geometry locks early within a short CPU budget
    # optional linear decay of w_prior (the paper gives no schedule): w_prior until prior_decay_start, then linearly
    # to w_prior_final at prior_decay_end, constant after; None keeps w_prior constant (every run before 2026-12-06)
    w_prior_final: float | None = None
    prior_decay_start: int = 0
    prior_decay_end: int = 0
    w_enc: float = 1.0
    w_enc_vertex: float = 100.0  # vertex and landmark distances are in metres
    w_enc_landmark: float = 100.0
    # AniFaceGAN-style deformation field and its imitation losses (method="anifacegan")
    deform_hidden: int = 64
    deform_layers: int = 3
    deform_pe_frequencies: int = 4
    imitate_points: int = 1024  # surface samples of the head model per image and step
    imitate_offset_std: float = 0.005  # metres: samples pushed off the surface along the normal
    w_imitate: float = 100.0  # L_imitate and L_neutral are distances in metres, weighted like L_enc's vertex term
    w_neutral: float = 100.0
    # optimisation
    batch: int = 8
    steps: int = 2000
    lr_g: float = 2.5e-3
    lr_d: float = 1e-3
    betas: tuple[float, float] = (0.0, 0.99)
    ema_beta: float = 0.99
    encoder_steps: int = 600  # E trained in the run (no --encoder file)
    encoder_batch: int = 32
    encoder_lr: float = 1e-3
    seed: int = 0
    log_every: int = 50
    snapshot_every: int = 500

    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {
        "sr_style": False,  # written before SR was modulated by w: its plain-convolution SR
        "gpc_swap_prob": 0.0,  # written before pose-conditioning swaps: resume their recipe
    }


CONFIGS: dict[str, GANConfig] = {
    "tiny": GANConfig(),
    "ffhq512": GANConfig(
        name="ffhq512",
        z_dim=512,
        w_dim=512,
        mapping_layers=8,
        n_shape=100,
        n_expression=50,
        triplane_res=256,
        triplane_channels=32,
        synthesis_channels=256,
        neural_res=128,
        image_res=512,
        samples_coarse=48,
        samples_fine=48,
        decoder_hidden=64,
        feature_channels=32,
        expr_embed=64,
        sr_channels=128,
        d_channels=128,
        r1_gamma=1.0,
        batch=32,
        steps=500_000,
        encoder_steps=20_000,
        log_every=200,
        snapshot_every=5000,
    ),
}

ABLATIONS: dict[str, dict] = {
    "full": {},
    "no-prior": {"use_prior": False},
    "no-enc": {"use_enc": False},
    "no-dynamic": {"dynamic": False},
    # plain EG3D: tri-planes read at x, no L_prior or L_enc, a static decoder: only the camera reaches the image
    "eg3d": {"use_sdf": False, "use_prior": False, "use_enc": False, "dynamic": False},
    # the AniFaceGAN-style baseline (not an ablation of OmniAvatar: its own generator and checkpoint kind)
    "anifacegan": {"method": "anifacegan", "use_sdf": False, "use_prior": False, "use_enc": False, "dynamic": False},
}
