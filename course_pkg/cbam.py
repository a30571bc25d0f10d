"""CBAM, the Convolutional Block Attention Module (Woo et al., 2018): channel, then spatial attention.

On a feature map ``F`` of shape ``(B, C, H, W)``:

* **channel attention** ``M_c``: average-pool and max-pool every channel over all positions, pass both
  ``C``-vectors through one *shared* MLP (``C -> C/r -> C``), add the two outputs, sigmoid:
  ``M_c(F) = sigmoid(MLP(avgpool(F)) + MLP(maxpool(F)))``, one weight per channel, ``(B, C, 1, 1)``;
* **spatial attention** ``M_s``: average and max *across channels* at every position give two
  ``H x W`` maps; concatenate them, convolve with a 7x7 kernel, sigmoid:
  ``M_s(F) = sigmoid(conv7x7([mean_c(F); max_c(F)]))``, one weight per position, ``(B, 1, H, W)``;
* in sequence: ``F' = M_c(F) * F``, then ``F'' = M_s(F') * F'``.

Where this code follows and where it departs from the paper, the official code
(github.com/Jongchan/attention-module) and timm (``timm.layers.cbam.CbamModule``):

* **MLP bias.** The paper writes the MLP as two weight matrices ``W_0``, ``W_1`` with no bias; the
  official code uses ``nn.Linear`` layers *with* bias; timm's default has none. The default here is
  ``mlp_bias=False`` (paper and timm); ``mlp_bias=True`` reproduces the official code. With a bias,
  ``fc2``'s bias enters twice (once per pooled branch), exactly as in the official code.
* **BatchNorm after the 7x7 convolution.** The paper does not mention it; the official code
  (``BasicConv(2, 1, 7, relu=False)``, a bias-free convolution followed by a BatchNorm) and timm
  (``ConvNormAct``) both have it. It is kept by default (``spatial_norm=True``), because both
  reference implementations train with it; ``spatial_norm=False`` gives the paper's equation, with a
  convolution bias instead.
* **Pooling order.** The paper (and timm) concatenate ``[mean, max]``; the official code
  concatenates ``[max, mean]``. The order only permutes the two input channels of the 7x7
  convolution: an official checkpoint converts by flipping that weight along its input-channel
  dimension (``weight.flip(1)``), which :func:`course_pkg.weights.convert_official_cbam_state_dict` does.
* **Layout.** The MLP layers are 1x1 convolutions (``channel.fc1``, ``channel.fc2``) like timm's, so
  their weights load as they are; timm keeps the spatial convolution and its norm one level deeper
  (``spatial.conv.conv``, ``spatial.conv.bn``) than here (``spatial.conv``, ``spatial.bn``):
  :func:`course_pkg.weights.convert_timm_cbam_state_dict` renames those keys.

To see the two maps, record them (:func:`course_pkg.attention_maps.record_attention`): a CBAM module
called ``name`` gives ``"name.channel"`` ``(B, C)`` and ``"name.spatial"`` ``(B, H, W)``.

The converters from timm and official-code state dicts live in :mod:`course_pkg.weights`.
"""

from __future__ import annotations

import numbers
from typing import Optional

import torch
from torch import nn

from .attention_tap import AttentionTap
from .checks import check_dtype_matches, check_tensor
from .squeeze_excite import ChannelMLP, check_feature_map

__all__ = [
    "CBAM",
    "ChannelAttention",
    "SpatialAttention",
]


def _check_spatial_input(x: torch.Tensor, dtype: torch.dtype, owner: str = "SpatialAttention") -> torch.Tensor:
    """Raise a clear error unless ``x`` is a 4-D tensor ``(B, C, H, W)`` (any ``C``) of the weights' ``dtype``."""
    check_tensor(x, "x", owner, "(B, C, H, W)")
    if x.dim() != 4:
        how = ("add a batch dimension with x.unsqueeze(0) for a single map" if x.dim() == 3
               else "pass a batch of shape (B, C, H, W)")
        raise ValueError(f"{owner} expects a 4-D input (B, C, H, W), got a {x.dim()}-D tensor "
                         f"of shape {tuple(x.shape)}; {how}")
    check_dtype_matches(x, dtype, "x", owner)
    return x


# torch.fx.symbolic_trace keeps the input checks as calls in the graph (they run on the real input then)
torch.fx.wrap("check_feature_map")
torch.fx.wrap("_check_spatial_input")


class ChannelAttention(ChannelMLP):
    """CBAM's channel attention: a shared MLP over the average- and max-pooled descriptors.

    Args:
        channels: ``C``.
        reduction: ``r``; the MLP's hidden layer has ``C // r`` units.
        hidden_channels: the hidden width directly (overrides ``reduction``).
        mlp_bias: give the two MLP layers a bias (the official code does; the paper and timm do not).

    Shapes:
        input ``(B, C, H, W)`` -> output ``(B, C, H, W)``; recorded channel weights ``(B, C)``.
    """

    def __init__(self, channels: int, reduction: int = 16, hidden_channels: Optional[int] = None,
                 mlp_bias: bool = False) -> None:
        super().__init__(channels, reduction, hidden_channels, bias=mlp_bias)  # fc1 = W_0, fc2 = W_1

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """The channel weights ``M_c(x)``, ``(B, C, 1, 1)`` in ``(0, 1)``."""
        check_feature_map(x, self.channels, f"ChannelAttention(channels={self.channels})",
                          self.fc1.weight.dtype)
        avg = x.mean(dim=(2, 3), keepdim=True)           # (B, C, 1, 1) average-pooled descriptor
        mx = x.amax(dim=(2, 3), keepdim=True)            # (B, C, 1, 1) max-pooled descriptor
        return self.gate(self.mlp(avg) + self.mlp(mx))   # (B, C, 1, 1) same MLP for both


class SpatialAttention(nn.Module):
    """CBAM's spatial attention: channel-wise mean and max maps, a ``k x k`` convolution, a sigmoid.

    Args:
        kernel_size: odd size of the convolution (7 in the paper; 3 is the ablation's alternative).
        norm: a BatchNorm after the convolution (official code and timm); without it the
            convolution has a bias, as in the paper's equation.

    Shapes:
        input ``(B, C, H, W)`` (any ``C``) -> output ``(B, C, H, W)``; recorded map ``(B, H, W)``.
    """

    def __init__(self, kernel_size: int = 7, norm: bool = True) -> None:
        super().__init__()
        if isinstance(kernel_size, (str, bool, float)) or kernel_size is None:
            raise TypeError(f"kernel_size={kernel_size!r} is a {type(kernel_size).__name__}; use a positive "
                            "odd int (7 in the paper)")
        if not isinstance(kernel_size, numbers.Integral) or kernel_size < 1 \
                or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer (7 in the paper), got {kernel_size!r}; "
                             "an even kernel would shift the map by half a pixel")
        self.kernel_size = kernel_size = int(kernel_size)
        # 2 input maps ([mean; max] across channels) -> 1 map; padding keeps H x W
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=not norm)
        self.bn = nn.BatchNorm2d(1) if norm else nn.Identity()
        self.gate = nn.Sigmoid()
        self.tap = AttentionTap("spatial")                    # the map (B, H, W) is seen here

    def spatial_map(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial map ``M_s(x)``, ``(B, 1, H, W)`` in ``(0, 1)``."""
        _check_spatial_input(x, self.conv.weight.dtype)
        pooled = torch.cat([x.mean(dim=1, keepdim=True),     # (B, 1, H, W) average over channels
                            x.amax(dim=1, keepdim=True)],    # (B, 1, H, W) max over channels
                           dim=1)                            # (B, 2, H, W) order [mean, max] (paper, timm)
        return self.gate(self.bn(self.conv(pooled)))         # (B, 1, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.tap(self.spatial_map(x))                     # (B, 1, H, W)
        return x * m


    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"


class CBAM(nn.Module):
    """The Convolutional Block Attention Module: channel attention, then spatial attention.

    Args:
        channels: ``C``.
        reduction: ``r`` of the channel MLP (16 in the paper).
        kernel_size: the spatial convolution's size (7 in the paper).
        hidden_channels: the channel MLP's hidden width directly (overrides ``reduction``).
        mlp_bias: biases in the channel MLP (official code: yes; paper and timm: no).
        spatial_norm: BatchNorm after the spatial convolution (official code and timm: yes; paper: no).

    Shapes:
        input ``(B, C, H, W)`` -> output ``(B, C, H, W)``; ``record_attention`` records
        ``"<name>.channel"`` ``(B, C)`` and ``"<name>.spatial"`` ``(B, H, W)``.

    Configured alike (``mlp_bias=False``, ``spatial_norm=True``, same hidden width), it computes what
    ``timm.layers.cbam.CbamModule`` computes; see the module docstring for the departures.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7,
                 hidden_channels: Optional[int] = None, mlp_bias: bool = False, spatial_norm: bool = True) -> None:
        super().__init__()
        self.channel = ChannelAttention(channels, reduction, hidden_channels, mlp_bias=mlp_bias)
        self.spatial = SpatialAttention(kernel_size, norm=spatial_norm)

    @property
    def channels(self) -> int:
        return self.channel.channels



    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_feature_map(x, self.channels, f"CBAM(channels={self.channels})",
                          self.channel.fc1.weight.dtype)
        x = self.channel(x)   # (B, C, H, W) F' = M_c(F) * F
        x = self.spatial(x)   # (B, C, H, W) F'' = M_s(F') * F'
        return x


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
