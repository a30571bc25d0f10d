"""Self-attention: scaled dot-product attention and a multi-head self-attention layer.

Two paths compute the same thing (nanoGPT style):

* :func:`attention_with_weights` is the explicit version, written out step by step. It builds the
  ``(Nq, Nk)`` matrix of weights and returns it with the output, so it is the one to read and to plot.
  (It was called ``scaled_dot_product_attention``; that name stays as an alias, but unlike
  ``F.scaled_dot_product_attention`` it returns a pair.)
* :class:`MultiHeadSelfAttention` calls PyTorch's fused ``F.scaled_dot_product_attention`` by default
  (flash / memory-efficient kernels on a GPU, which never keep the ``N x N`` matrix) and switches to the
  explicit path only when the weights are wanted: ``return_attention=True`` (chapter 2's teaching path) or
  a :func:`course_pkg.attention_maps.record_attention` block. Both read the weights at the same place,
  the layer's :class:`~course_pkg.attention_tap.AttentionTap` ``tap``.

Masks: one rule, checked on every call.

* A **boolean** mask says which pairs may attend: **True = keep** (the query attends to that key),
  False = forbid; as in ``torch.nn.functional.scaled_dot_product_attention``. ``causal_mask(n)`` builds
  one. (``torch.nn.MultiheadAttention`` uses the opposite boolean convention, True = ignore: pass
  ``~mask`` to it.)
* A **floating** mask is an **additive bias** on the scores: ``0`` leaves a pair alone, ``-inf`` forbids
  it, other values favour or penalise it. A float mask whose values are **all 0s and 1s** (with at least
  one 1) is **refused** with a ``ValueError``: it is almost always a keep/drop mask built with
  ``torch.ones``/``torch.tril`` in float, which as a bias would forbid nothing; convert it with
  ``mask.bool()``. (This check reads the mask's values, so it waits for the device once per call with a
  float mask; it is skipped while ``torch.compile`` traces.) An all-zero float mask is a zero bias.
* A mask that forbids **every key for some query** (a bool row all False, a float row all ``-inf``), or
  a bool mask that (in self-attention) forbids every token to see itself, is refused with a ``ValueError``: that is how a mask in ``nn.MultiheadAttention``'s
  convention (True = ignore) looks here, and such a query would get a zero output. (This check reads the
  mask's values once per call, like the float check; it is skipped while ``torch.compile`` traces.)
* Integer masks, lists and NumPy arrays are refused.
* Shapes, in :class:`MultiHeadSelfAttention` (scores ``(B, H, N, N)``): a 2-D mask ``(N, N)`` is shared by
  every sample and head; a **3-D mask is always per sample**, ``(B, N, N)`` (or ``(1, N, N)``), and is
  applied to every head, whatever the number of heads (a per-head mask is 4-D, ``(1, H, N, N)``); a 4-D
  mask broadcasts to ``(B, H, N, N)`` (e.g. ``(B, 1, N, N)``, ``(B, 1, 1, N)`` for padding).
  :func:`attention_with_weights` has free leading dimensions, so there a mask follows PyTorch's
  broadcasting against the scores ``(..., Nq, Nk)``.

The layer's parameter names are timm's (``qkv`` packing ``[q; k; v]``, ``proj``), so a state dict of
``timm.layers.Attention`` (as used in ``timm.models.vision_transformer``) loads with ``strict=True``.

``torch.fx.symbolic_trace`` traces :class:`MultiHeadSelfAttention` without a mask and without
``return_attention`` (a graph holds one path; it refuses the others when called) and keeps the input check
in the graph (see :mod:`course_pkg.checks`).
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .attention_tap import AttentionTap
from .checks import (
    check_dtype_matches,
    check_probability,
    check_tensor,
    describe,
    fixed_when_traced,
    is_compiling,
    positive_int,
)

__all__ = ["MultiHeadSelfAttention", "attention_with_weights", "causal_mask", "check_mask",
           "scaled_dot_product_attention"]


def causal_mask(n: int, device: Optional[Union[torch.device, str]] = None) -> torch.Tensor:
    """A boolean ``(n, n)`` mask that lets query ``i`` see keys ``0..i`` only (True = keep).

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device`` (default: the CPU).
    """
    from .env import as_device

    if isinstance(n, bool) or not isinstance(n, numbers.Real):
        raise TypeError(f"{describe(n, 'n')} is a {type(n).__name__}; use an int, the sequence length "
                        "(x.shape[1])")
    if not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n={n!r} is not a valid sequence length; use a positive integer")
    dev = as_device(device, "device")
    return torch.ones(int(n), int(n), dtype=torch.bool, device=dev).tril()


def _looks_like_keep_mask(mask: torch.Tensor) -> bool:
    """True if a float mask holds only 0s and 1s and at least one 1 (one device sync)."""
    is_one = mask == 1
    return bool(((mask == 0) | is_one).all() & is_one.any())


def _check_bool_mask(mask: torch.Tensor, name: str, target: tuple[int, ...]) -> None:
    """A keep mask (True = keep) must leave every query a key, and (self-attention) not forbid every
    token to see itself: both are what ``nn.MultiheadAttention``'s opposite convention (True = ignore)
    looks like here. One device sync."""
    n_q, n_k = target[-2], target[-1]
    full = mask.shape[-1] == n_k                        # the mask names each key (not broadcast over keys)
    empty_row = (~mask).all(dim=-1) if full else torch.zeros((), dtype=torch.bool, device=mask.device)
    square = n_q == n_k and mask.dim() >= 2 and mask.shape[-2] == n_q and full and n_q > 1
    no_self = (~mask.diagonal(dim1=-2, dim2=-1)).all() if square else torch.zeros((), dtype=torch.bool,
                                                                                     device=mask.device)
    has_empty, has_no_self = torch.stack([empty_row.any(), no_self]).tolist()
    convention = ("True = keep here, as in F.scaled_dot_product_attention; a mask in "
                  "nn.MultiheadAttention's convention (True = ignore) must be inverted: pass ~mask")
    if has_empty:
        where = torch.nonzero(empty_row)[0].tolist() if empty_row.dim() else []
        raise ValueError(f"{name} (bool, shape {tuple(mask.shape)}) forbids every key for a query (the first at "
                         f"index {tuple(where)}): that query would attend to nothing and get a zero output. "
                         f"{convention}; a query with nothing to see must keep at least one key (e.g. itself)")
    if has_no_self:
        raise ValueError(f"{name} (bool, shape {tuple(mask.shape)}) forbids every token to attend to itself "
                         f"(its diagonal is all False). {convention}; a causal mask is causal_mask(n)")


def check_mask(mask: Optional[torch.Tensor], target: tuple[int, ...], *, dtype: torch.dtype,
               name: str = "mask", hint: str = "") -> Optional[torch.Tensor]:
    """Validate an attention mask against the scores' shape ``target`` and return it ready to use.

    A boolean mask is returned as is; a floating mask is cast to ``dtype`` (the scores' dtype). A list or
    NumPy array raises ``TypeError``; an integer mask, a float mask of 0s and 1s (a keep/drop mask in the
    wrong dtype) or a mask that does not broadcast to ``target`` raises ``ValueError`` that says why.
    ``hint`` is appended to the shape message.
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        kind = type(mask).__name__
        how = "torch.from_numpy(mask)" if kind == "ndarray" else "torch.tensor(mask, dtype=torch.bool)"
        raise TypeError(f"{name} must be a torch.Tensor (bool: True = keep, or float: added to the scores) "
                        f"or None, got a {kind}; convert it with {how}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"{name} has dtype {mask.dtype}; use a bool mask (True = keep, as in "
                         "F.scaled_dot_product_attention): mask.bool(), or a float mask added to the "
                         "scores (-inf = forbid)")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, target)
    except RuntimeError:
        broadcast = None
    if broadcast != torch.Size(target):
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, which does not broadcast to the attention "
                         f"scores' shape {tuple(target)}; use e.g. (Nq, Nk) = {tuple(target[-2:])}, "
                         f"(B, 1, Nq, Nk) or the full {tuple(target)}{hint}")
    if mask.dtype == torch.bool:
        if not is_compiling():
            _check_bool_mask(mask, name, target)
        return mask
    if not is_compiling() and _looks_like_keep_mask(mask):
        raise ValueError(f"{name} is a float ({mask.dtype}) mask of only 0s and 1s: it looks like a "
                         "keep/drop mask, but a float mask is added to the scores (0 changes nothing), so "
                         "nothing would be masked. Use mask.bool() (True = keep), or a float bias with "
                         "-inf where a pair is forbidden")
    if not is_compiling() and mask.shape[-1] == target[-1] and bool(torch.isneginf(mask).all(dim=-1).any()):
        raise ValueError(f"{name} (float, shape {tuple(mask.shape)}) is -inf on a whole row: a query would "
                         "attend to nothing and get a zero output; leave every query at least one key "
                         "(e.g. itself) with a finite bias")
    return mask.to(dtype)


def attention_with_weights(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           mask: Optional[torch.Tensor] = None, dropout_p: float = 0.0,
                           *, scale: Optional[float] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, written out: ``softmax(q k^T / sqrt(d) + mask) v``.

    Args:
        q: queries ``(..., Nq, d)``.
        k: keys ``(..., Nk, d)``.
        v: values ``(..., Nk, dv)``. Leading dimensions broadcast (e.g. ``(B, H)``).
        mask: optional, broadcastable to ``(..., Nq, Nk)``. **Boolean: True = keep** (the query may attend
            to that key), False = forbid, as in ``F.scaled_dot_product_attention``. **Float**: added to the
            scores (``-inf`` forbids a pair, other values bias it).
        dropout_p: probability of zeroing a weight (always applied when > 0, like the functional API;
            a module passes 0 in eval mode). Kept weights are scaled by ``1 / (1 - dropout_p)``.
        scale: multiplies the scores; default ``1 / sqrt(d)``.

    Returns:
        ``(output, weights)``: output ``(..., Nq, dv)`` and the weights actually used ``(..., Nq, Nk)``
        (after dropout). Each row of weights sums to one: a mask that leaves a query no key (a bool row
        all False, a float row all ``-inf``) is refused, since that query would get a zero output.
        (Under ``torch.compile`` the value checks are skipped; such a row then gets zero weights and a
        zero output, no NaN.)

    The softmax subtracts each row's maximum first, so very large scores do not overflow.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_tensor(t, name, "attention_with_weights", "(..., N, d)")
    if q.dim() < 2 or k.dim() < 2 or v.dim() < 2:
        raise ValueError(f"q, k and v must have at least 2 dimensions (..., N, d), got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share their last dimension d, got q {tuple(q.shape)} and k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys Nk (dim -2), got k {tuple(k.shape)} and "
                         f"v {tuple(v.shape)}")
    if not q.is_floating_point() or q.dtype != k.dtype or q.dtype != v.dtype:
        raise ValueError(f"q, k and v must share one floating dtype, got dtypes q {q.dtype}, k {k.dtype}, "
                         f"v {v.dtype}; convert them, e.g. with .float() for float32")
    check_probability("dropout_p", dropout_p)
    try:
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(f"the leading dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and v "
                         f"{tuple(v.shape)} do not broadcast; use e.g. (B, H, N, d) for all three") from None
    target = (*lead, q.shape[-2], k.shape[-2])
    mask = check_mask(mask, tuple(target), dtype=q.dtype)
    return _attend(q, k, v, mask, dropout_p, scale)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
            dropout_p: float, scale: Optional[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`attention_with_weights` without the checks (``mask`` already checked by the caller)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale

    scores = (q * scale) @ k.transpose(-2, -1)          # (..., Nq, Nk): how well each key matches each query
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(scores.dtype)
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))  # forbidden pairs get no weight at all
    elif mask is not None:
        scores = scores + mask                          # float mask: an additive bias

    # A stable softmax over the keys. Subtracting the row maximum leaves the result unchanged but keeps
    # exp() <= 1. A row with every key masked has max -inf: use 0 instead, so exp() gives zeros, not NaN.
    row_max = scores.detach().amax(dim=-1, keepdim=True)                    # (..., Nq, 1)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    e = torch.exp(scores - row_max)                                         # (..., Nq, Nk)
    total = e.sum(dim=-1, keepdim=True)                                     # (..., Nq, 1); 0 if all masked
    weights = e / torch.where(total > 0, total, torch.ones_like(total))     # (..., Nq, Nk); rows sum to 1 or 0

    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights                         # (..., Nq, dv), (..., Nq, Nk)


#: The former name of :func:`attention_with_weights` (chapter 2 imports it). Unlike
#: ``torch.nn.functional.scaled_dot_product_attention`` it returns ``(output, weights)``.
scaled_dot_product_attention = attention_with_weights


def _check_tokens(x: torch.Tensor, dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Raise a clear error unless ``x`` is a batch of tokens ``(B, N, dim)`` of the weights' ``dtype``."""
    check_tensor(x, "x", "MultiHeadSelfAttention", f"(B, N, {dim})")
    if x.dim() != 3:
        raise ValueError(f"x has {x.dim()} dimensions (shape {tuple(x.shape)}); expected 3: (batch B, "
                         f"tokens N, channels {dim}). Add a batch dimension with x.unsqueeze(0); an "
                         "image (B, C, H, W) must become tokens first (e.g. PatchEmbed)")
    if x.shape[-1] != dim:
        raise ValueError(f"x has last dimension {x.shape[-1]} (shape {tuple(x.shape)}) but this layer was built "
                         f"with dim={dim}; expected shape (B, N, {dim})")
    check_dtype_matches(x, dtype, "x", "MultiHeadSelfAttention")
    return x


# torch.fx.symbolic_trace keeps the input check as a call in the graph (it runs on the real input then)
torch.fx.wrap("_check_tokens")


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention over a sequence of tokens (the Transformer / ViT layer).

    Every token is projected to a query, a key and a value (one fused ``qkv`` Linear, packed ``[q; k; v]``);
    the ``dim`` channels are split into ``num_heads`` heads of ``dim // num_heads`` channels; each head
    attends on its own; the heads are concatenated and mixed by ``proj``.

    Args:
        dim: token width ``C`` (input and output).
        num_heads: number of heads ``H``; must divide ``dim``.
        qkv_bias: whether ``qkv`` has a bias (ViT: True).
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after ``proj`` (training only).

    Shapes: ``x (B, N, C) -> (B, N, C)``; with ``return_attention=True`` also weights ``(B, H, N, N)``.

    To see the weights of a layer inside a model, record them:
    ``with record_attention(model) as maps: model(x)`` gives ``maps["...attn"]`` ``(B, H, N, N)``
    (:mod:`course_pkg.attention_maps`). The weights pass through the tap ``self.tap`` on the explicit path.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        positive_int("dim", dim)
        positive_int("num_heads", num_heads)
        if dim % num_heads != 0:
            divisors = [h for h in range(1, min(dim, 16) + 1) if dim % h == 0]
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}; each head gets dim // num_heads "
                             f"channels, so use a num_heads that divides {dim} (e.g. {divisors})")
        check_probability("attn_drop", attn_drop)
        check_probability("proj_drop", proj_drop)
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)  # rows [0:C) -> q, [C:2C) -> k, [2C:3C) -> v
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.tap = AttentionTap("token")                   # where the weights (B, H, N, N) can be seen

    def _check_input(self, x: torch.Tensor) -> None:
        _check_tokens(x, self.dim, self.qkv.weight.dtype)

    def _check_mask(self, mask: Optional[torch.Tensor], B: int, N: int, dtype: torch.dtype
                    ) -> Optional[torch.Tensor]:
        """The mask as a tensor that broadcasts to ``(B, H, N, N)``: a 3-D mask is per sample."""
        if isinstance(mask, torch.Tensor) and mask.dim() == 3:
            if mask.shape[0] not in (1, B) or mask.shape[1:] != (N, N):
                raise ValueError(
                    f"mask has shape {tuple(mask.shape)}; a 3-D mask is read as one (N, N) mask per sample, "
                    f"(B, N, N) = ({B}, {N}, {N}) or (1, {N}, {N}), and applied to every head. For one mask "
                    f"per head use (1, H, N, N) = (1, {self.num_heads}, {N}, {N}); per sample and head "
                    f"(B, H, N, N); a per-sample mask is also accepted as (B, 1, N, N) = mask.unsqueeze(1)")
            mask = mask.unsqueeze(1)                          # (B, 1, N, N): the same for every head
        return check_mask(mask, (B, self.num_heads, N, N), dtype=dtype,
                          hint="; a 3-D mask is per sample (B, N, N)")

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
                return_attention: bool = False) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attend every token to every token.

        Args:
            x: tokens ``(B, N, C)``.
            mask: optional. Bool: True = keep (SDPA's convention); float: added to the scores (a float
                mask of 0s and 1s is refused: use ``mask.bool()``). ``(N, N)`` for every sample and head,
                ``(B, N, N)`` per sample (a 3-D mask is always per sample), or 4-D broadcastable to
                ``(B, H, N, N)`` such as ``(B, 1, N, N)`` or ``(1, H, N, N)``.
            return_attention: also return the weights ``(B, H, N, N)`` (takes the explicit path).

        Returns:
            ``out (B, N, C)``, or ``(out, weights)`` when ``return_attention``.
        """
        self._check_input(x)
        mask = fixed_when_traced(mask, "mask", None)
        return_attention = fixed_when_traced(return_attention, "return_attention", False)
        B, N, C = x.shape
        H, hd = self.num_heads, self.head_dim
        mask = self._check_mask(mask, B, N, x.dtype)

        qkv = self.qkv(x)                                    # (B, N, 3C)
        qkv = qkv.reshape(B, N, 3, H, hd)                    # (B, N, 3, H, hd)
        qkv = qkv.permute(2, 0, 3, 1, 4)                     # (3, B, H, N, hd)
        q, k, v = qkv.unbind(0)                              # each (B, H, N, hd)
        if mask is not None and mask.dtype != q.dtype and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)                          # a float mask must match q (e.g. under autocast)

        p = self.attn_drop.p if self.training else 0.0       # dropout on the weights only while training
        weights: Optional[torch.Tensor] = None
        if return_attention or self.tap.recording:            # the weights are wanted: explicit path
            out, weights = _attend(q, k, v, mask, p, None)      # (B, H, N, hd), (B, H, N, N)
            weights = self.tap(weights)                       # record_attention sees them here
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, N, hd)

        out = out.transpose(1, 2).reshape(B, N, C)           # (B, N, H, hd) -> (B, N, C): heads concatenated
        out = self.proj_drop(self.proj(out))                 # (B, N, C): heads mixed
        if return_attention and weights is not None:
            return out, weights
        return out

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
