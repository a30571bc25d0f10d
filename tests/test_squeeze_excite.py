"""SqueezeExcitation: shapes, parity with torchvision's SE block, last weights, gradients, bad inputs."""

from __future__ import annotations

import pytest
import torch
from helpers import randomise_
from torch import nn
from torchvision.ops import SqueezeExcitation as TorchvisionSE

from course_pkg.squeeze_excite import SqueezeExcitation, hidden_width


def _randomise(module: nn.Module, seed: int = 0) -> None:
    randomise_(module, seed)


def test_shapes_and_hidden_width() -> None:
    se = SqueezeExcitation(64)
    assert se.fc1.weight.shape == (4, 64, 1, 1) and se.fc2.weight.shape == (64, 4, 1, 1)
    x = torch.randn(2, 64, 7, 5)
    assert se(x).shape == x.shape
    assert SqueezeExcitation(64, hidden_channels=10).fc1.out_channels == 10
    assert hidden_width(48, 16) == 3
    # parameters: C*C/r + C/r (fc1) + C/r*C + C (fc2)
    assert sum(p.numel() for p in se.parameters()) == 64 * 4 + 4 + 4 * 64 + 64


@pytest.mark.parametrize("channels,squeeze", [(64, 4), (24, 6), (7, 3)])
def test_matches_torchvision_se_with_a_strict_load(channels: int, squeeze: int) -> None:
    ref = TorchvisionSE(channels, squeeze)
    _randomise(ref)
    ours = SqueezeExcitation(channels, hidden_channels=squeeze)
    ours.load_state_dict(ref.state_dict(), strict=True)  # same keys, same shapes
    x = torch.randn(3, channels, 9, 11)
    torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
    # and the other way round
    ref2 = TorchvisionSE(channels, squeeze)
    ref2.load_state_dict(ours.state_dict(), strict=True)
    torch.testing.assert_close(ref2(x), ours(x), rtol=0, atol=1e-6)


def test_recorded_weights_are_the_channel_scales() -> None:
    from course_pkg.attention_maps import record_attention

    se = SqueezeExcitation(16, reduction=4).eval()
    _randomise(se, 1)
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    with record_attention(se) as rec:
        y = se(x)
    w = rec[""]
    assert w is not None and w.shape == (2, 16) and not w.requires_grad
    assert ((w > 0) & (w < 1)).all()
    torch.testing.assert_close(y, x * w[:, :, None, None])
    # the weights depend only on the channel means (the squeeze): a shifted pattern with the same means
    # gets the same weights
    with record_attention(se) as rec:
        se(x.flip(-1))
    torch.testing.assert_close(rec[""], w)


def test_gradients_flow_to_input_and_parameters() -> None:
    se = SqueezeExcitation(8, reduction=2)
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    se(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in se.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs_have_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"reduction=32 is larger than channels=16"):
        SqueezeExcitation(16, reduction=32)
    with pytest.raises(ValueError, match=r"channels=0 is not valid; use a positive integer"):
        SqueezeExcitation(0)
    with pytest.raises(ValueError, match=r"reduction=-2 is not valid; use a positive integer"):
        SqueezeExcitation(16, reduction=-2)
    with pytest.raises(ValueError, match=r"hidden_channels=0 is not valid; use a positive integer; or None"):
        SqueezeExcitation(16, hidden_channels=0)
    se = SqueezeExcitation(16, reduction=4)
    with pytest.raises(ValueError, match=r"channels=16 but the input has 8 channels"):
        se(torch.randn(2, 8, 4, 4))
    with pytest.raises(ValueError, match=r"4-D input \(B, C, H, W\), got a 3-D tensor of shape \(16, 4, 4\)"):
        se(torch.randn(16, 4, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        se([[1.0]])


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    se = SqueezeExcitation(32, reduction=4)
    x = torch.randn(2, 32, 8, 8)
    expected = se(x)
    got = se.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_timm_se_module_loads_strictly_at_its_rounded_width() -> None:
    """timm rounds C / 16 up to a multiple of 8: SEModule(64) has 8 hidden units, so its state dict loads
    strictly into SqueezeExcitation(64, hidden_channels=8) and not into the default (4 units)."""
    timm_layers = pytest.importorskip("timm.layers")
    ref = randomise_(timm_layers.SEModule(64)).eval()
    assert ref.fc1.out_channels == 8
    with pytest.raises(RuntimeError, match="size mismatch"):
        SqueezeExcitation(64).load_state_dict(ref.state_dict())
    ours = SqueezeExcitation(64, hidden_channels=ref.fc1.out_channels).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))
