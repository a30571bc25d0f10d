"""Reference solutions of chapter 2's exercises (shown by ``.solution()``).

They use only ``math``, ``torch``, ``nn`` and ``F`` (and no ``typing`` names), so a learner can paste one into
the notebook as it is."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q k^T / sqrt(d)) v with an optional boolean mask (a tensor, True = keep, or None).

    Shapes: q ``(..., Nq, d)``, k ``(..., Nk, d)``, v ``(..., Nk, dv)``, mask broadcastable to
    ``(..., Nq, Nk)`` -> output ``(..., Nq, dv)``, weights ``(..., Nq, Nk)``.
    """
    d = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)           # (..., Nq, Nk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))     # False = this key is hidden from this query
    weights = torch.softmax(scores, dim=-1)                   # (..., Nq, Nk): rows sum to one
    return weights @ v, weights                               # (..., Nq, dv), (..., Nq, Nk)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Split the channels into heads: ``(B, N, C) -> (B, H, N, C // H)``."""
    B, N, C = x.shape
    x = x.reshape(B, N, num_heads, C // num_heads)   # (B, N, H, hd): channel c goes to head c // hd
    return x.transpose(1, 2)                         # (B, H, N, hd): each head sees the whole sequence


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """Concatenate the heads again: ``(B, H, N, hd) -> (B, N, H * hd)`` (the inverse of split_heads)."""
    B, H, N, hd = x.shape
    x = x.transpose(1, 2)                            # (B, N, H, hd)
    return x.reshape(B, N, H * hd)                   # (B, N, C); reshape copies, since x is not contiguous


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention: ``(B, N, dim) -> (B, N, dim)`` with submodules ``qkv`` and ``proj``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)     # queries, keys and values of all heads in one product
        self.proj = nn.Linear(dim, dim)        # mixes the concatenated heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        H, hd = self.num_heads, C // self.num_heads
        q, k, v = self.qkv(x).chunk(3, dim=-1)                    # each (B, N, C): [q; k; v] packing
        q, k, v = (t.reshape(B, N, H, hd).transpose(1, 2) for t in (q, k, v))  # each (B, H, N, hd)
        weights = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)   # (B, H, N, N)
        out = (weights @ v).transpose(1, 2).reshape(B, N, C)      # (B, N, C): heads concatenated
        return self.proj(out)
