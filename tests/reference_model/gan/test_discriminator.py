"""D's minibatch standard deviation layer: values against torch.std, grouping, and its effect on D."""

import pytest
import torch

from reference_model.gan.discriminator import DualDiscriminator, minibatch_std


def test_minibatch_std_matches_torch_std_per_consecutive_group():
    x = torch.randn(6, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    y = minibatch_std(x, 3)
    assert y.shape == (6, 6, 4, 4) and torch.equal(y[:, :5], x)
    for k, rows in enumerate((slice(0, 3), slice(3, 6))):
        expected = x[rows].std(dim=0, unbiased=False).mean()
        assert torch.allclose(y[rows, 5], expected.expand(3, 4, 4), atol=1e-6), k
    # a group of identical samples has (almost) no spread; the cap at N and the divisibility check
    same = minibatch_std(x[:1].expand(4, -1, -1, -1), 4)[:, 5]
    assert float(same.max()) < 1e-3
    assert torch.allclose(minibatch_std(x[:2], 4)[:, 5], x[:2].std(dim=0, unbiased=False).mean().expand(2, 4, 4), atol=1e-6)
    with pytest.raises(ValueError, match="does not divide"):
        minibatch_std(x[:5], 2)


def test_d_sees_its_group_and_only_its_group():
    """A sample's logit changes when another sample of its group changes, not when one of another group does."""
    torch.manual_seed(0)
    D = DualDiscriminator(16, 4, mbstd_group=2)
    img, raw, cam = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 8, 8), torch.randn(4, 25)
    base = D(img, raw, cam)
    other = img.clone()
    other[1] = torch.rand(3, 16, 16)
    changed = D(other, raw, cam)
    assert not torch.allclose(changed[0], base[0])  # same group as sample 1
    assert torch.equal(changed[2:], base[2:])  # the other group
    single = DualDiscriminator(16, 4, mbstd_group=1)  # groups of one: no cross-sample dependence
    single.load_state_dict(D.state_dict())
    assert torch.equal(single(other, raw, cam)[0], single(img, raw, cam)[0])


def test_controls_conditioned_d_reads_expression_and_jaw_and_refuses_a_missing_condition():
    """``n_controls > 0``: the logit depends on the expression and jaw/neck pose given with the image (a camera-only
    D gets none and refuses them), and the conditioning is exactly expression | pose[3:9]."""
    from reference_model.gan.decoder import control_conditioning

    torch.manual_seed(0)
    img, raw, cam = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 8, 8), torch.randn(2, 25)
    expr, pose = torch.randn(2, 10), torch.randn(2, 15)
    ctl = control_conditioning(expr, pose)
    assert torch.equal(ctl, torch.cat([expr, pose[:, 3:9]], dim=1))
    D = DualDiscriminator(16, 4, mbstd_group=1, n_controls=16)
    base = D(img, raw, cam, ctl)
    assert not torch.allclose(D(img, raw, cam, control_conditioning(expr + 1, pose)), base)
    jaw = pose.clone()
    jaw[:, 6] += 0.3
    assert not torch.allclose(D(img, raw, cam, control_conditioning(expr, jaw)), base)
    eyes = pose.clone()
    eyes[:, 9:] += 0.3  # eyes are not read
    assert torch.equal(D(img, raw, cam, control_conditioning(expr, eyes)), base)
    with pytest.raises(ValueError, match="16 control values"):
        D(img, raw, cam)
    with pytest.raises(ValueError, match="0 control values"):
        DualDiscriminator(16, 4, mbstd_group=1)(img, raw, cam, ctl)
