"""Helpers shared by the tests (imported as ``from helpers import ...``; pytest puts tests/ on the path)."""

from __future__ import annotations

import torch
from torch import nn


def randomise_(module: nn.Module, seed: int = 0, scale: float = 0.5, fan_in: bool = False) -> nn.Module:
    """Give every floating parameter and buffer random values, in place; returns ``module``.

    Reference models start heads, biases and some embeddings at zero and BatchNorm at the identity, which
    would hide a wrong key or a swapped layer; random values do not. Parameters get ``N(0, scale^2)``
    (with ``fan_in=True``, conv kernels get ``N(0, 1 / fan_in)`` so deep ResNets keep activations of order
    one); BatchNorm running variances get ``U(0.5, 1.5)``, running means ``N(0, scale^2)``. The dtype of
    each tensor is kept.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g, dtype=torch.float64) + 0.5)
            elif fan_in and t.dim() == 4:
                t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) * t[0].numel() ** -0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64) * scale)
    return module
