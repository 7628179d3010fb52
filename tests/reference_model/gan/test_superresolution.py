"""Super-resolution: starts as the upsampled raw colour; the modulated variant lets w reach the image; configs
written before the modulation load as the plain variant."""

import torch

from reference_model.gan.config import GANConfig
from reference_model.gan.superresolution import SuperResolution


def test_starts_as_upsampled_raw_colour_and_w_reaches_the_image():
    torch.manual_seed(0)
    sr = SuperResolution(4, 8, 16, w_dim=6)
    feats = torch.rand(2, 4, 8, 8) * 0.5
    w = torch.randn(2, 6)
    up = torch.nn.functional.interpolate(feats[:, :3], size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(sr(feats, w), up)
    torch.nn.init.normal_(sr.to_rgb.weight)  # as after training: the residual depends on w
    same_feats = feats[:1].expand(2, -1, -1, -1)
    out = sr(same_feats, w)
    assert not torch.allclose(out[0], out[1])  # same features, different latents
    twin = sr(same_feats, w[:1].expand(2, -1))
    assert torch.allclose(twin[0], twin[1], atol=1e-6)  # same latent too: same image
    plain = SuperResolution(4, 8, 16, w_dim=6, style=False)
    torch.nn.init.normal_(plain.net[-1].weight)
    out = plain(same_feats, w)
    assert torch.allclose(out[0], out[1], atol=1e-6)  # the plain variant cannot see w


def test_configs_from_before_the_modulation_load_as_plain_sr():
    assert GANConfig().sr_style
    assert GANConfig.from_dict(GANConfig().to_dict()).sr_style
    old = {k: v for k, v in GANConfig().to_dict().items() if k != "sr_style"}
    assert not GANConfig.from_dict(old).sr_style
