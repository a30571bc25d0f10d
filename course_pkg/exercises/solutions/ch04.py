"""Reference solutions of chapter 4's exercises (shown by ``.solution()``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """Global average pooling: one number per channel. ``(B, C, H, W) -> (B, C)``."""
    return x.mean(dim=(2, 3))


def excitation(z: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
               b2: torch.Tensor) -> torch.Tensor:
    """FC -> ReLU -> FC -> sigmoid. ``z (B, C)``, ``w1 (C/r, C)``, ``w2 (C, C/r)`` -> weights ``(B, C)`` in (0, 1)."""
    h = F.relu(z @ w1.T + b1)          # (B, C/r) the bottleneck
    return torch.sigmoid(h @ w2.T + b2)  # (B, C)   one weight per channel


class SEBlock(nn.Module):
    """Squeeze-and-Excitation: ``(B, C, H, W) -> (B, C, H, W)``, channels re-weighted.

    The two fully connected layers are 1x1 convolutions, as in the chapter's ``SqueezeExcitation``:
    on the ``(B, C, 1, 1)`` squeezed map a 1x1 convolution is a fully connected layer."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)  # C -> C/r
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)  # C/r -> C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)                  # (B, C, 1, 1)    squeeze
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # (B, C, 1, 1)    excitation
        return x * w                                          # (B, C, H, W)    scale
