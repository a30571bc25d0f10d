"""The mistake suite: typical learner mistakes for every exercise, each with the diagnosis it must get.

Each :class:`Attempt` is a wrong answer written as a learner would write it (not the recorded mistake's own
code), with the words its feedback must contain to *name* the mistake. :func:`classify` sorts the feedback
into five kinds:

* ``accepted``: the check passed a wrong answer;
* ``misleading``: the feedback claims a recorded mistake whose advice does not name this one, or contains
  one of the attempt's ``misleading`` fragments (advice pointing at a different bug);
* ``named``: every fragment of ``named`` is in the feedback;
* ``partly``: one of ``partly`` is in it (the feedback points at the right place, not at the cause);
* ``generic``: none of these (the feedback says something is wrong, not what).

``tests/test_exercise_feedback.py`` asserts the kind of every attempt and the totals;
``scripts/feedback_report.py`` prints the counts per chapter. Matching is case-insensitive.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from course_pkg import exercises
from course_pkg.exercises.solutions import ch04 as ref4
from course_pkg.exercises.solutions import ch05 as ref5
from course_pkg.exercises.solutions import ch06 as ref6

KINDS = ("named", "partly", "generic", "misleading", "accepted")


@dataclass(frozen=True)
class Attempt:
    exercise: str
    label: str
    answer: Any
    named: tuple[str, ...]
    partly: tuple[str, ...] = ()
    misleading: tuple[str, ...] = ()
    expect: str = "named"  # the kind the test asserts


SUITE: list[Attempt] = []


def attempt(exercise: str, label: str, answer: Any, named: tuple[str, ...] | str, *,
            partly: tuple[str, ...] = (), misleading: tuple[str, ...] = (), expect: str = "named") -> None:
    SUITE.append(Attempt(exercise, label, answer, (named,) if isinstance(named, str) else named,
                         partly, misleading, expect))


def feedback(a: Attempt) -> tuple[Any, str]:
    """Check the attempt as a learner's cell does (``ex.<name>.check(answer)``); the result and the printed text."""
    ex = exercises.get(a.exercise)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        result = ex.check(a.answer)
    return result, buf.getvalue()


def classify(a: Attempt, result: Any, text: str) -> str:
    low = text.lower()
    if result.passed:
        return "accepted"
    named = all(f.lower() in low for f in a.named)
    ex = exercises.get(a.exercise)
    claimed = [m for m in ex.mistakes if f"common mistake: {m.advice}".lower() in low]
    if any(f.lower() in low for f in a.misleading) or (claimed and not named):
        return "misleading"
    if named:
        return "named"
    if any(f.lower() in low for f in a.partly):
        return "partly"
    return "generic"


# ======================================================================================================
# Chapter 1
# ======================================================================================================
def _sm_no_shift(scores):
    e = scores.exp()
    return e / e.sum(-1, keepdim=True)


def _sm_global_max(scores):
    e = torch.exp(scores - torch.max(scores))
    return e / e.sum(dim=-1, keepdim=True)


def _sm_whole_sum(scores):
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    return e / e.sum()


def _sm_no_exp(scores):
    return scores / scores.sum(-1, keepdim=True)


def _sm_no_keepdim(scores):
    e = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1)


def _sm_dim0(scores):
    e = torch.exp(scores - scores.max(dim=0, keepdim=True).values)
    return e / e.sum(dim=0, keepdim=True)


def _sm_in_place(scores):
    scores -= scores.max(dim=-1, keepdim=True).values
    scores.exp_()
    return scores / scores.sum(dim=-1, keepdim=True)


attempt("ch01.softmax_weights", "no max subtraction", _sm_no_shift, ("NaN", "subtract each row's maximum"))
attempt("ch01.softmax_weights", "global maximum", _sm_global_max, "each row's own maximum")
attempt("ch01.softmax_weights", "sum over the whole tensor", _sm_whole_sum, ("sum to one", "over the last dimension"))
attempt("ch01.softmax_weights", "raw scores normalised", _sm_no_exp, "exponentiate first")
attempt("ch01.softmax_weights", "sum without keepdim", _sm_no_keepdim, "keepdim=True")
attempt("ch01.softmax_weights", "softmax over dim 0", _sm_dim0, ("over the last dimension", "dim=-1"))
attempt("ch01.softmax_weights", "changes scores in place", _sm_in_place, "changed its input `scores` in place")


def _wa_mean(weights, values):
    return values.mean(dim=0)


def _wa_no_sum(weights, values):
    return weights.unsqueeze(-1) * values


def _wa_order(weights, values):
    return values @ weights


def _wa_sum_features(weights, values):
    return (weights[..., None] * values).sum(dim=-1)


def _wa_broadcast(weights, values):
    return (weights * values).sum(dim=0)


def _wa_softmax_again(weights, values):
    return torch.softmax(weights, dim=-1) @ values


attempt("ch01.weighted_average", "ignores the weights", _wa_mean, "ignores the weights")
attempt("ch01.weighted_average", "forgets the sum", _wa_no_sum, "sum over the items")
attempt("ch01.weighted_average", "values @ weights", _wa_order, "weights @ values")
attempt("ch01.weighted_average", "sums over the features", _wa_sum_features, "sum over the features")
attempt("ch01.weighted_average", "weights without an item axis", _wa_broadcast, "weights[:, None]")
attempt("ch01.weighted_average", "softmax of the weights", _wa_softmax_again, "already weights")


def _ap_no_softmax(query, keys, values):
    scores = query @ keys.T
    return scores @ values, scores


def _ap_swapped(query, keys, values):
    w = torch.exp(query @ keys.T)
    w = w / w.sum(-1, keepdim=True)
    return w, w @ values


def _ap_dim0(query, keys, values):
    s = query @ keys.T
    w = torch.exp(s - s.max(0, keepdim=True).values)
    w = w / w.sum(0, keepdim=True)
    return w @ values, w


def _ap_only_output(query, keys, values):
    s = query @ keys.T
    w = torch.exp(s - s.max(-1, keepdim=True).values)
    return (w / w.sum(-1, keepdim=True)) @ values


def _ap_scaled(query, keys, values):
    s = query @ keys.T / math.sqrt(query.shape[-1])
    w = torch.exp(s - s.max(-1, keepdim=True).values)
    w = w / w.sum(-1, keepdim=True)
    return w @ values, w


def _ap_mix_keys(query, keys, values):
    s = query @ keys.T
    w = torch.exp(s - s.max(-1, keepdim=True).values)
    w = w / w.sum(-1, keepdim=True)
    return w @ keys, w


attempt("ch01.attention_pool", "forgets the softmax", _ap_no_softmax, "with a softmax first")
attempt("ch01.attention_pool", "returns (weights, output)", _ap_swapped, "return output, weights")
attempt("ch01.attention_pool", "softmax over the queries", _ap_dim0, ("sum to one", "over the keys"))
attempt("ch01.attention_pool", "returns only the output", _ap_only_output, "tuple")
attempt("ch01.attention_pool", "divides by sqrt(d)", _ap_scaled, "no 1/sqrt(d)")
attempt("ch01.attention_pool", "mixes the keys", _ap_mix_keys, "weights @ values")


# ======================================================================================================
# Chapter 2
# ======================================================================================================
def _sdpa(q, k, v, mask=None, *, scale=None, fill=float("-inf"), keep_true=True, after=False, dim=-1, kt=False):
    d = q.shape[-1]
    s = (q @ (k.T if kt else k.transpose(-2, -1))) * (1 / math.sqrt(d) if scale is None else scale(d))
    if mask is not None and not after:
        s = s.masked_fill(~mask if keep_true else mask, fill)
    w = s.softmax(dim)
    if mask is not None and after:
        w = w * mask
    return w @ v, w


attempt("ch02.scaled_dot_product_attention", "no scale", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, scale=lambda d: 1.0),
        "divide q @ k^T by sqrt(d)")
attempt("ch02.scaled_dot_product_attention", "divides by d", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, scale=lambda d: 1 / d),
        "not 1 / d")
attempt("ch02.scaled_dot_product_attention", "mask True = ignore", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, keep_true=False),
        "True = keep")
attempt("ch02.scaled_dot_product_attention", "mask multiplied after the softmax",
        lambda q, k, v, mask=None: _sdpa(q, k, v, mask, after=True), "before the softmax",
        misleading=("take the softmax over the last dimension",))
attempt("ch02.scaled_dot_product_attention", "mask filled with 0", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, fill=0.0),
        "-inf")
attempt("ch02.scaled_dot_product_attention", "softmax over the queries", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, dim=-2),
        ("sum to one", "dim=-1"))
attempt("ch02.scaled_dot_product_attention", "k.T on batched heads", lambda q, k, v, mask=None: _sdpa(q, k, v, mask, kt=True),
        "transpose(-2, -1)")
attempt("ch02.scaled_dot_product_attention", "returns (weights, output)",
        lambda q, k, v, mask=None: tuple(reversed(_sdpa(q, k, v, mask))), "return output, weights")
attempt("ch02.scaled_dot_product_attention", "mask ignored", lambda q, k, v, mask=None: _sdpa(q, k, v, None),
        ("mask", "-inf"))


def _split(order):
    def split_heads(x, num_heads):
        B, N, C = x.shape
        return order(x, B, N, C, num_heads)
    return split_heads


attempt("ch02.split_heads", "reshape straight to (B, H, N, hd)", _split(lambda x, B, N, C, H: x.reshape(B, H, N, C // H)),
        "mixes tokens")
attempt("ch02.split_heads", "heads axis not moved", _split(lambda x, B, N, C, H: x.reshape(B, N, H, C // H)),
        "move the heads axis")
attempt("ch02.split_heads", "channels interleaved", _split(lambda x, B, N, C, H: x.reshape(B, N, C // H, H).permute(0, 3, 1, 2)),
        "contiguous block")
attempt("ch02.split_heads", "wrong axes transposed", _split(lambda x, B, N, C, H: x.reshape(B, N, H, C // H).transpose(2, 3)),
        "transpose(1, 2)")
attempt("ch02.split_heads", "heads axis first", _split(lambda x, B, N, C, H: x.reshape(B, N, H, C // H).permute(2, 0, 1, 3)),
        "(B, H, N, hd)")


def _merge(f):
    def merge_heads(x):
        B, H, N, hd = x.shape
        return f(x, B, H, N, hd)
    return merge_heads


attempt("ch02.merge_heads", "reshape without transpose", _merge(lambda x, B, H, N, hd: x.reshape(B, N, H * hd)),
        "mixes tokens")
attempt("ch02.merge_heads", ".view after transpose", _merge(lambda x, B, H, N, hd: x.transpose(1, 2).view(B, N, H * hd)),
        ".reshape()")
attempt("ch02.merge_heads", "(hd, H) order", _merge(lambda x, B, H, N, hd: x.permute(0, 2, 3, 1).reshape(B, N, H * hd)),
        "head 0's channels first")
attempt("ch02.merge_heads", "flattens heads and tokens", _merge(lambda x, B, H, N, hd: x.flatten(1, 2)),
        "flatten(1, 2)")
attempt("ch02.merge_heads", "adds the heads", _merge(lambda x, B, H, N, hd: x.sum(dim=1)), "concatenate")
attempt("ch02.merge_heads", "tokens last", _merge(lambda x, B, H, N, hd: x.reshape(B, H * hd, N)), "(B, N, H * hd)")


class _MHSABase(nn.Module):
    scale_by_dim = False
    merge_transposed = True
    use_proj = True
    softmax_dim = -1

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.reshape(B, N, H, C // H).transpose(1, 2) for t in (q, k, v))
        d = C if self.scale_by_dim else C // H
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=self.softmax_dim)
        out = w @ v
        out = out.transpose(1, 2).reshape(B, N, C) if self.merge_transposed else out.reshape(B, N, C)
        return self.proj(out) if self.use_proj else out


class MHSAMergeNoTranspose(_MHSABase):
    merge_transposed = False


class MHSAScaleByDim(_MHSABase):
    scale_by_dim = True


class MHSAProjUnused(_MHSABase):
    use_proj = False


class MHSASoftmaxQueries(_MHSABase):
    softmax_dim = -2


class MHSANoProj(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = (t.reshape(B, N, self.num_heads, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)


class MHSAPerHeadPacking(_MHSABase):
    def forward(self, x):
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = self.qkv(x).reshape(B, N, H, 3, C // H).permute(3, 0, 2, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


class MHSANoScale(_MHSABase):
    def forward(self, x):
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, C // H).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return self.proj(((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(B, N, C))


attempt("ch02.MultiHeadSelfAttention", "merges heads by reshape without transpose", MHSAMergeNoTranspose,
        "transpose(1, 2)", misleading=("qkv(x) packs", "scale by 1 / sqrt(head_dim)"))
attempt("ch02.MultiHeadSelfAttention", "scales by sqrt(dim)", MHSAScaleByDim, "sqrt(head_dim)")
attempt("ch02.MultiHeadSelfAttention", "never applies proj", MHSAProjUnused, "self.proj")
attempt("ch02.MultiHeadSelfAttention", "softmax over the queries", MHSASoftmaxQueries, "over the keys")
attempt("ch02.MultiHeadSelfAttention", "no output projection", MHSANoProj, "missing parameters ['proj.bias', 'proj.weight']")
attempt("ch02.MultiHeadSelfAttention", "qkv unpacked per head", MHSAPerHeadPacking, "[q; k; v]")
attempt("ch02.MultiHeadSelfAttention", "no scale", MHSANoScale, "sqrt(head_dim)")


# ======================================================================================================
# Chapter 3
# ======================================================================================================
attempt("ch03.spatial_weighting", "axis at the end", lambda features, attn_map: features * attn_map.unsqueeze(-1),
        "attn_map[:, None]")
attempt("ch03.spatial_weighting", "no channel axis", lambda features, attn_map: features * attn_map,
        "attn_map[:, None]")
attempt("ch03.spatial_weighting", "axis in front of the batch", lambda features, attn_map: features * attn_map.unsqueeze(0),
        "attn_map[:, None]")
attempt("ch03.spatial_weighting", "softmax over the map",
        lambda features, attn_map: features * attn_map.flatten(1).softmax(-1).reshape(attn_map.shape)[:, None],
        "renormalise")
attempt("ch03.spatial_weighting", "adds the map", lambda features, attn_map: features + attn_map[:, None], "multiply")
attempt("ch03.spatial_weighting", "sums over the channels", lambda features, attn_map: (features * attn_map[:, None]).sum(1),
        "keep the channels")
attempt("ch03.spatial_weighting", "sigmoid of the map", lambda features, attn_map: features * torch.sigmoid(attn_map)[:, None],
        "already weights")

attempt("ch03.channel_weighting", "weights over the width", lambda features, weights: features * weights[:, None, None, :],
        "weights[:, :, None, None]")
attempt("ch03.channel_weighting", "softmax of the weights", lambda features, weights: features * weights.softmax(-1)[:, :, None, None],
        "already weights")
attempt("ch03.channel_weighting", "one axis added", lambda features, weights: features * weights[:, :, None],
        "weights[:, :, None, None]")
attempt("ch03.channel_weighting", "sums the channels", lambda features, weights: (features * weights[:, :, None, None]).sum(1),
        "keep the channels")
attempt("ch03.channel_weighting", "adds the weights", lambda features, weights: features + weights[:, :, None, None], "multiply")
attempt("ch03.channel_weighting", "sigmoid of the weights",
        lambda features, weights: features * torch.sigmoid(weights)[:, :, None, None], "already weights")


def _psa(patches, *, scale=True, dim=-1, swap=False, only=False, t=False, by_d=False, softmax=True):
    D = patches.shape[-1]
    s = patches @ (patches.T if t else patches.transpose(-2, -1))
    if scale:
        s = s / (D if by_d else math.sqrt(D))
    w = s.softmax(dim) if softmax else s
    if only:
        return w @ patches
    return (w, w @ patches) if swap else (w @ patches, w)


attempt("ch03.patch_self_attention", "returns (weights, output)", lambda patches: _psa(patches, swap=True), "return output, weights")
attempt("ch03.patch_self_attention", "no scale", lambda patches: _psa(patches, scale=False), "1/sqrt(D)")
attempt("ch03.patch_self_attention", "softmax over dim -2", lambda patches: _psa(patches, dim=-2), ("sum to one", "dim=-1"))
attempt("ch03.patch_self_attention", "returns only the output", lambda patches: _psa(patches, only=True), "tuple")
attempt("ch03.patch_self_attention", "patches.T on a batch", lambda patches: _psa(patches, t=True), "transpose(-2, -1)")
attempt("ch03.patch_self_attention", "divides by D", lambda patches: _psa(patches, by_d=True), "sqrt(D), not D")
attempt("ch03.patch_self_attention", "forgets the softmax", lambda patches: _psa(patches, softmax=False), "softmax")


def _ent(f):
    def attention_entropy(attn_map):
        return f(attn_map.flatten(1))
    return attention_entropy


attempt("ch03.attention_entropy", "does not normalise", _ent(lambda p: -(p * torch.log(p.clamp_min(1e-12))).sum(1)),
        "divide each map by its sum")
attempt("ch03.attention_entropy", "0 * log(0) = NaN", _ent(lambda p: -((p / p.sum(1, keepdim=True)) * (p / p.sum(1, keepdim=True)).log()).sum(1)),
        "0 * log(0)")
attempt("ch03.attention_entropy", "log base 2", _ent(lambda p: -torch.special.xlogy(p / p.sum(1, keepdim=True), p / p.sum(1, keepdim=True)).sum(1) / math.log(2)),
        "natural logarithm")
attempt("ch03.attention_entropy", "softmax normalisation", _ent(lambda p: -torch.special.xlogy(p.softmax(1), p.softmax(1)).sum(1)),
        "divide the map by its sum")
attempt("ch03.attention_entropy", "no minus sign", _ent(lambda p: torch.special.xlogy(p / p.sum(1, keepdim=True), p / p.sum(1, keepdim=True)).sum(1)),
        "minus sign")
attempt("ch03.attention_entropy", "per row", lambda attn_map: -torch.special.xlogy(attn_map / attn_map.sum(-1, keepdim=True), attn_map / attn_map.sum(-1, keepdim=True)).sum(-1),
        "flatten each map")
attempt("ch03.attention_entropy", "divides by the max", _ent(lambda p: -torch.special.xlogy(p / p.amax(1, keepdim=True), p / p.amax(1, keepdim=True)).sum(1)),
        "by its sum")


# ======================================================================================================
# Chapter 4
# ======================================================================================================
attempt("ch04.squeeze", "max pooling", lambda x: x.amax(dim=(2, 3)), "not a max")
attempt("ch04.squeeze", "sum pooling", lambda x: x.sum(dim=(2, 3)), "sum", misleading=("max pooling", "not a max"))
attempt("ch04.squeeze", "mean over the channels", lambda x: x.mean(dim=1), "over the channels")
attempt("ch04.squeeze", "keeps the 1 x 1 axes", lambda x: x.mean(dim=(2, 3), keepdim=True), "keepdim")
attempt("ch04.squeeze", "wrong axes", lambda x: x.mean(dim=(1, 2)), "dim=(2, 3)")
attempt("ch04.squeeze", "width only", lambda x: x.mean(dim=-1), "dim=(2, 3)")
attempt("ch04.squeeze", ".squeeze() drops the batch", lambda x: x.mean(dim=(2, 3), keepdim=True).squeeze(), "squeeze()")


def _exc(f):
    def excitation(z, w1, b1, w2, b2):
        return f(z, w1, b1, w2, b2)
    return excitation


attempt("ch04.excitation", "no ReLU", _exc(lambda z, w1, b1, w2, b2: torch.sigmoid((z @ w1.T + b1) @ w2.T + b2)), "no ReLU")
attempt("ch04.excitation", "no b2", _exc(lambda z, w1, b1, w2, b2: torch.sigmoid(F.relu(z @ w1.T + b1) @ w2.T)), "b2 is missing")
attempt("ch04.excitation", "no b1", _exc(lambda z, w1, b1, w2, b2: torch.sigmoid(F.relu(z @ w1.T) @ w2.T + b2)), "b1 is missing")
attempt("ch04.excitation", "no sigmoid", _exc(lambda z, w1, b1, w2, b2: F.relu(z @ w1.T + b1) @ w2.T + b2), "torch.sigmoid")
attempt("ch04.excitation", "softmax", _exc(lambda z, w1, b1, w2, b2: F.softmax(F.relu(z @ w1.T + b1) @ w2.T + b2, dim=1)),
        "independent sigmoids")
attempt("ch04.excitation", "untransposed weights", _exc(lambda z, w1, b1, w2, b2: torch.sigmoid(F.relu(z @ w1 + b1) @ w2 + b2)),
        "w1.T")
attempt("ch04.excitation", "extra ReLU after layer 2",
        _exc(lambda z, w1, b1, w2, b2: torch.sigmoid(F.relu(F.relu(z @ w1.T + b1) @ w2.T + b2))), "after the second layer",
        misleading=("cut to zero by the ReLU",))
attempt("ch04.excitation", "sigmoid in the middle",
        _exc(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.sigmoid(z @ w1.T + b1) @ w2.T + b2)), "relu")


class SEMax(ref4.SEBlock):
    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3), keepdim=True)))))


class SEWeights(ref4.SEBlock):
    def forward(self, x):
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))


class SEInPlace(ref4.SEBlock):
    def forward(self, x):
        x *= torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x


class SENoSigmoid(ref4.SEBlock):
    def forward(self, x):
        return x * self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True))))


class SENoRelu(ref4.SEBlock):
    def forward(self, x):
        return x * torch.sigmoid(self.fc2(self.fc1(x.mean(dim=(2, 3), keepdim=True))))


class SENoBias(ref4.SEBlock):
    def __init__(self, channels, reduction=16):
        super().__init__(channels, reduction)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)


class SELinear(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))[:, :, None, None]


attempt("ch04.SEBlock", "max squeeze", SEMax, "not a max")
attempt("ch04.SEBlock", "returns the weights", SEWeights, "x * w")
attempt("ch04.SEBlock", "scales in place", SEInPlace, "changed its input `x` in place")
attempt("ch04.SEBlock", "no sigmoid", SENoSigmoid, "torch.sigmoid")
attempt("ch04.SEBlock", "no ReLU", SENoRelu, "relu")
attempt("ch04.SEBlock", "convolutions without bias", SENoBias, "missing parameters ['fc1.bias', 'fc2.bias']")
attempt("ch04.SEBlock", "nn.Linear layers", SELinear, "nn.Conv2d(..., kernel_size=1)")


def _ablation(gates_fn, *, ablate=lambda g: torch.ones_like(g), count=False, tensors=False, order=False):
    def se_ablation(features, labels, params):
        z = features.mean(dim=(2, 3))
        gates = gates_fn(z, params)

        def accuracy(g):
            logits = (features * g[:, :, None, None]).mean(dim=(2, 3)) @ params["head_w"].T + params["head_b"]
            right = (logits.argmax(dim=1) == labels).sum()
            if count:
                return right.item()
            acc = right.float() / len(labels)
            return acc if tensors else acc.item()
        out = (accuracy(gates), accuracy(ablate(gates)))
        return out[::-1] if order else out
    return se_ablation


def _gates(z, p):
    return torch.sigmoid(F.relu(z @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"])


attempt("ch04.se_ablation", "gates set to 0", _ablation(_gates, ablate=torch.zeros_like), "replace every gate by 1")
attempt("ch04.se_ablation", "gates set to 0.5", _ablation(_gates, ablate=lambda g: torch.full_like(g, 0.5)), "0.5",
        misleading=("a gate of 0 silences",))
attempt("ch04.se_ablation", "counts instead of fractions", _ablation(_gates, count=True), "divide the number of correct")
attempt("ch04.se_ablation", "returns tensors", _ablation(_gates, tensors=True), ".item()")
attempt("ch04.se_ablation", "returns (ablated, with SE)", _ablation(_gates, order=True), "the order is (accuracy with SE")
attempt("ch04.se_ablation", "no sigmoid on the gates",
        _ablation(lambda z, p: F.relu(z @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"]), "sigmoid(...)")
attempt("ch04.se_ablation", "no ReLU in the gates",
        _ablation(lambda z, p: torch.sigmoid((z @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"])), "relu")
attempt("ch04.se_ablation", "never ablates", _ablation(_gates, ablate=lambda g: g), "the same accuracy twice")


# ======================================================================================================
# Chapter 5
# ======================================================================================================
def _ca(f):
    def channel_attention(x, w1, w2):
        def mlp(v):
            return F.relu(v @ w1.T) @ w2.T
        return f(x, mlp)
    return channel_attention


attempt("ch05.channel_attention", "average only", _ca(lambda x, mlp: torch.sigmoid(mlp(x.mean(dim=(2, 3))))), "max-pooled")
attempt("ch05.channel_attention", "max only", _ca(lambda x, mlp: torch.sigmoid(mlp(x.amax(dim=(2, 3))))), "average-pooled")
attempt("ch05.channel_attention", "sigmoid per branch",
        _ca(lambda x, mlp: torch.sigmoid(mlp(x.mean(dim=(2, 3)))) + torch.sigmoid(mlp(x.amax(dim=(2, 3))))), "one sigmoid")
attempt("ch05.channel_attention", "adds the descriptors first",
        _ca(lambda x, mlp: torch.sigmoid(mlp(x.mean(dim=(2, 3)) + x.amax(dim=(2, 3))))), "each descriptor through the MLP")
attempt("ch05.channel_attention", "no ReLU",
        lambda x, w1, w2: torch.sigmoid(x.mean(dim=(2, 3)) @ w1.T @ w2.T + x.amax(dim=(2, 3)) @ w1.T @ w2.T), "relu")
attempt("ch05.channel_attention", "x.max over two dims", _ca(lambda x, mlp: torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.max(dim=(2, 3))))),
        "amax")
attempt("ch05.channel_attention", "weights not transposed",
        lambda x, w1, w2: torch.sigmoid(F.relu(x.mean(dim=(2, 3)) @ w1) @ w2 + F.relu(x.amax(dim=(2, 3)) @ w1) @ w2),
        "w1.T")


def _sp(f):
    def spatial_map(x, weight, bias):
        return f(x, weight, bias)
    return spatial_map


def _pool(x, order="mean_max", how="mean"):
    a = x.mean(dim=1, keepdim=True) if how == "mean" else x.sum(dim=1, keepdim=True)
    m = x.amax(dim=1, keepdim=True)
    return torch.cat([a, m] if order == "mean_max" else [m, a], dim=1)


attempt("ch05.spatial_map", "[max, mean] order",
        _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x, "max_mean"), w, b, padding=w.shape[-1] // 2))[:, 0]), "[mean, max]")
attempt("ch05.spatial_map", "no padding", _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x), w, b))[:, 0]), "padding")
attempt("ch05.spatial_map", "keeps the channel axis",
        _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x), w, b, padding=w.shape[-1] // 2))), "[:, 0]")
attempt("ch05.spatial_map", "forgets the bias",
        _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x), w, padding=w.shape[-1] // 2))[:, 0]), "bias",
        misleading=("[mean, max] (paper, timm)", "padding k // 2 keeps"))
attempt("ch05.spatial_map", "sum instead of mean",
        _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x, how="sum"), w, b, padding=w.shape[-1] // 2))[:, 0]), "mean over the channels")
attempt("ch05.spatial_map", "no sigmoid", _sp(lambda x, w, b: F.conv2d(_pool(x), w, b, padding=w.shape[-1] // 2)[:, 0]),
        "torch.sigmoid", misleading=("two MLP outputs",))
attempt("ch05.spatial_map", "padding 3 for every kernel",
        _sp(lambda x, w, b: torch.sigmoid(F.conv2d(_pool(x), w, b, padding=3))[:, 0]), "k // 2")


class CBAMSpatialFirst(ref5.CBAMBlock):
    def forward(self, x):
        x = x * torch.sigmoid(self.conv(_pool(x)))
        mc = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))) + self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3))))))
        return x * mc[:, :, None, None]


class CBAMSpatialOnInput(ref5.CBAMBlock):
    def forward(self, x):
        mc = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))) + self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3))))))
        return x * mc[:, :, None, None] * torch.sigmoid(self.conv(_pool(x)))


class CBAMNoPadding(ref5.CBAMBlock):
    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__(channels, reduction, kernel_size)
        self.conv = nn.Conv2d(2, 1, kernel_size)


class CBAMChannelOnly(ref5.CBAMBlock):
    def forward(self, x):
        mc = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))) + self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3))))))
        return x * mc[:, :, None, None]


class CBAMMaxMean(ref5.CBAMBlock):
    def forward(self, x):
        mc = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))) + self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3))))))
        x = x * mc[:, :, None, None]
        return x * torch.sigmoid(self.conv(_pool(x, "max_mean")))


class CBAMWithBias(ref5.CBAMBlock):
    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__(channels, reduction, kernel_size)
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)


class CBAMTwoSigmoids(ref5.CBAMBlock):
    def forward(self, x):
        mc = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))) + torch.sigmoid(self.fc2(F.relu(self.fc1(x.amax(dim=(2, 3))))))
        x = x * mc[:, :, None, None]
        return x * torch.sigmoid(self.conv(_pool(x)))


attempt("ch05.CBAMBlock", "spatial first", CBAMSpatialFirst, "channel attention comes first")
attempt("ch05.CBAMBlock", "spatial map on the input", CBAMSpatialOnInput, "refined")
attempt("ch05.CBAMBlock", "no padding", CBAMNoPadding, "padding")
attempt("ch05.CBAMBlock", "forgets the spatial step", CBAMChannelOnly, "spatial step")
attempt("ch05.CBAMBlock", "[max, mean] order", CBAMMaxMean, "[mean, max]")
attempt("ch05.CBAMBlock", "MLP with biases", CBAMWithBias, "unexpected parameters ['fc1.bias', 'fc2.bias']")
attempt("ch05.CBAMBlock", "one sigmoid per branch", CBAMTwoSigmoids, "one sigmoid")


def _order(*, spatial_first_on="input", score="maps", gap_den="cf", tensors=False, swap=False, gap_item=True):
    def cbam_order_gap(x, w1, w2, conv_w, conv_b, masks):
        def gates(t):
            def mlp(v):
                return F.relu(v @ w1.T) @ w2.T
            return torch.sigmoid(mlp(t.mean(dim=(2, 3))) + mlp(t.amax(dim=(2, 3))))[:, :, None, None]

        def spatial(t):
            return torch.sigmoid(F.conv2d(_pool(t), conv_w, conv_b, padding=conv_w.shape[-1] // 2))

        def pointing(m):
            peak = m.flatten(1).argmax(dim=1)
            hits = masks.flatten(1)[torch.arange(len(peak)), peak].float().mean()
            return hits if tensors else hits.item()

        y = x * gates(x)
        map_cf = spatial(y)
        out_cf = y * map_cf
        map_sf = spatial(x if spatial_first_on == "input" else y)
        z = x * map_sf
        out_sf = z * gates(z)
        if score == "outputs":
            s_cf, s_sf = pointing(out_cf.mean(1, keepdim=True)), pointing(out_sf.mean(1, keepdim=True))
        else:
            s_cf, s_sf = pointing(map_cf), pointing(map_sf)
        gap = (out_cf - out_sf).norm() / (out_cf if gap_den == "cf" else out_sf).norm() if gap_den != "abs" else \
            (out_cf - out_sf).norm()
        gap = gap.item() if gap_item else gap
        return (s_sf, s_cf, gap) if swap else (s_cf, s_sf, gap)
    return cbam_order_gap


attempt("ch05.cbam_order_gap", "one map for both orders", _order(spatial_first_on="refined"), "raw input x")
attempt("ch05.cbam_order_gap", "scores the outputs", _order(score="outputs"), "score the spatial maps, not the outputs",
        partly=("output[0] is", "output[1] is"), misleading=("computed on the raw input x, before any channel gate",),
        expect="partly")
attempt("ch05.cbam_order_gap", "gap not divided", _order(gap_den="abs"), "relative")
attempt("ch05.cbam_order_gap", "gap divided by the swapped output", _order(gap_den="sf"), "/ ||out_cf||")
attempt("ch05.cbam_order_gap", "returns tensors", _order(tensors=True, gap_item=False), ".item()")
attempt("ch05.cbam_order_gap", "scores swapped", _order(swap=True), "(score of map_cf, score of map_sf")


# ======================================================================================================
# Chapter 6
# ======================================================================================================
def _count(f):
    def count_patches(img_size, patch_size, in_chans=3):
        return f(img_size, patch_size, in_chans)
    return count_patches


attempt("ch06.count_patches", "/ gives floats", _count(lambda s, p, c: ((s / p) ** 2, p * p * c, (s / p) ** 2 + 1)), "//")
attempt("ch06.count_patches", "one side only", _count(lambda s, p, c: (s // p, p * p * c, s // p + 1)), "per side")
attempt("ch06.count_patches", "forgets the channels", _count(lambda s, p, c: ((s // p) ** 2, p * p, (s // p) ** 2 + 1)), "in_chans")
attempt("ch06.count_patches", "forgets [CLS]", _count(lambda s, p, c: ((s // p) ** 2, p * p * c, (s // p) ** 2)), "[CLS]")
attempt("ch06.count_patches", "returns the count only", _count(lambda s, p, c: (s // p) ** 2), "tuple of three integers")
attempt("ch06.count_patches", "in_chans defaults to 1",
        lambda img_size, patch_size, in_chans=1: ((img_size // patch_size) ** 2, patch_size ** 2 * in_chans,
                                                  (img_size // patch_size) ** 2 + 1), "in_chans=3")


def _pf(perm, *, square=False, keep_grid=False):
    def patchify(images, patch_size):
        B, C, H, W = images.shape
        P = patch_size
        W2 = H if square else W
        x = images.reshape(B, C, H // P, P, W2 // P, P).permute(*perm)
        if keep_grid:
            return x.reshape(B, H // P, W2 // P, C * P * P)
        return x.reshape(B, -1, C * P * P)
    return patchify


attempt("ch06.patchify", "reshape without permute",
        lambda images, patch_size: images.reshape(images.shape[0], -1, images.shape[1] * patch_size ** 2), "permute")
attempt("ch06.patchify", "channel last", _pf((0, 2, 4, 3, 5, 1)), "channel first")
attempt("ch06.patchify", "returns (B, C*P*P, N)",
        lambda images, patch_size: ref6.patchify(images, patch_size).transpose(1, 2), "patches should be along dim 1")
attempt("ch06.patchify", "patches column by column", _pf((0, 4, 2, 1, 3, 5)), "row by row")
attempt("ch06.patchify", "pixels column by column", _pf((0, 2, 4, 1, 5, 3)), "row by row")
attempt("ch06.patchify", "assumes a square image", _pf((0, 2, 4, 1, 3, 5), square=True), "W // P")
attempt("ch06.patchify", "keeps the grid", _pf((0, 2, 4, 1, 3, 5), keep_grid=True), "(B, N, C*P*P)")


def _emb(*, cls_last=False, pos=True, pos_cls=True, bias=True, expand=True, stride=True, transpose=True):
    def embed_patches(images, proj_weight, proj_bias, cls_token, pos_embed):
        P = proj_weight.shape[-1]
        t = F.conv2d(images, proj_weight, proj_bias if bias else None, stride=P if stride else 1).flatten(2)
        t = t.transpose(1, 2) if transpose else t
        cls = cls_token.expand(images.shape[0], -1, -1) if expand else cls_token
        if pos and not pos_cls:
            t = t + pos_embed[:, 1:]
        x = torch.cat([t, cls] if cls_last else [cls, t], dim=1)
        return x + pos_embed if pos and pos_cls else x
    return embed_patches


attempt("ch06.embed_patches", "no positions", _emb(pos=False), "add pos_embed to every token")
attempt("ch06.embed_patches", "[CLS] last", _emb(cls_last=True), "should come first")
attempt("ch06.embed_patches", "positions on the patches only", _emb(pos_cls=False), "[CLS] included")
attempt("ch06.embed_patches", "no bias", _emb(bias=False), "bias")
attempt("ch06.embed_patches", "[CLS] not expanded", _emb(expand=False), "expand")
attempt("ch06.embed_patches", "convolution without stride", _emb(stride=False), "stride")
attempt("ch06.embed_patches", "no transpose", _emb(transpose=False), "transpose(1, 2)")


class EBTanh(ref6.EncoderBlock):
    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x)), approximate="tanh"))


class EBPostNorm(ref6.EncoderBlock):
    def forward(self, x):
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](x))))


class EBNoResidual(ref6.EncoderBlock):
    def forward(self, x):
        x = self.attention(self.norm1(x))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class EBNoMlpResidual(ref6.EncoderBlock):
    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class EBRelu(ref6.EncoderBlock):
    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp["fc2"](F.relu(self.mlp["fc1"](self.norm2(x))))


class EBEps(ref6.EncoderBlock):
    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__(dim, num_heads, mlp_ratio)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)


class EBUnscaled(ref6.EncoderBlock):
    def attention(self, x):
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = self.attn["qkv"](x).reshape(B, N, 3, H, C // H).permute(2, 0, 3, 1, 4).unbind(0)
        return self.attn["proj"]((torch.softmax(q @ k.transpose(-2, -1), -1) @ v).transpose(1, 2).reshape(B, N, C))


class EBRenamed(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


attempt("ch06.EncoderBlock", "tanh GELU", EBTanh, "tanh", misleading=("hidden width is int(dim * mlp_ratio)",))
attempt("ch06.EncoderBlock", "post-norm", EBPostNorm, "pre-norm")
attempt("ch06.EncoderBlock", "no residual around the attention", EBNoResidual, "residual around the attention")
attempt("ch06.EncoderBlock", "no residual around the MLP", EBNoMlpResidual, "residual around the MLP")
attempt("ch06.EncoderBlock", "ReLU", EBRelu, "GELU")
attempt("ch06.EncoderBlock", "default eps", EBEps, "eps=1e-6")
attempt("ch06.EncoderBlock", "no scale", EBUnscaled, "sqrt(head_dim)")
attempt("ch06.EncoderBlock", "other names", EBRenamed, "missing parameters")


def _train(*, zero_grad=True, step=True, dim=-1, weights_after=True, as_list=False, optim="sgd", in_place=False,
           loss_after=False):
    def train_attention_pool(tokens, labels, init, steps, lr):
        if in_place:
            query, head_w, head_b = (init[k].requires_grad_() for k in ("query", "head_w", "head_b"))
        else:
            query, head_w, head_b = (init[k].clone().requires_grad_() for k in ("query", "head_w", "head_b"))
        opt = (torch.optim.SGD if optim == "sgd" else torch.optim.Adam)([query, head_w, head_b], lr=lr)
        before = torch.softmax(tokens @ query, dim=dim).detach()
        losses = []

        def loss_fn():
            pooled = (torch.softmax(tokens @ query, dim=dim)[..., None] * tokens).sum(1)
            return F.cross_entropy(pooled @ head_w.T + head_b, labels)
        for _ in range(steps):
            loss = loss_fn()
            if zero_grad:
                opt.zero_grad()
            loss.backward()
            if step:
                opt.step()
            losses.append(loss_fn().item() if loss_after else loss.item())
        with torch.no_grad():
            w = torch.softmax(tokens @ query, dim=dim) if weights_after else before
        return w, (losses if as_list else torch.tensor(losses))
    return train_attention_pool


attempt("ch06.train_attention_pool", "no zero_grad", _train(zero_grad=False), "optimizer.zero_grad()")
attempt("ch06.train_attention_pool", "no step", _train(step=False), "optimizer.step()")
attempt("ch06.train_attention_pool", "softmax over the batch", _train(dim=0), "over the tokens")
attempt("ch06.train_attention_pool", "weights from before training", _train(weights_after=False), "after the loop")
attempt("ch06.train_attention_pool", "losses as a list", _train(as_list=True), "torch.tensor(losses)")
attempt("ch06.train_attention_pool", "Adam instead of SGD", _train(optim="adam"), "SGD")
attempt("ch06.train_attention_pool", "trains init's own tensors", _train(in_place=True), "changed its input `init['query']` in place")
attempt("ch06.train_attention_pool", "loss recorded after the update", _train(loss_after=True), "before its update")


# -- forbidden shortcuts: a pass with a note, never a zero (not counted among the mistakes) ----------------
def _sm_library(scores):
    return torch.softmax(scores, dim=-1)


def _pf_unfold(images, patch_size):
    return F.unfold(images, patch_size, stride=patch_size).transpose(1, 2)


SHORTCUTS: list[tuple[str, Any, str]] = [
    ("ch01.softmax_weights", _sm_library, "torch.softmax"),
    ("ch01.softmax_weights", lambda scores: F.softmax(scores, dim=-1), "torch.softmax"),
    ("ch06.patchify", _pf_unfold, "F.unfold"),
]

def counts(results: Optional[dict] = None, chapters: Optional[list[str]] = None) -> dict[str, dict[str, int]]:
    """``{chapter: {kind: n}}`` over the suite (runs every attempt, or those of ``chapters``); ``results``
    receives ``{(exercise, label): (kind, feedback)}``."""
    table: dict[str, dict[str, int]] = {}
    for a in SUITE:
        if chapters and a.exercise.split(".")[0] not in chapters:
            continue
        result, text = feedback(a)
        kind = classify(a, result, text)
        if results is not None:
            results[(a.exercise, a.label)] = (kind, text)
        row = table.setdefault(a.exercise.split(".")[0], dict.fromkeys(KINDS, 0))
        row[kind] += 1
    return table
