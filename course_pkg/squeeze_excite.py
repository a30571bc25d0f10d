"""Squeeze-and-Excitation (SE): channel attention that re-weights feature channels (Hu et al., 2018).

Three steps on a feature map ``x`` of shape ``(B, C, H, W)``:

1. **squeeze**: average each channel over all positions, ``(B, C, H, W) -> (B, C, 1, 1)``;
2. **excitation**: a small two-layer network, ``C -> C/r -> C`` with a ReLU between and a sigmoid
   at the end, turns that descriptor into one weight in ``(0, 1)`` per channel;
3. **scale**: multiply every channel of ``x`` by its weight.

The two fully connected layers are written as 1x1 convolutions (``fc1``, ``fc2``): on a ``1 x 1``
map a 1x1 convolution *is* a fully connected layer, and this layout gives the same keys as
``torchvision.ops.SqueezeExcitation`` and timm's ``SEModule``. A state dict of either loads with
``strict=True`` **into a module of the same hidden width**: torchvision takes the width as an argument
(``squeeze_channels``), and timm rounds ``C / 16`` up to a multiple of 8 by default (``rd_divisor=8``:
``SEModule(64)`` has 8 hidden units, not 4), so build ours with ``hidden_channels=`` that width
(``hidden_channels=timm_module.fc1.out_channels``).

The channel weights ``(B, C)`` of every call can be recorded with
:func:`course_pkg.attention_maps.record_attention`; CBAM's channel attention shares this module's
layout through :class:`ChannelMLP`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .attention_tap import AttentionTap
from .checks import check_image_batch, positive_int

__all__ = ["ChannelMLP", "SqueezeExcitation", "check_feature_map", "hidden_width"]


def check_feature_map(x: torch.Tensor, channels: int, owner: str,
                      dtype: Optional[torch.dtype] = None) -> None:
    """Raise a clear error unless ``x`` is a ``(B, channels, H, W)`` tensor (of the weights' ``dtype``).

    ``TypeError`` for a list or NumPy array; ``ValueError`` for a 3-D tensor, a channels-last
    ``(B, H, W, C)`` tensor, another channel count or dtype (:func:`course_pkg.checks.check_image_batch`).

    Args:
        x: the input to check.
        channels: the number of channels the module was built for.
        owner: the module's name and configuration, for the message (``"SqueezeExcitation(channels=64)"``).
        dtype: the weights' dtype; ``None`` skips the dtype check.
    """
    check_image_batch(x, channels, "x", owner, "channels", dtype)


# torch.fx.symbolic_trace keeps the input check as a call in the graph (it runs on the real input then)
torch.fx.wrap("check_feature_map")


def hidden_width(channels: int, reduction: int, hidden_channels: Optional[int] = None) -> int:
    """The width of the bottleneck: ``hidden_channels`` if given, else ``channels // reduction``.

    Raises ``ValueError`` (naming the parameter) for a non-positive ``channels`` or ``reduction``,
    a ``reduction`` larger than ``channels``, or a non-positive ``hidden_channels``.
    """
    positive_int("channels", channels)
    positive_int("reduction", reduction, "16 in the paper")
    if hidden_channels is not None:
        return positive_int("hidden_channels", hidden_channels, "or None to use channels // reduction")
    if reduction > channels:
        raise ValueError(f"reduction={reduction} is larger than channels={channels}: the bottleneck would have "
                         f"{channels // reduction} units; use a reduction of at most {channels} "
                         "(16 in the paper) or pass hidden_channels")
    return channels // reduction


class ChannelMLP(nn.Module):
    """What SE and CBAM's channel attention share: a ``C -> C/r -> C`` MLP of 1x1 convolutions, a sigmoid
    gate, and the tap where their channel weights can be recorded.

    Args:
        channels: ``C``.
        reduction: ``r``; the hidden layer has ``C // r`` units.
        hidden_channels: the hidden width directly (overrides ``reduction``).
        bias: biases in both layers.

    Subclasses define :meth:`channel_weights` ``(B, C, H, W) -> (B, C, 1, 1)``; ``forward`` scales the input
    by them: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 16, hidden_channels: Optional[int] = None,
                 bias: bool = True) -> None:
        super().__init__()
        hidden = hidden_width(channels, reduction, hidden_channels)
        self.channels = channels
        self.hidden_channels = hidden
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=bias)  # C -> C/r, an FC layer on 1x1
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)  # C/r -> C
        self.gate = nn.Sigmoid()
        self.tap = AttentionTap("channel")                                # the weights (B, C) are seen here

    def mlp(self, s: torch.Tensor) -> torch.Tensor:
        """The MLP on a descriptor ``(B, C, 1, 1) -> (B, C, 1, 1)`` (no sigmoid)."""
        return self.fc2(self.act(self.fc1(s)))

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The weights ``(B, C, 1, 1)`` in ``(0, 1)`` for the input ``(B, C, H, W)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.tap(self.channel_weights(x))      # (B, C, 1, 1)
        return x * w                               # (B, C, H, W) scale: recalibrated channels


    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden_channels={self.hidden_channels}"


class SqueezeExcitation(ChannelMLP):
    """The SE block: squeeze (global average pool), excitation (FC-ReLU-FC-sigmoid), scale.

    Args:
        channels: ``C``, the number of channels of the feature map.
        reduction: ``r``; the bottleneck has ``C // r`` units (the paper's default is 16).
        hidden_channels: set the bottleneck width directly (overrides ``reduction``); use it to
            match a reference such as ``torchvision.ops.SqueezeExcitation(C, squeeze_channels)`` or
            timm's ``SEModule`` (whose width is rounded to a multiple of 8).

    Shapes:
        input ``(B, C, H, W)`` -> output ``(B, C, H, W)``; recorded channel weights ``(B, C)``.
    """

    def __init__(self, channels: int, reduction: int = 16, hidden_channels: Optional[int] = None) -> None:
        super().__init__(channels, reduction, hidden_channels, bias=True)

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Squeeze and excitation only: the weights ``(B, C, 1, 1)`` in ``(0, 1)``, without scaling."""
        check_feature_map(x, self.channels, f"SqueezeExcitation(channels={self.channels})",
                          self.fc1.weight.dtype)
        s = x.mean(dim=(2, 3), keepdim=True)       # (B, C, 1, 1)  squeeze: one number per channel
        return self.gate(self.mlp(s))              # (B, C, 1, 1)  excitation: one weight in (0, 1) each


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
