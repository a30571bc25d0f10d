"""Chapter 5 exercises: CBAM's two attention maps, then the whole module.

1. ``channel_attention``: a shared MLP on the average- and max-pooled descriptors -> ``(B, C)`` weights.
2. ``spatial_map``: [mean; max] across channels -> a k x k convolution -> sigmoid -> ``(B, H, W)``.
3. ``CBAMBlock``: the module (``self.fc1``, ``self.fc2``, ``self.conv``): channel, then spatial.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import register
from .core import Case, Exercise, Mistake, check_in_unit_interval
from .solutions import ch05 as ref


def _in_unit_interval(out: object, args: tuple) -> None:
    check_in_unit_interval(out, "attention weights", "Add the two MLP outputs first, then apply one sigmoid.",
                           open_interval=False)


def _channel_args(b: int, c: int, hidden: int, h: int, w: int, spike: bool = False):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        x = torch.randn(b, c, h, w)
        if spike:
            x[:, :, 1, 2] += 6.0                      # one bright position: the max moves, the mean barely
        return x, torch.randn(hidden, c) * 0.5, torch.randn(c, hidden) * 0.5
    return make


def _spatial_args(b: int, c: int, h: int, w: int, k: int):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        return torch.randn(b, c, h, w), torch.randn(1, 2, k, k) * 0.3, torch.randn(1)
    return make


channel_attention = register(Exercise(
    id="ch05.channel_attention",
    title="CBAM's channel attention",
    reference=ref.channel_attention,
    cases=[
        Case("constant map", lambda: (torch.ones(1, 4, 3, 3) * torch.arange(4.0).view(1, 4, 1, 1),
                                      torch.randn(2, 4), torch.randn(4, 2)),
             "when mean and max agree, the result is sigmoid(2 * MLP(descriptor))"),
        Case("one bright position", _channel_args(2, 8, 2, 4, 5, spike=True),
             "a bright spot changes the max-pooled descriptor much more than the average: both must feed the MLP"),
        Case("C = 16, r = 4", _channel_args(3, 16, 4, 6, 6),
             "x (B, C, H, W), w1 (C/r, C), w2 (C, C/r) -> weights (B, C)"),
    ],
    hints=[
        "Pool twice over the positions: avg = x.mean(dim=(2, 3)) and mx = x.amax(dim=(2, 3)), both (B, C).",
        "One MLP for both: mlp(v) = relu(v @ w1.T) @ w2.T (no biases, as in the paper's equation).",
        "Add the two MLP outputs, then one sigmoid: torch.sigmoid(mlp(avg) + mlp(mx)).",
    ],
    properties=[_in_unit_interval],
    mistakes=[
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.mean((2, 3)) @ w1.T) @ w2.T), "max-pooled",
                "uses the average-pooled descriptor only (that is SE)"),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu(x.mean((2, 3)) @ w1.T) @ w2.T)
                + torch.sigmoid(F.relu(x.amax((2, 3)) @ w1.T) @ w2.T), "(0, 1)", "one sigmoid per branch, then adds"),
        Mistake(lambda x, w1, w2: torch.sigmoid(F.relu((x.mean((2, 3)) + x.amax((2, 3))) @ w1.T) @ w2.T),
                "values differ", "adds the descriptors before the MLP"),
    ],
))

spatial_map = register(Exercise(
    id="ch05.spatial_map",
    title="CBAM's spatial attention map",
    reference=ref.spatial_map,
    cases=[
        Case("a 1x1 kernel", lambda: (torch.randn(1, 3, 4, 4), torch.tensor([[[[1.0]], [[0.0]]]]), torch.zeros(1)),
             "a 1x1 kernel that keeps only the first pooled map gives sigmoid(mean over channels)"),
        Case("3x3 kernel, [mean, max] order", _spatial_args(2, 5, 6, 7, 3),
             "the two pooled maps are stacked in the order [mean, max] (paper, timm) along dim 1"),
        Case("the paper's 7x7 kernel", _spatial_args(2, 8, 9, 9, 7),
             "padding k // 2 keeps the map H x W; the output is (B, H, W)"),
    ],
    hints=[
        "Pool across the channels at every position: x.mean(dim=1, keepdim=True) and x.amax(dim=1, keepdim=True), "
        "each (B, 1, H, W).",
        "Stack them as [mean, max] with torch.cat(..., dim=1) -> (B, 2, H, W), then "
        "F.conv2d(pooled, weight, bias, padding=k // 2).",
        "Finish with torch.sigmoid and drop the channel axis: [:, 0] gives (B, H, W).",
    ],
    properties=[_in_unit_interval],
    mistakes=[
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1),
                                                       w, b, padding=w.shape[-1] // 2))[:, 0],
                "[mean, max]", "stacks [max, mean], the official code's order"),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1),
                                                       w, b))[:, 0],
                "shape", "forgets the padding"),
        Mistake(lambda x, w, b: torch.sigmoid(F.conv2d(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1),
                                                       w, b, padding=w.shape[-1] // 2)),
                "expected shape", "keeps the channel axis"),
    ],
))


class _SpatialFirst(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        x = x * torch.sigmoid(self.conv(pooled))
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        return x * mc[:, :, None, None]


class _SpatialOnInput(ref.CBAMBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))
        mc = torch.sigmoid(self.fc2(torch.relu(self.fc1(avg))) + self.fc2(torch.relu(self.fc1(mx))))
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)  # on the input
        return x * mc[:, :, None, None] * torch.sigmoid(self.conv(pooled))


class _NoPadding(ref.CBAMBlock):
    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__(channels, reduction, kernel_size)
        self.conv = torch.nn.Conv2d(2, 1, kernel_size)


CBAMBlock = register(Exercise(
    id="ch05.CBAMBlock",
    title="The CBAM module",
    reference=ref.CBAMBlock,
    kind="module",
    cases=[
        Case("C = 8, r = 2, 3x3 kernel", lambda: ({"channels": 8, "reduction": 2, "kernel_size": 3},
                                                (torch.randn(2, 8, 5, 5),)),
             "channel attention first, then the spatial map computed on the channel-refined features"),
        Case("C = 16, r = 4, 7x7 kernel", lambda: ({"channels": 16, "reduction": 4, "kernel_size": 7},
                                                 (torch.randn(1, 16, 8, 6),)),
             "padding kernel_size // 2 keeps the map's size; the output has the input's shape"),
        Case("default kernel", lambda: ({"channels": 4, "reduction": 2}, (torch.randn(3, 4, 9, 9),)),
             "kernel_size defaults to 7, as in the paper"),
    ],
    hints=[
        "In __init__: self.fc1 = nn.Linear(channels, channels // reduction, bias=False), "
        "self.fc2 = nn.Linear(channels // reduction, channels, bias=False), "
        "self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2).",
        "Channel step: mc = sigmoid(mlp(avg) + mlp(max)) with mlp(v) = fc2(relu(fc1(v))); x = x * mc[:, :, None, None].",
        "Spatial step on that new x: pooled = cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1); "
        "return x * sigmoid(self.conv(pooled)).",
    ],
    mistakes=[
        Mistake(_SpatialFirst, "channel attention first", "spatial attention before channel attention"),
        Mistake(_SpatialOnInput, "values differ", "computes the spatial map on the input, not on the refined map"),
        Mistake(_NoPadding, "raised", "no padding: the map shrinks and no longer fits the features"),
    ],
))
