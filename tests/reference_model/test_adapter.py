"""The ``omniavatar`` generator adapter: its ``read_expression`` hook (the frozen encoder E) as
``omnibench control-response`` (omnibench.control_response) uses it."""

import torch

from omnibench.cameras import orbit_camera
from omnibench.control_response import control_response
from omnibench.generators.base import Controls
from reference_model.adapter import OmniAvatarGenerator
from reference_model.gan.config import GANConfig
from reference_model.gan.encoder import ControlEncoder
from reference_model.gan.generator import OmniAvatarG

SMALL = GANConfig(z_dim=8, w_dim=8, mapping_layers=1, n_shape=4, n_expression=4, triplane_res=8, triplane_channels=4,
                  synthesis_channels=8, neural_res=8, image_res=16, samples_coarse=4, samples_fine=4, decoder_hidden=8,
                  feature_channels=4, expr_embed=4, sr_channels=4, d_channels=4, density_shift=1.0, use_sdf=False,
                  use_prior=False)
META = {"head_model": {"spec": "synthetic"}, "sdf": {"config": {"head": "synthetic"}}}


def _controls(n: int) -> Controls:
    g = torch.Generator().manual_seed(0)
    return Controls(camera=orbit_camera(0.3 * torch.randn(n, generator=g), 0.1 * torch.randn(n, generator=g)),
                    shape=0.8 * torch.randn(n, 10, generator=g), expression=0.8 * torch.randn(n, 10, generator=g),
                    pose=torch.cat([torch.zeros(n, 6), 0.2 * torch.rand(n, 1, generator=g), torch.zeros(n, 8)], 1))


def test_read_expression_is_the_frozen_encoder():
    torch.manual_seed(0)
    E = ControlEncoder(4, res=16).eval()
    gen = OmniAvatarGenerator(OmniAvatarG(SMALL, None).eval(), E, META, "x")
    images, camera = torch.rand(3, 3, 16, 16), _controls(3).camera
    with torch.no_grad():
        assert torch.equal(gen.read_expression(images, camera), E(images, camera)[0])
    assert OmniAvatarGenerator(OmniAvatarG(SMALL, None).eval(), None, META, "x").read_expression(images, camera) is None


def test_omniavatar_ablations_respond_only_through_their_paths():
    """eg3d without the dynamic decoder has no path from any FLAME control to the image; the dynamic decoder
    (phi) adds expression and jaw but not shape; the encoder's readout is reported when E exists."""
    torch.manual_seed(0)
    z, c = torch.randn(3, 8), _controls(3)
    static = OmniAvatarGenerator(OmniAvatarG(GANConfig(**{**SMALL.to_dict(), "dynamic": False}), None).eval(), None, META, "x")
    res = control_response(static, z, c, batch=2)
    assert all(res["groups"][g]["mean_abs"] == 0.0 for g in ("expression", "shape", "jaw"))
    assert "encoder" not in res  # no E, no read-out

    dyn = OmniAvatarGenerator(OmniAvatarG(SMALL, None).eval(), ControlEncoder(4, res=16).eval(), META, "x")
    res = control_response(dyn, z, c, batch=2)
    assert res["groups"]["expression"]["mean_abs"] > 0 and res["groups"]["jaw"]["mean_abs"] > 0
    assert res["groups"]["shape"]["mean_abs"] == 0.0
    assert res["encoder"]["columns"] == 4 and len(res["encoder"]["correlation"]["generated"]) == 4


def test_mapping_is_conditioned_on_the_frontal_camera_of_the_training_framing():
    from omnibench.cameras import FRAMING_FFHQ, FRAMING_V1
    from reference_model.adapter import OmniAvatarGenerator, conditioning_camera

    zero = torch.zeros(2)
    assert torch.equal(conditioning_camera(2), FRAMING_V1.orbit(zero, zero))
    assert torch.equal(conditioning_camera(2, "ffhq"), FRAMING_FFHQ.orbit(zero, zero))
    assert OmniAvatarGenerator.load("tiny").framing == "ffhq"  # trained on ffhq-framed renders (protocol v2)


def test_declared_controls_follow_the_config():
    """Plain EG3D honours the camera only (its control metrics are not applicable); W or the AniFaceGAN
    deformation field bring shape, expression, neck and jaw; nothing reads the global pose or the eyes."""
    from reference_model.adapter import AniFaceGANGenerator
    from reference_model.gan.anifacegan import AniFaceGANG
    from reference_model.gan.config import ABLATIONS

    eg3d = OmniAvatarGenerator(OmniAvatarG(SMALL.with_overrides(**ABLATIONS["eg3d"]), None).eval(), None, META, "x")
    assert eg3d.honoured_controls() == {"camera"}
    dynamic = OmniAvatarGenerator(OmniAvatarG(SMALL, None).eval(), None, META, "x")  # no W, dynamic decoder
    assert dynamic.honoured_controls() == {"camera", "expression", "neck", "jaw"}
    afg = AniFaceGANGenerator(AniFaceGANG(SMALL.with_overrides(**ABLATIONS["anifacegan"], deform_hidden=8)).eval(),
                              None, META, "x")
    assert afg.honoured_controls() == {"camera", "shape", "expression", "neck", "jaw"}


def test_plain_eg3d_ablation_is_named_in_not_applicable_reasons():
    from metrics.control import AED
    from omnibench.evaluation.engine import split_not_applicable
    from reference_model.adapter import SHIPPED

    gen = OmniAvatarGenerator.load(str(SHIPPED / "tiny-eg3d.pt"))
    assert gen.display_name == "omniavatar (plain EG3D ablation)"
    _, na = split_not_applicable([("aed", AED, "rmse")], gen)
    assert na["aed"]["not_applicable"] == ("generator 'omniavatar (plain EG3D ablation)' ignores the expression "
                                           "control this metric measures")
    assert OmniAvatarGenerator.load("tiny").display_name == "omniavatar"
