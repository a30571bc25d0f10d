"""ResNets with SE/CBAM: parameter counts and output parity with torchvision and timm, placement of the
attention module, the small variant, exposed maps, gradients, bad inputs."""

from __future__ import annotations

import importlib

import pytest
import torch
import torchvision
from helpers import randomise_
from torch import nn

from course_pkg.cbam import CBAM
from course_pkg.resnet import (
    BasicBlock,
    Bottleneck,
    ResNet,
    attention_modules,
    count_parameters,
    resnet18,
    resnet34,
    resnet50,
    resnet_small,
)
from course_pkg.squeeze_excite import SqueezeExcitation
from course_pkg.weights import convert_timm_resnet_state_dict as convert_timm_state_dict


def _randomise(module: nn.Module, seed: int = 0) -> None:
    randomise_(module, seed, scale=0.1, fan_in=True)


@pytest.mark.parametrize("ours,theirs", [(resnet18, torchvision.models.resnet18),
                                         (resnet34, torchvision.models.resnet34),
                                         (resnet50, torchvision.models.resnet50)])
def test_plain_parameter_counts_and_keys_equal_torchvision(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    a, b = ours(), theirs()
    assert count_parameters(a) == count_parameters(b)
    assert list(a.state_dict()) == list(b.state_dict())
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


def test_known_parameter_counts() -> None:
    assert count_parameters(resnet50()) == 25_557_032
    assert count_parameters(resnet18()) == 11_689_512
    assert count_parameters(resnet34()) == 21_797_672
    # SE-ResNet-50: per block 2 * C * C/16 + C/16 + C over outputs 256 (x3), 512 (x4), 1024 (x6), 2048 (x3)
    se_extra = sum(n * (2 * c * (c // 16) + c // 16 + c) for n, c in ((3, 256), (4, 512), (6, 1024), (3, 2048)))
    assert count_parameters(resnet50(attention="se")) == 25_557_032 + se_extra == 28_088_024
    # CBAM-ResNet-50: a bias-free MLP 2 * C * C/16, plus the 7x7 conv (98) and its BatchNorm (2) per block
    cbam_extra = sum(n * (2 * c * (c // 16) + 100) for n, c in ((3, 256), (4, 512), (6, 1024), (3, 2048)))
    assert count_parameters(resnet50(attention="cbam")) == 25_557_032 + cbam_extra


def test_resnet50_loads_torchvision_weights_strictly_and_matches_its_output() -> None:
    ref = torchvision.models.resnet50()
    _randomise(ref)
    ref.eval()
    ours = resnet50().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    assert expected.abs().max() > 1e-2  # not a degenerate all-zero comparison
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_resnet18_matches_torchvision_output() -> None:
    ref = torchvision.models.resnet18(num_classes=7)
    _randomise(ref, 1)
    ref.eval()
    ours = resnet18(num_classes=7).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_attention_resnet50_matches_timm(attention: str) -> None:
    timm = pytest.importorskip("timm")
    if attention == "se":
        ref = timm.create_model("seresnet50", pretrained=False)
    else:
        ref = timm.create_model("resnet50", pretrained=False, block_args=dict(attn_layer="cbam"))
    _randomise(ref, 2)
    ref.eval()
    ours = resnet50(attention=attention).eval()
    ours.load_state_dict(convert_timm_state_dict(ref.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = ref(x)
        got = ours(x)
    assert expected.abs().max() > 1e-2
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("block_cls,attention", [(BasicBlock, "se"), (Bottleneck, "cbam")])
def test_attention_sits_after_the_last_bn_before_the_identity_add(block_cls, attention: str) -> None:  # type: ignore[no-untyped-def]
    block = block_cls(32, 16, stride=2, attention=attention, reduction=4).eval()
    _randomise(block, 4)
    seen: dict[str, torch.Tensor] = {}
    last_bn = block.bn3 if block_cls is Bottleneck else block.bn2
    last_bn.register_forward_hook(lambda m, i, o: seen.__setitem__("bn", o.clone()))
    block.attn.register_forward_hook(lambda m, i, o: seen.__setitem__("attn_in", i[0].clone()) or
                                     seen.__setitem__("attn_out", o.clone()))
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        y = block(x)
        identity = block.downsample(x)
    torch.testing.assert_close(seen["attn_in"], seen["bn"])  # input of attention = output of last BN
    torch.testing.assert_close(y, torch.relu(seen["attn_out"] + identity))  # then the shortcut is added


def _basic_block_params(cin: int, c: int, stride: int) -> int:
    convs = 9 * cin * c + 9 * c * c + 4 * c                            # two 3x3 convs, two BatchNorms
    shortcut = cin * c + 2 * c if stride != 1 or cin != c else 0       # 1x1 conv + BatchNorm
    return convs + shortcut


def test_resnet_small_shapes_and_exact_size() -> None:
    """The parameter counts follow from the layer formulas (stem, blocks, head; SE: two 1x1 convs with
    bias per block; CBAM: a bias-free MLP, a 7x7 conv and a one-channel BatchNorm per block)."""
    plain = 27 * 16 + 32 + _basic_block_params(16, 16, 1) + _basic_block_params(16, 32, 2) \
        + _basic_block_params(32, 64, 2) + 64 * 10 + 10
    se = sum(2 * c * (c // 4) + c // 4 + c for c in (16, 32, 64))
    cbam = sum(2 * c * (c // 4) + 2 * 49 + 2 for c in (16, 32, 64))
    expected = {None: plain, "se": plain + se, "cbam": plain + cbam}
    for attention in (None, "se", "cbam"):
        m = resnet_small(attention=attention).eval()
        assert count_parameters(m) == expected[attention]
        for size in (32, 48, 64):
            with torch.no_grad():
                assert m(torch.randn(2, 3, size, size)).shape == (2, 10)
                assert m.forward_features(torch.randn(1, 3, size, size)).shape == (1, 64, size // 4, size // 4)
    m = resnet_small(num_classes=4, in_chans=1, widths=(8, 16, 32, 64), blocks=(1, 2, 1, 1), reduction=2)
    assert m(torch.randn(1, 1, 32, 32)).shape == (1, 4)
    assert len(m.layer2) == 2 and m.num_features == 64


def test_the_builder_string_of_the_manifest_works() -> None:
    module, name = "course_pkg.resnet:resnet_small".split(":")
    build = getattr(importlib.import_module(module), name)
    m = build(num_classes=3, attention="cbam", in_chans=3)
    assert isinstance(m, ResNet) and m.attention == "cbam" and m.fc.out_features == 3
    assert build(num_classes=3, attention="none", in_chans=3).attention is None


def test_attention_modules_and_their_recorded_maps() -> None:
    from course_pkg.attention_maps import record_attention

    m = resnet_small(attention="cbam").eval()
    mods = attention_modules(m)
    assert [n for n, _ in mods] == ["layer1.0.attn", "layer2.0.attn", "layer3.0.attn"]
    assert all(isinstance(mod, CBAM) for _, mod in mods)
    with torch.no_grad(), record_attention(m) as maps:
        m(torch.randn(3, 3, 64, 64))
    assert maps["layer1.0.attn.spatial"].shape == (3, 64, 64)
    assert maps["layer3.0.attn.spatial"].shape == (3, 16, 16)
    assert maps["layer3.0.attn.channel"].shape == (3, 64)

    se = resnet_small(attention="se").eval()
    assert all(isinstance(mod, SqueezeExcitation) for _, mod in attention_modules(se))
    with torch.no_grad(), record_attention(se) as maps:
        se(torch.randn(2, 3, 32, 32))
    assert maps.kinds["layer2.0.attn"] == "channel"
    assert attention_modules(resnet_small()) == []
    with pytest.raises(ValueError, match="no course attention module"):
        with record_attention(resnet_small()):
            pass


@pytest.mark.parametrize("attention", [None, "se", "cbam"])
def test_gradients_reach_every_parameter(attention) -> None:  # type: ignore[no-untyped-def]
    m = resnet_small(attention=attention)
    x = torch.randn(4, 3, 32, 32)
    loss = nn.functional.cross_entropy(m(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bad_inputs_have_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"attention='sk' is not known; use None .* 'se' .* 'cbam'"):
        resnet_small(attention="sk")
    with pytest.raises(ValueError, match=r"attention=1 is not known"):
        resnet50(attention=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"reduction=32 is larger than channels=16"):
        resnet_small(attention="se", reduction=32)
    with pytest.raises(ValueError, match=r"layers=\(1, 1\) and widths=\(16, 32, 64\)"):
        resnet_small(blocks=(1, 1))
    with pytest.raises(ValueError, match=r"num_classes=0 is not valid; use a positive integer"):
        resnet_small(num_classes=0)
    with pytest.raises(ValueError, match=r"stem='tiny' is not known"):
        ResNet(BasicBlock, (1,), (8,), stem="tiny")
    m = resnet_small()
    with pytest.raises(ValueError, match=r"in_chans=3 but the input has 1 channels"):
        m(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"4-D input \(B, C, H, W\), got a 3-D tensor of shape \(3, 32, 32\)"):
        m(torch.randn(3, 32, 32))


@pytest.mark.gpu
def test_cuda_matches_cpu() -> None:
    m = resnet_small(attention="cbam").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = m(x)
        got = m.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
