"""CBAM: shapes, parity with timm's CbamModule and with the official code's layout, maps, gradients, errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from helpers import randomise_
from torch import nn

from course_pkg.cbam import (
    CBAM,
    ChannelAttention,
    SpatialAttention,
)
from course_pkg.weights import convert_official_cbam_state_dict as convert_official_state_dict
from course_pkg.weights import convert_timm_cbam_state_dict as convert_timm_state_dict

timm_cbam = pytest.importorskip("timm.layers.cbam")


def _randomise(module: nn.Module, seed: int = 0) -> None:
    randomise_(module, seed)


class OfficialStyleCBAM(nn.Module):
    """The official code's layout and numerics, written for this test from its description: a Linear MLP
    with bias, spatial pooling order [max, mean], a bias-free conv followed by BatchNorm."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.ChannelGate = nn.Module()
        self.ChannelGate.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, hidden), nn.ReLU(),
                                             nn.Linear(hidden, channels))
        self.SpatialGate = nn.Module()
        self.SpatialGate.spatial = nn.Module()
        self.SpatialGate.spatial.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.SpatialGate.spatial.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mlp = self.ChannelGate.mlp
        att = mlp(F.avg_pool2d(x, x.shape[2:])) + mlp(F.max_pool2d(x, x.shape[2:]))
        x = x * torch.sigmoid(att)[:, :, None, None]
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        s = self.SpatialGate.spatial.bn(self.SpatialGate.spatial.conv(pooled))
        return x * torch.sigmoid(s)


def test_shapes_and_parameter_count() -> None:
    m = CBAM(64)
    x = torch.randn(2, 64, 9, 7)
    assert m(x).shape == x.shape
    assert m.channel.fc1.weight.shape == (4, 64, 1, 1) and m.channel.fc1.bias is None
    assert m.spatial.conv.weight.shape == (1, 2, 7, 7) and m.spatial.conv.bias is None
    # MLP without bias 2 * 64 * 4, conv 2 * 49, BN 2
    assert sum(p.numel() for p in m.parameters()) == 2 * 64 * 4 + 98 + 2
    paper = CBAM(64, mlp_bias=True, spatial_norm=False)
    assert isinstance(paper.spatial.bn, nn.Identity) and paper.spatial.conv.bias is not None
    assert CBAM(64, kernel_size=3).spatial.conv.weight.shape == (1, 2, 3, 3)


@pytest.mark.parametrize("channels,hidden,mlp_bias", [(64, 4, False), (32, 8, True), (12, 3, False)])
def test_matches_timm_cbam_module(channels: int, hidden: int, mlp_bias: bool) -> None:
    ref = timm_cbam.CbamModule(channels, rd_channels=hidden, mlp_bias=mlp_bias)
    _randomise(ref)
    ref.eval()
    ours = CBAM(channels, hidden_channels=hidden, mlp_bias=mlp_bias).eval()
    ours.load_state_dict(convert_timm_state_dict(ref.state_dict()), strict=True)
    x = torch.randn(3, channels, 10, 13)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)


def test_timm_key_mapping_is_only_the_spatial_conv() -> None:
    ref = timm_cbam.CbamModule(32, rd_channels=4)
    mapped = convert_timm_state_dict({f"layer1.0.se.{k}": v for k, v in ref.state_dict().items()})
    assert "layer1.0.se.spatial.conv.weight" in mapped and "layer1.0.se.spatial.bn.running_var" in mapped
    assert "layer1.0.se.channel.fc1.weight" in mapped


def test_matches_the_official_layout_after_conversion() -> None:
    ref = OfficialStyleCBAM(32, 8)
    _randomise(ref, 3)
    ref.eval()
    ours = CBAM(32, reduction=8, mlp_bias=True).eval()
    ours.load_state_dict(convert_official_state_dict(ref.state_dict()), strict=True)
    x = torch.randn(2, 32, 11, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-6)
        # without the flip, the [max, mean] kernel would be applied to [mean, max]: a different output
        ours.spatial.conv.weight.copy_(ref.SpatialGate.spatial.conv.weight)
        assert (ours(x) - ref(x)).abs().max() > 1e-3


def test_official_conversion_renames_a_resnet_prefix() -> None:
    sd = {f"layer2.1.cbam.{k}": v for k, v in OfficialStyleCBAM(16, 4).state_dict().items()}
    keys = set(convert_official_state_dict(sd))
    assert "layer2.1.attn.channel.fc1.weight" in keys and "layer2.1.attn.spatial.bn.weight" in keys


def test_recorded_maps_are_consistent() -> None:
    from course_pkg.attention_maps import record_attention

    m = CBAM(16, reduction=4)
    _randomise(m, 1)
    m.eval()
    x = torch.randn(2, 16, 6, 5)
    with torch.no_grad(), record_attention(m) as rec:
        y = m(x)
    cw, sm = rec["channel"], rec["spatial"]
    assert cw.shape == (2, 16) and sm.shape == (2, 6, 5)
    assert ((cw > 0) & (cw < 1)).all() and ((sm > 0) & (sm < 1)).all()
    # the output is the input scaled by both maps: channel then spatial
    torch.testing.assert_close(y, x * cw[:, :, None, None] * sm[:, None], rtol=1e-5, atol=1e-6)
    # the spatial map was computed on the channel-refined map, not on the input
    with torch.no_grad():
        direct = m.spatial.spatial_map(x)[:, 0]
    assert (direct - sm).abs().max() > 1e-4


def test_channel_attention_uses_both_poolings() -> None:
    ca = ChannelAttention(8, reduction=2)
    _randomise(ca, 2)
    x = torch.randn(1, 8, 5, 5)
    w = ca.channel_weights(x)
    expected = torch.sigmoid(ca.mlp(x.mean((2, 3), keepdim=True)) + ca.mlp(x.amax((2, 3), keepdim=True)))
    torch.testing.assert_close(w, expected)
    # a spike at one position moves the max but barely the mean: the weights change
    x2 = x.clone()
    x2[0, :, 2, 2] += 10
    assert (ca.channel_weights(x2) - w).abs().max() > 1e-3


def test_spatial_attention_works_for_any_channel_count() -> None:
    from course_pkg.attention_maps import record_attention

    sa = SpatialAttention(kernel_size=3, norm=False).eval()
    for c in (1, 5, 64):
        with record_attention(sa) as rec:
            assert sa(torch.randn(2, c, 4, 4)).shape == (2, c, 4, 4)
        assert rec[""].shape == (2, 4, 4)


def test_gradients_flow() -> None:
    m = CBAM(8, reduction=2)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    m(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs_have_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"reduction=32 is larger than channels=16"):
        CBAM(16, reduction=32)
    with pytest.raises(ValueError, match=r"kernel_size must be a positive odd integer .* got 4"):
        CBAM(16, reduction=4, kernel_size=4)
    with pytest.raises(ValueError, match=r"kernel_size must be a positive odd integer .* got 0"):
        SpatialAttention(0)
    m = CBAM(16, reduction=4)
    with pytest.raises(ValueError, match=r"CBAM\(channels=16\) was built for channels=16 but the input has 3"):
        m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"4-D input \(B, C, H, W\), got a 2-D tensor"):
        m(torch.randn(16, 8))
    with pytest.raises(ValueError, match=r"SpatialAttention expects a 4-D input"):
        SpatialAttention()(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"ChannelAttention\(channels=16\) was built for channels=16"):
        ChannelAttention(16, 4)(torch.randn(1, 8, 2, 2))


# --- CUDA against the CPU -------------------------------------------------------------------------
# On Ampere and newer GPUs (the H100 included) PyTorch may run float32 convolutions in TF32: the inputs of
# each multiplication are rounded to 10 explicit mantissa bits (relative spacing 2**-10 ~ 1e-3), while the
# sums stay in float32. CBAM's gates are convolutions (the channel MLP is two 1 x 1 convolutions, the
# spatial map a 7 x 7 one), so with TF32 each pre-activation carries a relative error of order 2**-10 of
# the sum of |x_i w_i| it adds up. Sigmoid (slope <= 1/4) and ReLU (slope <= 1) do not amplify it, and the
# output is the input times the gates, so the output's error is of order 2**-10 times its own scale.
# Measured on an H100 with TF32 on: 7.6e-5 greatest absolute difference, as this predicts (float32 alone,
# with its 2**-23 spacing, stays near 1e-6). So we test both settings, each at the tolerance it allows.
TF32_EPS = 2.0 ** -10


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """Allow or forbid TF32 in cuDNN convolutions and cuBLAS matmuls, restoring the settings after."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _cpu_and_cuda(spatial_norm: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    m = CBAM(32, reduction=4, spatial_norm=spatial_norm).eval()
    _randomise(m)
    x = torch.randn(2, 32, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = m(x)
        got = m.cuda()(x.cuda()).cpu()
    return got, expected


@pytest.mark.gpu
def test_cuda_matches_cpu_in_float32() -> None:
    """TF32 off: only the order of float32 additions differs, so the results agree to ~1e-6."""
    with _tf32(False):
        got, expected = _cpu_and_cuda()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.gpu
def test_cuda_matches_cpu_within_tf32_precision() -> None:
    """TF32 on: the error is bounded by TF32's 10-bit mantissa times the output's scale (comment above)."""
    with _tf32(True):
        got, expected = _cpu_and_cuda()
    scale = float(expected.abs().max())
    torch.testing.assert_close(got, expected, rtol=TF32_EPS, atol=TF32_EPS * scale)
