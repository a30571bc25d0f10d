"""Chapter 2 exercises: self-attention.

1. ``scaled_dot_product_attention``: softmax(q k^T / sqrt(d)) v, with an optional boolean mask (True = keep).
2. ``split_heads``: ``(B, N, C) -> (B, H, N, C // H)``.
3. ``merge_heads``: ``(B, H, N, hd) -> (B, N, H * hd)``, the inverse.
4. ``MultiHeadSelfAttention``: the whole layer as an ``nn.Module`` with submodules ``self.qkv`` and ``self.proj``.

How answers are run: ``.check`` runs the answer in the notebook, so it may call the functions of your earlier
exercises (your ``split_heads`` in ``MultiHeadSelfAttention``, say). The batch grader does the same: it runs
all your exercise cells together, in order, in one namespace, with ``math``, ``torch``, ``nn`` and ``F``
available, but without the chapter's other cells and without ``course_pkg``. So an answer may use ``math``,
``torch``, ``nn``, ``F`` and your own earlier exercise answers, and nothing else from the notebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .core import Case, CheckFailure, Exercise, Mistake, check_rows_sum_to_one, swapped_pair_hint
from .registry import register
from .solutions import ch02 as ref


# -- properties checked before the comparison, for clearer feedback -------------------------------------
def _weights_sum_to_one(out: object, args: tuple) -> None:
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        return  # the comparison explains what the output should be
    keep = args[3] if len(args) > 3 else None
    w = out[1]
    if keep is not None and isinstance(w, torch.Tensor) and w.is_floating_point() and torch.isfinite(w).all() \
            and w.shape == torch.broadcast_shapes(w.shape, keep.shape):
        hidden = w.masked_select(~keep.expand_as(w))
        sums = w.sum(dim=-1)
        if hidden.numel() and (hidden.abs() <= 1e-6).all() and not torch.allclose(sums, torch.ones_like(sums),
                                                                                    atol=1e-4):
            bad = (sums - 1).abs().flatten().argmax()
            raise CheckFailure(f"the pairs the mask hides get zero weight, but the rows no longer sum to one (one "
                               f"sums to {sums.flatten()[bad].item():.3g}): the mask was applied after the softmax. "
                               "Fill the hidden scores with -inf before the softmax, scores.masked_fill(~mask, "
                               "float('-inf')), so the kept keys share the whole weight of the row.")
    check_rows_sum_to_one(w, "each row of weights (one query) should sum to one over the keys",
                          "Take the softmax over the last dimension, the keys (dim=-1).")


def _masked_weights_are_zero(out: object, args: tuple) -> None:
    if len(args) < 4 or args[3] is None or not (isinstance(out, (tuple, list)) and len(out) == 2):
        return
    w, keep = out[1], args[3]
    if isinstance(w, torch.Tensor) and w.shape == torch.broadcast_shapes(w.shape, keep.shape):
        hidden = w.masked_select(~keep.expand_as(w))
        if hidden.numel() and (hidden.abs() > 1e-6).any():
            raise CheckFailure("some pairs the mask hides (mask False) still get weight. In this course a "
                               "boolean mask is True = keep, as in F.scaled_dot_product_attention: fill the "
                               "scores where the mask is False with -inf before the softmax.")


def _causal(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


def _padding(lengths: list[int], n: int) -> torch.Tensor:
    keep = torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]  # (B, N): True for real tokens
    return keep[:, None, None, :]                                      # (B, 1, 1, N): broadcasts over heads, queries


# -- 1. scaled dot-product attention ---------------------------------------------------------------------
def _no_scale(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1)
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def _inverted_mask(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def _mask_after_softmax(q, k, v, mask=None):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
    if mask is not None:
        w = w * mask
    return w @ v, w


def _divide_by_d(q, k, v, mask=None):
    s = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def _k_dot_T(q, k, v, mask=None):
    s = q @ k.T / math.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    w = s.softmax(-1)
    return w @ v, w


def _softmax_over_queries(q, k, v, mask=None):
    w = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-2)
    return w @ v, w


scaled_dot_product_attention = register(Exercise(
    id="ch02.scaled_dot_product_attention",
    title="Scaled dot-product attention with a mask",
    reference=ref.scaled_dot_product_attention,
    cases=[
        Case("one query, three keys",
             lambda: (torch.tensor([[1.0, 0.0, 1.0, 0.0]]), torch.eye(3, 4), torch.tensor([[1.0], [2.0], [3.0]])),
             "scores are q . k divided by sqrt(d) with d = 4, the width of q and k"),
        Case("a batch of heads", lambda: (torch.randn(2, 3, 5, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 4)),
             "leading dimensions (batch, heads) pass through: transpose only the last two dimensions of k"),
        Case("causal mask", lambda: (torch.randn(2, 6, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3), _causal(6)),
             "a bool mask keeps the pairs where it is True (True = keep, as in F.scaled_dot_product_attention); "
             "with a causal mask query i sees keys 0..i only"),
        Case("padding mask", lambda: (torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 3),
                                      _padding([5, 3], 5)),
             "a (B, 1, 1, N) mask broadcasts over heads and queries: padded keys (False) get zero weight"),
        Case("large scores", lambda: (30 * torch.randn(4, 16), 30 * torch.randn(6, 16), torch.randn(6, 2)),
             "large scores must not overflow: torch.softmax is stable, a hand-written exp() needs the max subtracted"),
    ],
    hints=[
        "Four steps: scores = q @ k^T, divide by sqrt(d) (d = q.shape[-1]), softmax over the keys, weights @ v. "
        "Return the tuple (output, weights).",
        "With batches of heads, k.T would reverse every dimension: use k.transpose(-2, -1). "
        "The softmax runs over the last dimension: torch.softmax(scores, dim=-1).",
        "For the mask: scores = scores.masked_fill(~mask, float('-inf')) before the softmax; exp(-inf) = 0, so "
        "hidden keys get exactly zero weight. Remember True = keep, so it is ~mask that is filled.",
    ],
    shape_hints=[swapped_pair_hint(ref.scaled_dot_product_attention)],
    properties=[_weights_sum_to_one, _masked_weights_are_zero],
    mistakes=[
        Mistake(_no_scale, "values differ", "forgets to divide by sqrt(d)",
                "the scores are not scaled: divide q @ k^T by sqrt(d), d = q.shape[-1], before the softmax."),
        Mistake(lambda q, k, v, mask=None: tuple(reversed(ref.scaled_dot_product_attention(q, k, v, mask))),
                "order is (output, weights)", "returns (weights, output)"),
        Mistake(_inverted_mask, "True = keep", "uses nn.MultiheadAttention's mask convention (True = ignore)",
                "you hide the pairs where the mask is True; in this course (as in F.scaled_dot_product_attention) "
                "True = keep: fill the scores where ~mask with -inf."),
        Mistake(_softmax_over_queries, "sum to one", "softmax over the queries",
                "the softmax runs over the queries (dim=-2); each query's weights sum to one over the keys: "
                "softmax(..., dim=-1)."),
        Mistake(lambda q, k, v, mask=None: torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v,
                "tuple", "returns only the output", "return a tuple (output, weights), not the output alone."),
        Mistake(_mask_after_softmax, "after the softmax", "multiplies the weights by the mask after the softmax",
                "the mask is applied after the softmax, so the rows no longer sum to one; fill the hidden scores "
                "with -inf before the softmax: scores.masked_fill(~mask, float('-inf'))."),
        Mistake(_divide_by_d, "values differ", "divides the scores by d instead of sqrt(d)",
                "the scale is 1 / sqrt(d), not 1 / d: divide q @ k^T by math.sqrt(q.shape[-1])."),
        Mistake(_k_dot_T, "raised", "k.T on batched tensors",
                "k.T reverses every dimension of a batched k; transpose only the last two: k.transpose(-2, -1)."),
    ],
))


# -- 2. and 3. splitting and merging heads ---------------------------------------------------------------
def _split_without_transpose(x, num_heads):
    B, N, C = x.shape
    return x.reshape(B, num_heads, N, C // num_heads)


split_heads = register(Exercise(
    id="ch02.split_heads",
    title="Split the channels into heads",
    reference=ref.split_heads,
    cases=[
        Case("channels 0..7, two heads", lambda: (torch.arange(8.0).reshape(1, 1, 8), 2),
             "head 0 gets channels 0..3 and head 1 channels 4..7 of every token"),
        Case("three tokens, four heads", lambda: (torch.arange(48.0).reshape(1, 3, 16), 4),
             "output (B, H, N, C // H): the heads axis comes before the tokens axis"),
        Case("a batch", lambda: (torch.randn(2, 5, 24), 3), "every sample of the batch is split the same way"),
    ],
    hints=[
        "Each head owns a contiguous block of C // H channels: channel c belongs to head c // (C // H).",
        "First x.reshape(B, N, H, C // H) splits the last axis, then move the heads axis before the tokens.",
        "return x.reshape(B, N, H, C // H).transpose(1, 2)",
    ],
    mistakes=[
        Mistake(_split_without_transpose, "values differ", "reshapes straight to (B, H, N, hd): mixes tokens",
                "reshaping straight to (B, H, N, hd) mixes tokens: a head's rows then hold pieces of several "
                "tokens. Reshape to (B, N, H, C // H) first, then transpose(1, 2)."),
        Mistake(lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1), "expected shape",
                "forgets to move the heads axis",
                "(B, N, H, hd) is half way: move the heads axis before the tokens with transpose(1, 2)."),
        Mistake(lambda x, h: x.reshape(x.shape[0], x.shape[1], -1, h).permute(0, 3, 1, 2), "values differ",
                "interleaves the channels",
                "each head owns a contiguous block of C // H channels (head 0: channels 0 to hd - 1); reshaping "
                "to (B, N, hd, H) deals the channels out one by one. Reshape to (B, N, H, C // H), then "
                "transpose(1, 2)."),
        Mistake(lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1).transpose(2, 3), "expected shape",
                "transposes the last two axes",
                "transpose(2, 3) swaps the heads and the channels; the heads axis must move before the tokens: "
                "transpose(1, 2)."),
        Mistake(lambda x, h: x.reshape(x.shape[0], x.shape[1], h, -1).permute(2, 0, 1, 3), "expected shape",
                "puts the heads axis first",
                "the batch stays first: the output is (B, H, N, hd), so transpose(1, 2) (not a permute that "
                "puts the heads before the batch)."),
    ],
))


def _merge_with_view(x):
    B, H, N, hd = x.shape
    return x.transpose(1, 2).view(B, N, H * hd)


merge_heads = register(Exercise(
    id="ch02.merge_heads",
    title="Concatenate the heads again",
    reference=ref.merge_heads,
    cases=[
        Case("two heads, one token", lambda: (torch.arange(8.0).reshape(1, 2, 1, 4),),
             "the output token is head 0's channels followed by head 1's"),
        Case("undo split_heads", lambda: (ref.split_heads(torch.arange(48.0).reshape(1, 3, 16), 4),),
             "merge_heads(split_heads(x, H)) must give back x exactly"),
        Case("a batch", lambda: (torch.randn(2, 3, 5, 8),), "(B, H, N, hd) -> (B, N, H * hd)"),
    ],
    hints=[
        "This is split_heads backwards: first bring the tokens axis before the heads axis, then join the last two.",
        "x.transpose(1, 2) gives (B, N, H, hd). It is no longer contiguous in memory, so .view() refuses; "
        "use .reshape() (or .contiguous().view()).",
        "B, H, N, hd = x.shape; return x.transpose(1, 2).reshape(B, N, H * hd)",
    ],
    mistakes=[
        Mistake(lambda x: x.reshape(x.shape[0], x.shape[2], -1), "values differ",
                "reshapes without the transpose: mixes tokens",
                "reshaping (B, H, N, hd) straight to (B, N, H * hd) mixes tokens: bring the tokens axis before "
                "the heads first, x.transpose(1, 2), then reshape."),
        Mistake(_merge_with_view, "RuntimeError", ".view() on the transposed (non-contiguous) tensor",
                ".view() refuses the transposed tensor, which is not contiguous in memory: use .reshape() "
                "(or .contiguous().view())."),
        Mistake(lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1), "values differ",
                "joins (hd, H) instead of (H, hd)",
                "each output token must hold head 0's channels first, then head 1's: transpose(1, 2) gives "
                "(B, N, H, hd) and the last two axes join in that order; permuting to (B, N, hd, H) interleaves "
                "the heads."),
        Mistake(lambda x: x.flatten(1, 2), "expected shape", "flattens the heads and the tokens together",
                "flatten(1, 2) joins the heads and the tokens, giving (B, H * N, hd); join the heads and the "
                "channels instead: x.transpose(1, 2).reshape(B, N, H * hd)."),
        Mistake(lambda x: x.sum(dim=1), "expected shape", "adds the heads",
                "adding the heads blends them into one; merging concatenates them side by side, (B, N, H * hd)."),
        Mistake(lambda x: x.reshape(x.shape[0], -1, x.shape[2]), "expected shape", "puts the tokens last",
                "the output is (B, N, H * hd), tokens before channels: x.transpose(1, 2).reshape(B, N, H * hd)."),
    ],
))


# -- 4. the multi-head self-attention layer --------------------------------------------------------------
class _NoProjection(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.h = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = (t.reshape(B, N, self.h, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)


class _HeadMajorPacking(ref.MultiHeadSelfAttention):
    """Unpacks qkv as if it were laid out per head (timm/torch pack [q; k; v] over all heads)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        qkv = self.qkv(x).reshape(B, N, H, 3, C // H).permute(3, 0, 2, 1, 4)
        q, k, v = qkv.unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


class _NoScale(ref.MultiHeadSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        w = (q @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((w @ v).transpose(1, 2).reshape(B, N, C))


class _MergeWithoutTranspose(ref.MultiHeadSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return self.proj(F.scaled_dot_product_attention(q, k, v).reshape(B, N, C))


class _ScaleByDim(ref.MultiHeadSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        w = (q @ k.transpose(-2, -1) / math.sqrt(C)).softmax(-1)
        return self.proj((w @ v).transpose(1, 2).reshape(B, N, C))


class _ProjUnused(ref.MultiHeadSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C)


class _SoftmaxOverQueries(ref.MultiHeadSelfAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H = self.num_heads
        q, k, v = (t.reshape(B, N, H, -1).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        w = (q @ k.transpose(-2, -1) / math.sqrt(C // H)).softmax(-2)
        return self.proj((w @ v).transpose(1, 2).reshape(B, N, C))


class _SeparateProjections(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.h = num_heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = (f(x).reshape(B, N, self.h, -1).transpose(1, 2) for f in (self.q, self.k, self.v))
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, C))


MultiHeadSelfAttention = register(Exercise(
    id="ch02.MultiHeadSelfAttention",
    title="A multi-head self-attention layer",
    reference=ref.MultiHeadSelfAttention,
    kind="module",
    cases=[
        Case("one head", lambda: ({"dim": 8, "num_heads": 1}, (torch.randn(1, 4, 8),)),
             "with one head this is plain scaled dot-product self-attention followed by proj"),
        Case("two heads", lambda: ({"dim": 8, "num_heads": 2}, (torch.randn(2, 5, 8),)),
             "qkv(x) packs [q; k; v]: the first dim outputs are the queries of all heads, then keys, then values; "
             "scale by 1 / sqrt(head_dim)"),
        Case("ViT-like widths", lambda: ({"dim": 48, "num_heads": 6}, (torch.randn(2, 10, 48),)),
             "six heads of 8 channels each; the heads are concatenated in order before proj"),
    ],
    hints=[
        "Two submodules only: self.qkv = nn.Linear(dim, 3 * dim) and self.proj = nn.Linear(dim, dim).",
        "q, k, v = self.qkv(x).chunk(3, dim=-1) gives three (B, N, C) tensors; split each into heads with your "
        "split_heads, attend per head with your scaled_dot_product_attention (the scale is 1 / sqrt(C // H)), "
        "merge the heads with your merge_heads, then apply self.proj. Using your earlier answers is fine: the "
        "check and the grader both run your exercise cells together.",
        "In forward: B, N, C = x.shape; q, k, v = (t.reshape(B, N, H, C // H).transpose(1, 2) for t in "
        "self.qkv(x).chunk(3, -1)); out = F.scaled_dot_product_attention(q, k, v); "
        "return self.proj(out.transpose(1, 2).reshape(B, N, C))",
    ],
    mistakes=[
        Mistake(_NoProjection, "missing parameters ['proj.bias', 'proj.weight']", "forgets the output projection"),
        Mistake(_SeparateProjections, "missing parameters ['qkv.bias', 'qkv.weight']",
                "three Linear layers instead of the fused qkv"),
        Mistake(_HeadMajorPacking, "values differ", "unpacks qkv per head instead of [q; k; v]"),
        Mistake(_NoScale, "1 / sqrt(head_dim)", "no 1/sqrt(d) scale",
                "the scores are not scaled: divide q @ k^T by sqrt(head_dim), head_dim = dim // num_heads "
                "(F.scaled_dot_product_attention does it for you)."),
        Mistake(_MergeWithoutTranspose, "values differ", "merges the heads by a reshape without the transpose",
                "the heads are merged by reshaping (B, H, N, hd) straight to (B, N, C), which mixes tokens of "
                "different heads: bring the tokens first with out.transpose(1, 2), then reshape(B, N, C)."),
        Mistake(_ScaleByDim, "values differ", "scales by 1/sqrt(dim) instead of 1/sqrt(head_dim)",
                "each head's scores are scaled by 1 / sqrt(head_dim), head_dim = dim // num_heads, not by "
                "1 / sqrt(dim)."),
        Mistake(_ProjUnused, "values differ", "defines self.proj but never applies it",
                "self.proj is defined but never applied: the merged heads go through it, return self.proj(out)."),
        Mistake(_SoftmaxOverQueries, "values differ", "softmax over the queries",
                "the softmax runs over the queries (dim=-2); each query's weights sum to one over the keys: "
                "softmax(..., dim=-1)."),
    ],
))
