"""Reference solutions of chapter 5's exercises (shown by ``.solution()``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def channel_attention(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """CBAM's channel weights: a shared bias-free MLP on the average- and max-pooled descriptors.

    ``x (B, C, H, W)``, ``w1 (C/r, C)``, ``w2 (C, C/r)`` -> ``(B, C)`` in (0, 1)."""
    def mlp(v: torch.Tensor) -> torch.Tensor:      # (B, C) -> (B, C), the same weights for both
        return F.relu(v @ w1.T) @ w2.T
    avg = x.mean(dim=(2, 3))                        # (B, C)
    mx = x.amax(dim=(2, 3))                         # (B, C)
    return torch.sigmoid(mlp(avg) + mlp(mx))


def spatial_map(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """CBAM's spatial map: [mean; max] across channels, a k x k convolution (same size), a sigmoid.

    ``x (B, C, H, W)``, ``weight (1, 2, k, k)``, ``bias (1,)`` -> ``(B, H, W)`` in (0, 1)."""
    pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # (B, 2, H, W)
    k = weight.shape[-1]
    return torch.sigmoid(F.conv2d(pooled, weight, bias, padding=k // 2))[:, 0]            # (B, H, W)


class CBAMBlock(nn.Module):
    """CBAM as in the paper's equations: channel attention, then spatial attention on the refined map."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))                       # (B, C) each
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        x = x * mc[:, :, None, None]                                           # channel first
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        ms = torch.sigmoid(self.conv(pooled))                                  # (B, 1, H, W)
        return x * ms                                                          # then spatial


def cbam_order_gap(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conv_w: torch.Tensor,
                   conv_b: torch.Tensor, masks: torch.Tensor) -> tuple[float, float, float]:
    """CBAM in both orders: pointing-game scores of each order's spatial map, and how far the outputs differ.

    ``x (B, C, H, W)``, the channel MLP ``w1 (C/r, C)``, ``w2 (C, C/r)`` (no biases), the spatial convolution
    ``conv_w (1, 2, k, k)``, ``conv_b (1,)``, target ``masks (B, H, W)`` (bool). Returns Python floats
    ``(score_channel_first, score_spatial_first, gap)``: a score is the fraction of images whose spatial map
    peaks inside the mask; ``gap = ||out_cf - out_sf|| / ||out_cf||`` over the whole batch.
    """
    def channel_gates(t: torch.Tensor) -> torch.Tensor:                   # (B, C, H, W) -> (B, C, 1, 1)
        def mlp(v: torch.Tensor) -> torch.Tensor:
            return F.relu(v @ w1.T) @ w2.T
        return torch.sigmoid(mlp(t.mean(dim=(2, 3))) + mlp(t.amax(dim=(2, 3))))[:, :, None, None]

    def spatial(t: torch.Tensor) -> torch.Tensor:                         # (B, C, H, W) -> (B, 1, H, W)
        pooled = torch.cat([t.mean(dim=1, keepdim=True), t.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(F.conv2d(pooled, conv_w, conv_b, padding=conv_w.shape[-1] // 2))

    def pointing(m: torch.Tensor) -> float:                               # (B, 1, H, W) map -> hit rate
        peak = m.flatten(1).argmax(dim=1)                                 # (B,) flat index of each peak
        return masks.flatten(1)[torch.arange(len(peak)), peak].sum().item() / len(peak)

    y = x * channel_gates(x)                  # the paper's order: channel first...
    map_cf = spatial(y)                       # ...then the spatial map, computed on the refined features
    out_cf = y * map_cf
    map_sf = spatial(x)                       # swapped: the spatial map sees the raw input
    z = x * map_sf
    out_sf = z * channel_gates(z)
    gap = ((out_cf - out_sf).norm() / out_cf.norm()).item()
    return pointing(map_cf), pointing(map_sf), gap
