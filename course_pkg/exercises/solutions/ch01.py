"""Reference solutions of chapter 1's exercises (shown by ``.solution()``)."""

from __future__ import annotations

import torch


def softmax_weights(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, stable for large scores. ``(..., n) -> (..., n)``."""
    shifted = scores - scores.max(dim=-1, keepdim=True).values  # the largest becomes 0: exp() <= 1
    e = torch.exp(shifted)
    return e / e.sum(dim=-1, keepdim=True)


def weighted_average(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Mix the rows of ``values`` with ``weights``. ``(m, n) x (n, d) -> (m, d)``; ``(n,) x (n, d) -> (d,)``."""
    return weights @ values


def attention_pool(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention pooling with dot-product scores.

    Shapes: query ``(m, d)``, keys ``(n, d)``, values ``(n, dv)`` -> output ``(m, dv)``, weights ``(m, n)``.
    """
    scores = query @ keys.T                  # (m, n): how well each key matches each query
    weights = softmax_weights(scores)        # (m, n): each row sums to one
    return weights @ values, weights         # (m, dv), (m, n)
