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


def se_ablation(features: torch.Tensor, labels: torch.Tensor, params: dict) -> tuple[float, float]:
    """A tiny SE classifier's accuracy, and its accuracy with every SE gate replaced by 1.

    The classifier: SE on ``features (B, C, H, W)`` (squeeze, ``w1 (C/r, C)``, ``b1``, ReLU, ``w2 (C, C/r)``,
    ``b2``, sigmoid, scale), then global average pooling and a linear head ``head_w (K, C)``, ``head_b (K,)``;
    the prediction is the class with the largest logit. ``labels (B,)``. Returns two Python floats in [0, 1].
    """
    z = features.mean(dim=(2, 3))                                          # (B, C) squeeze
    hidden = torch.relu(z @ params["w1"].T + params["b1"])                 # (B, C/r)
    gates = torch.sigmoid(hidden @ params["w2"].T + params["b2"])          # (B, C)   excitation

    def accuracy(g: torch.Tensor) -> float:
        scaled = features * g[:, :, None, None]                            # (B, C, H, W) scale
        logits = scaled.mean(dim=(2, 3)) @ params["head_w"].T + params["head_b"]  # (B, K)
        return (logits.argmax(dim=1) == labels).sum().item() / len(labels)  # fraction of right answers

    return accuracy(gates), accuracy(torch.ones_like(gates))               # with SE, SE switched off
