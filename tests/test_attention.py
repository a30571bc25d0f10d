"""Tests for course_pkg.attention: parity with PyTorch's SDPA, nn.MultiheadAttention and timm's Attention,
mask semantics, permutation equivariance, gradients, dropout, and clear errors on bad input."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from course_pkg.attention import MultiHeadSelfAttention, causal_mask, scaled_dot_product_attention

TIGHT = {"rtol": 1e-10, "atol": 1e-12}  # float64


def _qkv(*lead: int, nq: int = 5, nk: int = 7, d: int = 8, dv: int = 6, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(*lead, nq, d, generator=g, dtype=dtype)
    k = torch.randn(*lead, nk, d, generator=g, dtype=dtype)
    v = torch.randn(*lead, nk, dv, generator=g, dtype=dtype)
    return q, k, v


def _bool_mask(*shape: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(*shape, generator=g) > 0.4
    m[..., 0] = True  # at least one key per row, so every row is a proper softmax
    return m


# ------------------------------------------------------------------------------------------------
# The explicit function against PyTorch's fused kernel
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (3,), (2, 4)])
def test_explicit_matches_torch_sdpa_without_mask(lead: tuple[int, ...]) -> None:
    q, k, v = _qkv(*lead)
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), **TIGHT)
    assert w.shape == (*lead, 5, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(*lead, 5, dtype=torch.float64), **TIGHT)


@pytest.mark.parametrize("mask_shape", [(5, 7), (2, 1, 5, 7), (2, 4, 5, 7), (1, 1, 1, 7)])
def test_explicit_matches_torch_sdpa_with_bool_mask(mask_shape: tuple[int, ...]) -> None:
    q, k, v = _qkv(2, 4)
    mask = _bool_mask(*mask_shape)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TIGHT)
    assert (w.masked_select(~mask.expand_as(w)) == 0).all(), "a masked pair (False) got weight"


def test_explicit_matches_torch_sdpa_with_float_mask() -> None:
    q, k, v = _qkv(2, 3)
    bias = torch.randn(3, 5, 7, dtype=torch.float64)
    bias[..., 2] = float("-inf")
    out, w = scaled_dot_product_attention(q, k, v, bias)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=bias), **TIGHT)
    assert (w[..., 2] == 0).all()


def test_explicit_matches_torch_sdpa_with_custom_scale() -> None:
    q, k, v = _qkv(2)
    out, _ = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), **TIGHT)


def test_large_scores_are_stable() -> None:
    q, k, v = _qkv(2, nq=4, nk=4)
    q32, k32, v32 = (1e4 * q).float(), (1e4 * k).float(), v.float()  # scores ~ 1e8: exp() would overflow
    out, w = scaled_dot_product_attention(q32, k32, v32)
    assert torch.isfinite(out).all() and torch.isfinite(w).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q32, k32, v32), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4))


# ------------------------------------------------------------------------------------------------
# Mask semantics
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_is_refused(kind: str) -> None:
    """A query that may see no key would get a zero output, silently: refused (issue 21)."""
    q, k, v = _qkv(2)
    keep = torch.ones(5, 7, dtype=torch.bool)
    keep[3] = False  # query 3 may see no key at all
    mask = keep if kind == "bool" else torch.zeros(5, 7, dtype=torch.float64).masked_fill(~keep, float("-inf"))
    with pytest.raises(ValueError, match="mask.*(every key|whole row)"):
        scaled_dot_product_attention(q, k, v, mask)


def test_fully_masked_row_is_refused_in_the_layer_both_paths() -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(16, 4).double().eval()
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    keep = torch.ones(6, 6, dtype=torch.bool)
    keep[2] = False
    with pytest.raises(ValueError, match="every key"):
        m(x, keep)
    with pytest.raises(ValueError, match="every key"):
        m(x, keep, return_attention=True)


def test_multihead_attention_convention_is_refused() -> None:
    """nn.MultiheadAttention's causal mask (True = ignore, the future) is not our keep mask: refused."""
    m = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 6, 16)
    ignore_future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    with pytest.raises(ValueError, match="~mask"):
        m(x, ignore_future)
    padding_ignore = torch.zeros(2, 1, 1, 6, dtype=torch.bool)  # True = pad: nothing padded
    with pytest.raises(ValueError, match="~mask"):
        m(x, padding_ignore)
    torch.testing.assert_close(m(x, ~ignore_future), m(x, causal_mask(6)))


def test_causal_mask_hides_the_future() -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(16, 2).double().eval()
    x = torch.randn(1, 6, 16, dtype=torch.float64)
    mask = causal_mask(6)
    assert mask.dtype == torch.bool and mask[0, 1].item() is False and mask[1, 0].item() is True
    out, w = m(x, mask, return_attention=True)
    assert (w.triu(diagonal=1) == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 6, dtype=torch.float64), **TIGHT)
    # changing the last tokens does not change the earlier outputs
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 16, dtype=torch.float64)
    torch.testing.assert_close(m(x2, mask)[:, :4], out[:, :4], **TIGHT)
    # the same as PyTorch's is_causal
    q = k = v = torch.randn(1, 2, 6, 4, dtype=torch.float64)
    torch.testing.assert_close(scaled_dot_product_attention(q, k, v, mask)[0],
                               F.scaled_dot_product_attention(q, k, v, is_causal=True), **TIGHT)


# ------------------------------------------------------------------------------------------------
# The layer: its two paths, and parity with nn.MultiheadAttention and timm
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_fused_and_explicit_paths_agree(mask: str | None) -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(24, 3).double().eval()
    x = torch.randn(2, 9, 24, dtype=torch.float64)
    mk = {None: None, "bool": _bool_mask(2, 1, 9, 9), "float": torch.randn(9, 9, dtype=torch.float64)}[mask]
    fused = m(x, mk)
    explicit, w = m(x, mk, return_attention=True)
    torch.testing.assert_close(fused, explicit, **TIGHT)
    assert w.shape == (2, 3, 9, 9)


def _mha_from(ours: MultiHeadSelfAttention) -> nn.MultiheadAttention:
    ref = nn.MultiheadAttention(ours.dim, ours.num_heads, bias=True, batch_first=True).double().eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)  # both pack [q; k; v] along the rows
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    return ref


@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_matches_torch_multihead_attention(mask: str | None) -> None:
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(32, 4).double().eval()
    ref = _mha_from(ours)
    x = torch.randn(3, 10, 32, dtype=torch.float64)
    keep = _bool_mask(10, 10) if mask == "bool" else None
    bias = torch.randn(10, 10, dtype=torch.float64) if mask == "float" else None
    ours_mask = keep if keep is not None else bias
    ref_mask = ~keep if keep is not None else bias  # nn.MultiheadAttention: True = ignore (the opposite)
    out, w = ours(x, ours_mask, return_attention=True)
    ref_out, ref_w = ref(x, x, x, attn_mask=ref_mask, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, **TIGHT)
    torch.testing.assert_close(w, ref_w, **TIGHT)  # per head: (B, H, N, N)
    torch.testing.assert_close(ours(x, ours_mask), ref_out, **TIGHT)  # the fused path too


timm_attention = pytest.importorskip("timm.layers").Attention


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_timm_state_dict_loads_strictly_and_outputs_match(qkv_bias: bool) -> None:
    torch.manual_seed(0)
    ref = timm_attention(48, num_heads=6, qkv_bias=qkv_bias).double().eval()
    ours = MultiHeadSelfAttention(48, 6, qkv_bias=qkv_bias).double().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 11, 48, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), **TIGHT)
    torch.testing.assert_close(ours(x, return_attention=True)[0], ref(x), **TIGHT)
    keep = _bool_mask(2, 1, 11, 11)
    torch.testing.assert_close(ours(x, keep), ref(x, attn_mask=keep), **TIGHT)
    # and the other way round
    ref2 = timm_attention(48, num_heads=6, qkv_bias=qkv_bias).double().eval()
    ref2.load_state_dict(ours.state_dict(), strict=True)
    torch.testing.assert_close(ref2(x), ours(x), **TIGHT)


def test_timm_vit_block_attention_loads() -> None:
    from timm.models.vision_transformer import Block

    block = Block(dim=64, num_heads=4, qkv_bias=True).eval()
    ours = MultiHeadSelfAttention(64, 4).eval()
    ours.load_state_dict(block.attn.state_dict(), strict=True)
    x = torch.randn(2, 5, 64)
    torch.testing.assert_close(ours(x), block.attn(x), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------
_EQUIV = MultiHeadSelfAttention(16, 4).double().eval()


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 12), b=st.integers(1, 3), seed=st.integers(0, 2**16), data=st.data())
def test_permutation_equivariance(n: int, b: int, seed: int, data: st.DataObject) -> None:
    perm = torch.tensor(data.draw(st.permutations(range(n)), label="perm"))
    x = torch.randn(b, n, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    out = _EQUIV(x)
    torch.testing.assert_close(_EQUIV(x[:, perm]), out[:, perm], **TIGHT)
    # the weights permute along both axes
    _, w = _EQUIV(x, return_attention=True)
    _, wp = _EQUIV(x[:, perm], return_attention=True)
    torch.testing.assert_close(wp, w[:, :, perm][:, :, :, perm], **TIGHT)


@pytest.mark.parametrize("return_attention", [False, True])
def test_gradients_reach_every_parameter(return_attention: bool) -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(16, 4)
    x = torch.randn(2, 5, 16, requires_grad=True)
    out = m(x, return_attention=return_attention)
    out = out[0] if return_attention else out
    out.square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_gradcheck_explicit_function() -> None:
    q, k, v = (t.requires_grad_(True) for t in _qkv(2, nq=3, nk=4, d=4, dv=2))
    mask = _bool_mask(3, 4)
    assert torch.autograd.gradcheck(lambda a, b, c: scaled_dot_product_attention(a, b, c, mask)[0], (q, k, v))


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(16, 4, attn_drop=0.5, proj_drop=0.5)
    x = torch.randn(2, 8, 16)
    m.eval()
    a, b = m(x), m(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(m(x, return_attention=True)[0], a, rtol=1e-5, atol=1e-6)
    m.train()
    assert not torch.allclose(m(x), a), "dropout is not active in training"
    _, w = m(x, return_attention=True)
    assert (w == 0).any(), "attention dropout should zero some weights in training"
    m0 = MultiHeadSelfAttention(16, 4).train()
    torch.testing.assert_close(m0(x), m0.eval()(x), rtol=0, atol=0)


def test_fused_path_keeps_no_weights_and_return_attention_goes_through_the_tap() -> None:
    from course_pkg.attention_maps import record_attention

    m = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    calls = []
    probe = m.tap.register_forward_hook(lambda mod, inp, o: calls.append(o))
    out = m(x)
    probe.remove()
    assert isinstance(out, torch.Tensor) and calls == []     # fused path: no N x N matrix at all
    seen = []
    handle = m.tap.register_forward_hook(lambda mod, inp, o: seen.append(o))
    _, w = m(x, return_attention=True)
    handle.remove()
    assert len(seen) == 1 and seen[0] is w                          # one mechanism: the tap
    with record_attention(m) as maps:
        m(x)
    torch.testing.assert_close(maps[""], w.detach())


def test_state_dict_keys_are_timms() -> None:
    assert set(MultiHeadSelfAttention(8, 2).state_dict()) == {"qkv.weight", "qkv.bias", "proj.weight", "proj.bias"}
    assert set(MultiHeadSelfAttention(8, 2, qkv_bias=False).state_dict()) == {"qkv.weight", "proj.weight",
                                                                              "proj.bias"}


# ------------------------------------------------------------------------------------------------
# Clear errors
# ------------------------------------------------------------------------------------------------
def test_dim_not_divisible_by_num_heads() -> None:
    with pytest.raises(ValueError, match=r"dim=10 is not divisible by num_heads=4.*\[1, 2, 5, 10\]"):
        MultiHeadSelfAttention(10, 4)


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 0, "num_heads": 1}, "dim=0 is not valid; use a positive integer"),
    ({"dim": 8, "num_heads": 0}, "num_heads=0 is not valid"),
    ({"dim": 8.0, "num_heads": 2}, r"dim=8.0 is not valid"),
    ({"dim": 8, "num_heads": 2, "attn_drop": 1.0}, r"attn_drop=1.0 is out of range; use .* \[0, 1\)"),
    ({"dim": 8, "num_heads": 2, "proj_drop": -0.1}, r"proj_drop=-0.1 is out of range"),
])
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MultiHeadSelfAttention(**kwargs)


@pytest.mark.parametrize("shape, match", [
    ((5, 16), r"x has 2 dimensions \(shape \(5, 16\)\); expected 3: \(batch B, tokens N, channels 16\)"),
    ((1, 2, 5, 16), r"x has 4 dimensions"),
    ((2, 5, 12), r"x has last dimension 12 .* built with dim=16; expected shape \(B, N, 16\)"),
])
def test_bad_input_shape(shape: tuple[int, ...], match: str) -> None:
    m = MultiHeadSelfAttention(16, 4)
    with pytest.raises(ValueError, match=match):
        m(torch.randn(*shape))


@pytest.mark.parametrize("mask, match", [
    (torch.ones(5, 6, dtype=torch.bool), r"mask has shape \(5, 6\), which does not broadcast .* \(2, 4, 5, 5\)"),
    (torch.ones(3, 1, 5, 5, dtype=torch.bool), r"mask has shape \(3, 1, 5, 5\)"),
    (torch.ones(1, 2, 4, 5, 5, dtype=torch.bool), r"mask has shape \(1, 2, 4, 5, 5\)"),
    (torch.ones(5, 5, dtype=torch.long), r"mask has dtype torch.int64; use a bool mask \(True = keep"),
    ([[True]], r"mask must be a torch.Tensor"),
])
def test_bad_mask(mask: object, match: str) -> None:
    m = MultiHeadSelfAttention(16, 4)
    with pytest.raises((TypeError, ValueError), match=match):
        m(torch.randn(2, 5, 16), mask)


def test_bad_arguments_to_the_function() -> None:
    q, k, v = _qkv(nq=3, nk=4, d=4, dv=2)
    with pytest.raises(ValueError, match="q and k must share their last dimension"):
        scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ValueError, match="k and v must have the same number of keys"):
        scaled_dot_product_attention(q, k, v[:3])
    with pytest.raises(ValueError, match=r"dropout_p=1.5 is out of range"):
        scaled_dot_product_attention(q, k, v, dropout_p=1.5)
    with pytest.raises(ValueError, match=r"mask has shape \(3, 3\), which does not broadcast .* \(3, 4\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        scaled_dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="n=0 is not a valid sequence length"):
        causal_mask(0)


@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_cpu_autocast_bfloat16_is_finite(mask: str | None) -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(32, 4)
    x = torch.randn(2, 7, 32)
    mk = {None: None, "bool": causal_mask(7), "float": torch.zeros(7, 7).masked_fill(~causal_mask(7), float("-inf"))}[mask]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = m(x, mk)
        explicit, w = m(x, mk, return_attention=True)
    assert fused.dtype == torch.bfloat16
    for t in (fused, explicit, w):
        assert torch.isfinite(t).all()
    torch.testing.assert_close(fused.float(), explicit.float(), rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(fused.float(), m(x, mk), rtol=5e-2, atol=5e-2)


# ------------------------------------------------------------------------------------------------
# GPU (skipped without CUDA)
# ------------------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cpu_and_gpu_agree() -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(64, 4).eval()
    x = torch.randn(2, 50, 64)
    keep = _bool_mask(2, 1, 50, 50)
    cpu_masked, cpu_explicit = m(x, keep), m(x, return_attention=True)[0]
    gm = copy.deepcopy(m).to("cuda")
    torch.testing.assert_close(gm(x.cuda(), keep.cuda()).cpu(), cpu_masked, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gm(x.cuda(), return_attention=True)[0].cpu(), cpu_explicit, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_on_gpu_is_finite(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(128, 8).cuda()
    x = torch.randn(4, 197, 128, device="cuda", requires_grad=True)
    keep = causal_mask(197, device="cuda")
    with torch.autocast("cuda", dtype=dtype):
        fused = m(x)
        explicit, w = m(x, return_attention=True)
        masked = m(x, keep)
        biased = m(x, torch.zeros(197, 197, device="cuda").masked_fill(~keep, float("-inf")))
    for t in (fused, explicit, w, masked, biased):
        assert torch.isfinite(t).all()
    torch.testing.assert_close(fused.float(), explicit.float(), rtol=2e-2, atol=2e-2)
    fused.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.gpu
def test_fully_masked_row_on_gpu_fused_path() -> None:
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(64, 4).cuda().eval()
    x = torch.randn(2, 8, 64, device="cuda")
    keep = torch.ones(8, 8, dtype=torch.bool, device="cuda")
    keep[5] = False
    out = m(x, keep)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, m(x, keep, return_attention=True)[0], rtol=1e-4, atol=1e-4)


def test_mask_rule_3d_is_per_sample_whatever_the_head_count() -> None:
    """A 3-D mask (B, N, N) is per sample: the same result as (B, 1, N, N), also when B == num_heads."""
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(4, 5, 16)
    keep = torch.arange(5)[None, None, :] < torch.tensor([5, 4, 3, 2])[:, None, None]  # (4, 1, 5)
    keep = keep.expand(4, 5, 5)
    with torch.no_grad():
        out3, w3 = m(x, keep, return_attention=True)
        out4, w4 = m(x, keep.unsqueeze(1), return_attention=True)
        torch.testing.assert_close(w3, w4, rtol=0, atol=0)
        torch.testing.assert_close(m(x, keep), m(x, keep.unsqueeze(1)))  # the fused path too
    assert (w3.masked_select(~keep[:, None].expand_as(w3)) == 0).all()


def test_mask_rule_float_zero_one_refused_all_zero_bias_accepted() -> None:
    m = MultiHeadSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match=r"mask\.bool\(\)"):
        m(x, torch.tril(torch.ones(5, 5)))
    with pytest.raises(ValueError, match=r"mask\.bool\(\)"):
        scaled_dot_product_attention(x, x, x, torch.ones(5, 5))
    with torch.no_grad():  # an all-zero bias (e.g. a padding bias for a batch without padding) is no mask
        torch.testing.assert_close(m(x, torch.zeros(5, 5)), m(x))


def test_wrong_dtype_and_container_inputs_are_explained() -> None:
    m = MultiHeadSelfAttention(16, 4)
    with pytest.raises(ValueError, match=r"float64.*\.float\(\)"):
        m(torch.randn(2, 5, 16, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"got a list.*torch\.as_tensor"):
        m(torch.randn(2, 5, 16).tolist())
    with pytest.raises(TypeError, match="n='5' is a str"):
        causal_mask("5")  # type: ignore[arg-type]
