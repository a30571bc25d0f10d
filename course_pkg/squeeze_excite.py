"""Squeeze-and-Excitation (SE): channel attention that re-weights feature channels (Hu et al., 2018).

Three steps on a feature map ``x`` of shape ``(B, C, H, W)``:

1. **squeeze**: average each channel over all positions, ``(B, C, H, W) -> (B, C, 1, 1)``;
2. **excitation**: a small two-layer network, ``C -> C/r -> C`` with a ReLU between and a sigmoid
   at the end, turns that descriptor into one weight in ``(0, 1)`` per channel;
3. **scale**: multiply every channel of ``x`` by its weight.

The two fully connected layers are written as 1x1 convolutions (``fc1``, ``fc2``): on a ``1 x 1``
map a 1x1 convolution *is* a fully connected layer, and this layout lets the state dict of
``torchvision.ops.SqueezeExcitation`` (and of timm's ``SEModule``) load with ``strict=True``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

__all__ = ["SqueezeExcitation", "check_feature_map", "hidden_width"]


def check_feature_map(x: torch.Tensor, channels: int, owner: str) -> None:
    """Raise a clear ``ValueError`` unless ``x`` is a ``(B, channels, H, W)`` tensor.

    Args:
        x: the input to check.
        channels: the number of channels the module was built for.
        owner: the module's name and configuration, for the message (``"SqueezeExcitation(channels=64)"``).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor of shape (B, C, H, W), got a {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{owner} expects a 4-D input (B, C, H, W), got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0) for a single map")
    if x.shape[1] != channels:
        raise ValueError(f"{owner} was built for channels={channels} but the input has {x.shape[1]} channels "
                         f"(shape {tuple(x.shape)}); build it with channels={x.shape[1]}")


def hidden_width(channels: int, reduction: int, hidden_channels: Optional[int] = None) -> int:
    """The width of the bottleneck: ``hidden_channels`` if given, else ``channels // reduction``.

    Raises ``ValueError`` (naming the parameter) for a non-positive ``channels`` or ``reduction``,
    a ``reduction`` larger than ``channels``, or a non-positive ``hidden_channels``.
    """
    for name, value in (("channels", channels), ("reduction", reduction)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if hidden_channels is not None:
        if not isinstance(hidden_channels, int) or isinstance(hidden_channels, bool) or hidden_channels < 1:
            raise ValueError(f"hidden_channels must be a positive integer or None, got {hidden_channels!r}")
        return hidden_channels
    if reduction > channels:
        raise ValueError(f"reduction={reduction} is larger than channels={channels}: the bottleneck would have "
                         f"{channels // reduction} units; use a reduction of at most {channels} "
                         "(16 in the paper) or pass hidden_channels")
    return channels // reduction


class SqueezeExcitation(nn.Module):
    """The SE block: squeeze (global average pool), excitation (FC-ReLU-FC-sigmoid), scale.

    Args:
        channels: ``C``, the number of channels of the feature map.
        reduction: ``r``; the bottleneck has ``C // r`` units (the paper's default is 16).
        hidden_channels: set the bottleneck width directly (overrides ``reduction``); use it to
            match a reference such as ``torchvision.ops.SqueezeExcitation(C, squeeze_channels)``.

    Shapes:
        input ``(B, C, H, W)`` -> output ``(B, C, H, W)``.

    After each call, ``last_weights`` holds the channel weights ``(B, C)`` of that call (detached),
    so a chapter can plot them.
    """

    def __init__(self, channels: int, reduction: int = 16, hidden_channels: Optional[int] = None) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, hidden_channels)
        self.channels = channels
        self.hidden_channels = hidden
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)  # C -> C/r, a fully connected layer on 1x1
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1)  # C/r -> C
        self.gate = nn.Sigmoid()
        self.last_weights: Optional[torch.Tensor] = None

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze and excitation only: the weights ``(B, C, 1, 1)`` in ``(0, 1)``, without scaling."""
        check_feature_map(x, self.channels, f"SqueezeExcitation(channels={self.channels})")
        s = x.mean(dim=(2, 3), keepdim=True)       # (B, C, 1, 1)  squeeze: one number per channel
        z = self.act(self.fc1(s))                  # (B, C/r, 1, 1) excitation, bottleneck
        return self.gate(self.fc2(z))              # (B, C, 1, 1)  one weight in (0, 1) per channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.channel_weights(x)                # (B, C, 1, 1)
        self.last_weights = w.detach().flatten(1)  # (B, C) for plotting
        return x * w                               # (B, C, H, W) scale: recalibrated channels

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden_channels={self.hidden_channels}"
