"""ResNets with an optional attention module in every residual block: plain, SE-ResNet, CBAM-ResNet.

``attention=None | "se" | "cbam"`` places the module where both papers place it: on the residual
branch, after its last BatchNorm and before the identity (shortcut) is added::

    out = bn_last(conv_last(...))     # the residual branch
    out = attention(out)              # SE or CBAM re-weights the branch (absent when attention=None)
    out = relu(out + shortcut(x))

Two families share one :class:`ResNet` class:

* ImageNet size (:func:`resnet18`, :func:`resnet34`, :func:`resnet50`): a 7x7 stride-2 stem and a max
  pool, four stages of widths 64-128-256-512. With ``attention=None`` the layers, parameter counts and
  state-dict keys are torchvision's (``conv1, bn1, layer1.0.conv1, ..., fc``), so torchvision weights load
  with ``strict=True``; timm's ``seresnet50`` and CBAM ResNets load after
  :func:`course_pkg.weights.convert_timm_resnet_state_dict`.
* small (:func:`resnet_small`): a 3x3 stride-1 stem, no max pool, three stages (16-32-64 channels by
  default), for 32 to 64 pixel images; about 80k parameters, fast on a CPU.

The attention module of a block is its attribute ``attn`` (timm calls it ``se`` for every kind).
:func:`attention_modules` lists a model's SE/CBAM modules; their maps are recorded with
:func:`course_pkg.attention_maps.record_attention` (``"layer3.0.attn"`` for SE, ``"layer3.0.attn.channel"``
and ``"layer3.0.attn.spatial"`` for CBAM). timm's weights convert with
:func:`course_pkg.weights.convert_timm_resnet_state_dict`.
"""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

import torch
from torch import nn

from .cbam import CBAM
from .checks import check_image_batch, positive_int
from .squeeze_excite import SqueezeExcitation

__all__ = [
    "ATTENTION_KINDS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "ResidualBlockType",
    "attention_modules",
    "count_parameters",
    "make_attention",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet_small",
]

ATTENTION_KINDS = (None, "se", "cbam")


def _check_attention(attention: Optional[str]) -> Optional[str]:
    if isinstance(attention, bool):
        raise TypeError(f"attention={attention!r} is a bool; use None (plain ResNet), 'se' "
                        "(squeeze-and-excitation) or 'cbam' (channel + spatial attention)")
    if attention is None or (isinstance(attention, str) and attention.lower() == "none"):
        return None
    if isinstance(attention, str) and attention.lower() in ("se", "cbam"):
        return attention.lower()
    raise ValueError(f"attention={attention!r} is not known; use None (plain ResNet), 'se' (squeeze-and-excitation) "
                     "or 'cbam' (channel + spatial attention)")


def make_attention(attention: Optional[str], channels: int, reduction: int = 16) -> nn.Module:
    """The attention module of a residual block: ``nn.Identity()``, :class:`SqueezeExcitation` or :class:`CBAM`.

    Args:
        attention: ``None``, ``"se"`` or ``"cbam"``.
        channels: the residual branch's output channels.
        reduction: the bottleneck ratio ``r`` of the module's MLP.
    """
    kind = _check_attention(attention)
    if kind == "se":
        return SqueezeExcitation(channels, reduction=reduction)
    if kind == "cbam":
        return CBAM(channels, reduction=reduction)
    return nn.Identity()


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34), with attention before the shortcut is added.

    Shapes: ``(B, in_channels, H, W) -> (B, channels, H / stride, W / stride)``.
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, attention: Optional[str] = None,
                 reduction: int = 16) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.attn = make_attention(attention, out, reduction)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != out:  # the shortcut must match the branch's shape
            self.downsample = nn.Sequential(_conv1x1(in_channels, out, stride), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)   # (B, C, H', W')
        out = self.relu(self.bn1(self.conv1(x)))                          # (B, C, H', W')
        out = self.bn2(self.conv2(out))                                   # (B, C, H', W') last BN
        out = self.attn(out)                                              # re-weight the branch
        out += identity                                                   # in place, as torchvision: no copy
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride, "ResNet v1.5" like torchvision), 1x1 expand by 4 (ResNet-50).

    Shapes: ``(B, in_channels, H, W) -> (B, 4 * channels, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1, attention: Optional[str] = None,
                 reduction: int = 16) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = _conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = _conv1x1(channels, out)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.attn = make_attention(attention, out, reduction)
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(_conv1x1(in_channels, out, stride), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)   # (B, 4C, H', W')
        out = self.relu(self.bn1(self.conv1(x)))                          # (B, C, H, W)
        out = self.relu(self.bn2(self.conv2(out)))                        # (B, C, H', W')
        out = self.bn3(self.conv3(out))                                   # (B, 4C, H', W') last BN
        out = self.attn(out)                                              # re-weight the branch
        out += identity                                                   # in place, as torchvision: no copy
        return self.relu(out)


ResidualBlockType = Union[type[BasicBlock], type[Bottleneck]]  # the class of a ResNet's blocks

# torch.fx.symbolic_trace keeps the input check as a call in the graph (it runs on the real input then)
torch.fx.wrap("check_image_batch")


class ResNet(nn.Module):
    """A ResNet whose residual blocks may carry SE or CBAM attention.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. ``(3, 4, 6, 3)``.
        widths: the ``channels`` of each stage's blocks (outputs are ``widths * block.expansion``); the
            stem has ``widths[0]`` channels.
        num_classes: outputs of the classifier ``fc``.
        in_chans: channels of the input image.
        attention: ``None``, ``"se"`` or ``"cbam"``.
        reduction: ``r`` of the attention modules' MLPs.
        stem: ``"imagenet"`` (7x7 stride-2 convolution + 3x3 stride-2 max pool, for 224 px) or
            ``"small"`` (3x3 stride-1 convolution, for 32-64 px).

    Shapes:
        ``(B, in_chans, H, W) -> (B, num_classes)`` logits.
    """

    def __init__(self, block: ResidualBlockType, layers: Sequence[int], widths: Sequence[int] = (64, 128, 256, 512),
                 num_classes: int = 1000, in_chans: int = 3, attention: Optional[str] = None, reduction: int = 16,
                 stem: str = "imagenet") -> None:
        super().__init__()
        self.attention = _check_attention(attention)
        layers, widths = tuple(layers), tuple(widths)
        if len(layers) != len(widths) or not layers:
            raise ValueError(f"layers={layers} and widths={widths} must be non-empty and of the same length "
                             "(one entry per stage)")
        for name, values in (("layers", layers), ("widths", widths)):
            if any(not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1 for v in values):
                raise ValueError(f"{name} must hold positive integers, got {values}")
        positive_int("num_classes", num_classes)
        positive_int("in_chans", in_chans)
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem={stem!r} is not known; use 'imagenet' (224 px inputs) or 'small' (32-64 px)")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.stem = stem

        c0 = widths[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, c0, kernel_size=7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = _conv3x3(in_chans, c0)
        self.bn1 = nn.BatchNorm2d(c0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()

        in_channels = c0
        for i, (n, width) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(in_channels, width, stride if j == 0 else 1, attention, reduction))
                in_channels = width * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_stages = len(layers)
        self.num_features = in_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

        in_attention = {id(sub) for _, m in attention_modules(self) for sub in m.modules()}
        for m in self.modules():  # torchvision's initialisation (attention modules keep PyTorch's default)
            if isinstance(m, nn.Conv2d) and id(m) not in in_attention:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def stages(self) -> list[nn.Sequential]:
        """The stages ``layer1, layer2, ...`` in order."""
        return [getattr(self, f"layer{i + 1}") for i in range(self.num_stages)]

    def _check_input(self, x: torch.Tensor) -> None:
        check_image_batch(x, self.in_chans, "x", "ResNet", "in_chans", self.conv1.weight.dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map: ``(B, in_chans, H, W) -> (B, num_features, H/s, W/s)``."""
        self._check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))   # (B, widths[0], H/4 or H, W/4 or W)
        for stage in self.stages():
            x = stage(x)                                        # stride 2 from the second stage on
        return x

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool and classifier: ``(B, num_features, h, w) -> (B, num_classes)``."""
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------
def resnet18(num_classes: int = 1000, attention: Optional[str] = None, in_chans: int = 3,
             reduction: int = 16) -> ResNet:
    """ResNet-18 (basic blocks 2-2-2-2); ``attention="se"`` or ``"cbam"`` adds a module to every block."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans, attention=attention,
                  reduction=reduction)


def resnet34(num_classes: int = 1000, attention: Optional[str] = None, in_chans: int = 3,
             reduction: int = 16) -> ResNet:
    """ResNet-34 (basic blocks 3-4-6-3)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, attention=attention,
                  reduction=reduction)


def resnet50(num_classes: int = 1000, attention: Optional[str] = None, in_chans: int = 3,
             reduction: int = 16) -> ResNet:
    """ResNet-50 (bottleneck blocks 3-4-6-3); with ``attention=None`` it is torchvision's ``resnet50``."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans, attention=attention,
                  reduction=reduction)


def resnet_small(num_classes: int = 10, attention: Optional[str] = None, in_chans: int = 3,
                 widths: Sequence[int] = (16, 32, 64), blocks: Sequence[int] = (1, 1, 1),
                 reduction: int = 4) -> ResNet:
    """A small ResNet for 32-64 px images: 3x3 stem, stages of basic blocks with strides 1, 2, 2.

    With the defaults it has about 80k parameters (SE adds about 2.8k, CBAM about 2.9k) and its last
    stage sees a 16 x 16 map of a 64 px image. ``reduction`` defaults to 4 because the stages are
    narrow (16 channels / 16 would leave a one-unit bottleneck).
    """
    if len(tuple(widths)) != len(tuple(blocks)):
        raise ValueError(f"widths={tuple(widths)} and blocks={tuple(blocks)} must have the same length, "
                         f"one entry per stage (the ResNet's layers={tuple(blocks)} and "
                         f"widths={tuple(widths)})")
    return ResNet(BasicBlock, blocks, widths=widths, num_classes=num_classes, in_chans=in_chans,
                  attention=attention, reduction=reduction, stem="small")


# ------------------------------------------------------------------------------------------------
# Inspecting and loading
# ------------------------------------------------------------------------------------------------
def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every :class:`SqueezeExcitation` and :class:`CBAM` in ``model``, in order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (SqueezeExcitation, CBAM))]


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters (optionally only those that require a gradient)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
