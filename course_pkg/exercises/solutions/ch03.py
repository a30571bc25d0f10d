"""Reference solutions of chapter 3's exercises (shown by ``.solution()``)."""

from __future__ import annotations

import math

import torch


def spatial_weighting(features: torch.Tensor, attn_map: torch.Tensor) -> torch.Tensor:
    """Weight every position of a feature map by a spatial map. ``(B, C, H, W) x (B, H, W) -> (B, C, H, W)``."""
    return features * attn_map[:, None, :, :]    # (B, 1, H, W): the same weight for every channel


def channel_weighting(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weight every channel of a feature map. ``(B, C, H, W) x (B, C) -> (B, C, H, W)``."""
    return features * weights[:, :, None, None]  # (B, C, 1, 1): the same weight at every position


def patch_self_attention(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Self-attention among patches, without projections. ``(..., N, D) -> (..., N, D), (..., N, N)``."""
    d = patches.shape[-1]
    scores = patches @ patches.transpose(-2, -1) / math.sqrt(d)   # (..., N, N): every patch vs every patch
    weights = torch.softmax(scores, dim=-1)                          # each row sums to one
    return weights @ patches, weights                                # (..., N, D), (..., N, N)


def attention_entropy(attn_map: torch.Tensor) -> torch.Tensor:
    """Entropy in nats of each spatial map read as a distribution over its positions.

    ``attn_map (B, H, W)``, non-negative (a sigmoid map, a softmax map...) -> ``(B,)``, each in
    ``[0, log(H * W)]``: 0 when all the weight sits at one position, ``log(H * W)`` when it is spread evenly.
    """
    p = attn_map.flatten(1)                        # (B, H*W): one row per map
    p = p / p.sum(dim=1, keepdim=True)             # each map now sums to one: a distribution
    return -torch.special.xlogy(p, p).sum(dim=1)   # -sum p log p, with 0 * log 0 counted as 0
