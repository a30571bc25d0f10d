"""The reference solutions decide every exercise check and every grade, so they are tied here to independent
implementations: the package's models (loaded with the same weights) and timm's layers, in float64.

A reference that drifts (a tanh GELU, a missing scale, a swapped pooling order) fails here even though the
exercise checks, which compare answers with the reference, would still pass it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import randomise_

from course_pkg.attention import MultiHeadSelfAttention, attention_with_weights
from course_pkg.cbam import CBAM
from course_pkg.exercises.solutions import ch01, ch02, ch03, ch04, ch05, ch06
from course_pkg.squeeze_excite import SqueezeExcitation
from course_pkg.vit import Block, PatchEmbed

TIGHT = {"rtol": 1e-10, "atol": 1e-12}
timm_layers = pytest.importorskip("timm.layers")
timm_vit = pytest.importorskip("timm.models.vision_transformer")


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_ch01_attention_pool_is_the_package_attention_without_scale() -> None:
    q, k, v = _randn(4, 6), _randn(7, 6, seed=1), _randn(7, 3, seed=2)
    out, w = ch01.attention_pool(q, k, v)
    ref_out, ref_w = attention_with_weights(q, k, v, scale=1.0)
    torch.testing.assert_close(w, ref_w, **TIGHT)
    torch.testing.assert_close(out, ref_out, **TIGHT)
    torch.testing.assert_close(ch01.softmax_weights(100 * q), torch.softmax(100 * q, -1), **TIGHT)


def test_ch02_attention_and_heads_equal_the_package_and_pytorch() -> None:
    q, k, v = _randn(2, 3, 5, 8), _randn(2, 3, 7, 8, seed=1), _randn(2, 3, 7, 4, seed=2)
    mask = torch.rand(5, 7, generator=torch.Generator().manual_seed(3)) > 0.3
    mask[:, 0] = True
    out, w = ch02.scaled_dot_product_attention(q, k, v, mask)
    ref_out, ref_w = attention_with_weights(q, k, v, mask)
    torch.testing.assert_close(w, ref_w, **TIGHT)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TIGHT)

    ours = randomise_(MultiHeadSelfAttention(12, 3)).double().eval()
    theirs = ch02.MultiHeadSelfAttention(12, 3).double()
    theirs.load_state_dict(ours.state_dict(), strict=False)
    timm_attn = timm_layers.Attention(12, num_heads=3, qkv_bias=True).double().eval()
    timm_attn.load_state_dict(ours.state_dict())
    x = _randn(2, 5, 12, seed=4)
    torch.testing.assert_close(theirs(x), ours(x), **TIGHT)
    torch.testing.assert_close(theirs(x), timm_attn(x), **TIGHT)
    torch.testing.assert_close(ch02.merge_heads(ch02.split_heads(x, 3)), x, **TIGHT)


def test_ch03_patch_self_attention_is_attention_with_q_k_v_the_patches() -> None:
    p = _randn(2, 9, 6)
    out, w = ch03.patch_self_attention(p)
    ref_out, ref_w = attention_with_weights(p, p, p)
    torch.testing.assert_close(w, ref_w, **TIGHT)
    torch.testing.assert_close(out, ref_out, **TIGHT)


def test_ch04_se_block_equals_the_package_and_timm_se_module() -> None:
    se = randomise_(SqueezeExcitation(32, reduction=4)).double().eval()
    block = ch04.SEBlock(32, reduction=4).double()
    block.load_state_dict(se.state_dict())        # the same 1 x 1 convolutions, the same names
    timm_se = timm_layers.SEModule(32, rd_channels=8).double().eval()
    timm_se.load_state_dict(se.state_dict())
    x = _randn(2, 32, 5, 6)
    torch.testing.assert_close(block(x), se(x), **TIGHT)
    torch.testing.assert_close(block(x), timm_se(x), **TIGHT)
    w = ch04.excitation(ch04.squeeze(x), block.fc1.weight.flatten(1), block.fc1.bias,
                        block.fc2.weight.flatten(1), block.fc2.bias)
    torch.testing.assert_close(w, se.channel_weights(x).flatten(1), **TIGHT)


def test_ch05_cbam_block_equals_the_package_cbam_of_the_paper() -> None:
    cbam = randomise_(CBAM(16, reduction=4, spatial_norm=False)).double().eval()
    block = ch05.CBAMBlock(16, reduction=4).double()
    sd = cbam.state_dict()
    block.load_state_dict({"fc1.weight": sd["channel.fc1.weight"].flatten(1),
                           "fc2.weight": sd["channel.fc2.weight"].flatten(1),
                           "conv.weight": sd["spatial.conv.weight"], "conv.bias": sd["spatial.conv.bias"]})
    x = _randn(2, 16, 7, 5)
    torch.testing.assert_close(block(x), cbam(x), **TIGHT)
    mc = ch05.channel_attention(x, block.fc1.weight, block.fc2.weight)
    torch.testing.assert_close(mc, cbam.channel.channel_weights(x).flatten(1), **TIGHT)
    torch.testing.assert_close(ch05.spatial_map(x, block.conv.weight, block.conv.bias),
                               cbam.spatial.spatial_map(x)[:, 0], **TIGHT)


def test_ch06_patches_and_embedding_equal_the_package_patch_embed() -> None:
    pe = randomise_(PatchEmbed(img_size=16, patch_size=4, in_chans=3, embed_dim=10)).double()
    x = _randn(2, 3, 16, 16)
    flat = ch06.patchify(x, 4)                                          # (B, N, C*P*P)
    torch.testing.assert_close(flat @ pe.proj.weight.flatten(1).T + pe.proj.bias, pe(x), **TIGHT)
    cls, pos = _randn(1, 1, 10, seed=1), _randn(1, 17, 10, seed=2)
    tokens = ch06.embed_patches(x, pe.proj.weight, pe.proj.bias, cls, pos)
    torch.testing.assert_close(tokens, torch.cat([cls.expand(2, -1, -1), pe(x)], 1) + pos, **TIGHT)
    assert ch06.count_patches(224, 16) == (196, 768, 197)


@pytest.mark.parametrize("mlp_ratio", [4.0, 2.0])
def test_ch06_encoder_block_equals_the_package_block_and_timm_block(mlp_ratio: float) -> None:
    ours = randomise_(Block(24, num_heads=4, mlp_ratio=mlp_ratio), scale=0.2).double().eval()
    ref = ch06.EncoderBlock(24, num_heads=4, mlp_ratio=mlp_ratio).double()
    ref.load_state_dict(ours.state_dict())
    theirs = timm_vit.Block(24, num_heads=4, mlp_ratio=mlp_ratio, qkv_bias=True).double().eval()
    theirs.load_state_dict(ours.state_dict())
    x = _randn(2, 9, 24)
    torch.testing.assert_close(ref(x), ours(x), **TIGHT)
    torch.testing.assert_close(ref(x), theirs(x), **TIGHT)   # timm: exact GELU, LayerNorm eps 1e-6
