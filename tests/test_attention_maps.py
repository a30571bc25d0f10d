"""course_pkg.attention_maps: one recorder for SE, CBAM and self-attention maps, with one shape per kind."""

from __future__ import annotations

import pytest
import torch
from helpers import randomise_

from course_pkg.attention import MultiHeadSelfAttention
from course_pkg.attention_maps import record_attention, taps
from course_pkg.cbam import CBAM
from course_pkg.resnet import resnet_small
from course_pkg.squeeze_excite import SqueezeExcitation
from course_pkg.vit import VisionTransformer


def _vit() -> VisionTransformer:
    return VisionTransformer(img_size=16, patch_size=4, num_classes=3, embed_dim=24, depth=2, num_heads=3).eval()


def test_se_channel_weights_are_recorded_as_b_c_and_equal_the_formula() -> None:
    se = randomise_(SqueezeExcitation(8, reduction=2)).eval()
    x = torch.randn(3, 8, 5, 4)
    with record_attention(se) as maps:
        out = se(x)
    assert list(maps) == [""] and maps.kinds[""] == "channel"
    w = maps[""]
    assert w.shape == (3, 8) and not w.requires_grad
    torch.testing.assert_close(w, se.channel_weights(x).flatten(1))
    torch.testing.assert_close(out, x * w[:, :, None, None])


def test_cbam_records_channel_then_spatial_maps_by_module_name() -> None:
    m = randomise_(CBAM(8, reduction=2)).eval()
    x = torch.randn(2, 8, 6, 5)
    with record_attention(m) as maps:
        out = m(x)
    assert list(maps) == ["channel", "spatial"]
    assert maps["channel"].shape == (2, 8) and maps["spatial"].shape == (2, 6, 5)
    x1 = x * maps["channel"][:, :, None, None]
    torch.testing.assert_close(maps["spatial"], m.spatial.spatial_map(x1)[:, 0])
    torch.testing.assert_close(out, x1 * maps["spatial"][:, None])


def test_resnet_maps_by_name() -> None:
    net = resnet_small(num_classes=3, attention="cbam").eval()
    x = torch.randn(2, 3, 16, 16)
    with record_attention(net) as maps:
        net(x)
    assert list(maps.of_kind("spatial")) == ["layer1.0.attn.spatial", "layer2.0.attn.spatial",
                                             "layer3.0.attn.spatial"]
    assert [t.shape[-1] for t in maps.of_kind("spatial").values()] == [16, 8, 4]
    assert maps["layer2.0.attn.channel"].shape == (2, net.layer2[0].attn.channels)
    assert not any(hasattr(m, name) for m in net.modules()        # one way to get maps: the recorder
                   for name in ("last", "last_map", "last_weights", "last_spatial_map"))


def test_vit_token_maps_match_return_attention_and_leave_outputs_unchanged() -> None:
    model = randomise_(_vit(), scale=0.2)
    x = torch.randn(2, 3, 16, 16)
    plain = model(x)
    with record_attention(model) as maps:
        recorded_logits = model(x)
    tokens = maps.of_kind("token")
    assert list(tokens) == ["blocks.0.attn", "blocks.1.attn"]
    assert all(t.shape == (2, 3, 17, 17) for t in tokens.values())
    torch.testing.assert_close(sum(t.sum(-1) for t in tokens.values()), torch.full((2, 3, 17), 2.0))
    torch.testing.assert_close(recorded_logits, plain, rtol=1e-5, atol=1e-6)   # explicit vs fused path
    logits, listed = model(x, return_attention=True)
    for a, b in zip(listed, tokens.values()):
        torch.testing.assert_close(a.detach(), b)


def test_the_recorder_cleans_up_and_refuses_models_without_attention() -> None:
    model = _vit()
    with record_attention(model):
        assert all(tap.recording for _, tap in taps(model))
    assert not any(tap.recording for _, tap in taps(model))
    assert all(not tap._forward_hooks or len(tap._forward_hooks) == 1 for _, tap in taps(model))  # keep-last only
    with pytest.raises(ValueError, match="holds no course attention module"):
        with record_attention(resnet_small(attention=None)):
            pass


def test_recording_without_detach_lets_a_gradient_through_a_map() -> None:
    m = MultiHeadSelfAttention(8, 2).eval()      # record_attention refuses train() mode
    x = torch.randn(1, 4, 8, requires_grad=True)
    with record_attention(m, detach=False) as maps:
        m(x)
    maps[""][0, 0, 0, 1].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vit_return_attention_returns_what_the_taps_pass_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """``return_attention=True`` returns each block's tap output, the tensor record_attention records (one
    source of maps): a tap whose output is changed changes what return_attention returns. (It threads the
    maps back through the return values rather than through record_attention's hooks so that
    ``torch.compile`` still makes one graph of it: tests/test_compile.py.)"""
    from course_pkg.vit import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(img_size=16, patch_size=8, embed_dim=16, depth=2, num_heads=2,
                              num_classes=3).eval()
    x = torch.randn(2, 3, 16, 16)
    _, maps = model(x, return_attention=True)
    marker = torch.full_like(maps[1], 0.25)
    tap = model.blocks[1].attn.tap
    monkeypatch.setattr(tap, "forward", lambda weights: marker)
    _, changed = model(x, return_attention=True)
    torch.testing.assert_close(changed[1], marker)
    torch.testing.assert_close(changed[0], maps[0])
    assert changed[1].requires_grad is False and maps[0].requires_grad  # kept in the graph, not detached
