"""Chapter 4 exercises: Squeeze-and-Excitation, one step at a time, then the whole block.

1. ``squeeze``: global average pooling, ``(B, C, H, W) -> (B, C)``.
2. ``excitation``: FC -> ReLU -> FC -> sigmoid, one weight in (0, 1) per channel.
3. ``SEBlock``: the module, with ``self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)`` and
   ``self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)`` (with bias): 1x1 convolutions on
   the squeezed ``(B, C, 1, 1)`` map, exactly like the chapter's ``course_pkg.SqueezeExcitation`` (a 1x1
   convolution on a 1 x 1 map is a fully connected layer; this layout loads torchvision's and timm's SE weights).
"""

from __future__ import annotations

import torch
from torch import nn

from . import register
from .core import Case, Exercise, Mistake, check_in_unit_interval
from .solutions import ch04 as ref


def _in_unit_interval(out: object, args: tuple) -> None:
    check_in_unit_interval(out, "each channel weight", "End with a sigmoid.")


def _excitation_args(c: int, hidden: int, batch: int, negative: bool = False):  # type: ignore[no-untyped-def]
    def make() -> tuple:
        z = torch.rand(batch, c) if negative else torch.randn(batch, c)
        w1 = torch.randn(hidden, c)
        b1 = torch.randn(hidden) - (3.0 if negative else 0.0)   # negative: most hidden units below zero
        return z, w1, b1, torch.randn(c, hidden), torch.randn(c)
    return make


squeeze = register(Exercise(
    id="ch04.squeeze",
    title="Squeeze: global average pooling",
    reference=ref.squeeze,
    cases=[
        Case("constant channels", lambda: (torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 4, 4).clone(),),
             "a channel that is constant squeezes to that constant"),
        Case("one bright pixel", lambda: (torch.zeros(2, 3, 4, 5).index_put_((torch.tensor([0]), torch.tensor([1]),
                                          torch.tensor([2]), torch.tensor([3])), torch.tensor(20.0)),),
             "the squeeze averages over all H x W positions: one bright pixel of 20 in a 4 x 5 map gives 1"),
        Case("a batch of maps", lambda: (torch.randn(4, 6, 7, 3),),
             "(B, C, H, W) -> (B, C): average over height and width, keep batch and channels"),
    ],
    hints=[
        "Each channel of each image becomes one number: the mean of its H x W values.",
        "x.mean(dim=(2, 3)) averages over the two spatial axes.",
    ],
    mistakes=[
        Mistake(lambda x: x.amax(dim=(2, 3)), "averages over all H x W", "max pooling"),
        Mistake(lambda x: x.mean(dim=1), "shape", "averages over the channels"),
        Mistake(lambda x: x.mean(dim=(2, 3), keepdim=True), "expected shape", "keeps the 1 x 1 axes"),
    ],
))

excitation = register(Exercise(
    id="ch04.excitation",
    title="Excitation: from a descriptor to channel weights",
    reference=ref.excitation,
    cases=[
        Case("all-zero weights", lambda: (torch.randn(1, 4), torch.zeros(2, 4), torch.zeros(2), torch.zeros(4, 2),
                                          torch.zeros(4)), "with all parameters zero every weight is sigmoid(0) = 0.5"),
        Case("the ReLU matters", _excitation_args(8, 4, 2, negative=True),
             "hidden units below zero must be cut to zero by the ReLU between the two layers"),
        Case("C = 16, r = 4, a batch of 3", _excitation_args(16, 4, 3),
             "z (B, C), w1 (C/r, C), w2 (C, C/r) -> (B, C); like nn.Linear, multiply by the transposed weight"),
    ],
    hints=[
        "Two fully connected layers: h = relu(z @ w1.T + b1), then s = h @ w2.T + b2.",
        "The weights are sigmoid(s): one number in (0, 1) per channel.",
        "w1 has shape (C/r, C) like an nn.Linear(C, C/r) weight, so the product is z @ w1.T.",
    ],
    properties=[_in_unit_interval],
    mistakes=[
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid((z @ w1.T + b1) @ w2.T + b2), "ReLU", "forgets the ReLU",
                "there is no ReLU between the two layers: h = torch.relu(z @ w1.T + b1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1.T + b1) @ w2.T), "values differ",
                "forgets the second bias b2", "the second layer's bias b2 is missing: s = h @ w2.T + b2."),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1.T) @ w2.T + b2), "values differ",
                "forgets the first bias b1", "the first layer's bias b1 is missing: h = torch.relu(z @ w1.T + b1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.relu(z @ w1.T + b1) @ w2.T + b2, "(0, 1)", "forgets the sigmoid",
                "end with torch.sigmoid: each channel weight must lie in (0, 1)."),
        Mistake(lambda z, w1, b1, w2, b2: torch.softmax(torch.relu(z @ w1.T + b1) @ w2.T + b2, -1), "values differ",
                "a softmax makes the channels compete; SE uses independent sigmoids"),
        Mistake(lambda z, w1, b1, w2, b2: torch.sigmoid(torch.relu(z @ w1 + b1) @ w2 + b2), "raised",
                "forgets to transpose the weights"),
    ],
))


class _SEMaxPool(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.amax(dim=(2, 3), keepdim=True)))))


class _SEWeightsOnly(ref.SEBlock):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))


class _SEWideBottleneck(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels * reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels * reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))


class _SELinear(nn.Module):
    """nn.Linear layers: the same function, but the parameters do not have the 1x1 convolutions' shapes."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * w[:, :, None, None]


SEBlock = register(Exercise(
    id="ch04.SEBlock",
    title="The Squeeze-and-Excitation block as a module",
    reference=ref.SEBlock,
    kind="module",
    cases=[
        Case("C = 8, r = 2", lambda: ({"channels": 8, "reduction": 2}, (torch.randn(2, 8, 5, 5),)),
             "squeeze -> fc1 -> ReLU -> fc2 -> sigmoid -> scale; the output has the input's shape"),
        Case("C = 16, r = 4, non-square map", lambda: ({"channels": 16, "reduction": 4}, (torch.randn(1, 16, 3, 7),)),
             "the bottleneck has channels // reduction units"),
        Case("r = 1", lambda: ({"channels": 6, "reduction": 1}, (torch.randn(3, 6, 4, 4) * 3,)),
             "reduction 1 keeps the width; the block still re-weights each channel by a number in (0, 1)"),
    ],
    hints=[
        "In __init__: self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1) and "
        "self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1), as in the chapter's module.",
        "In forward: s = x.mean(dim=(2, 3), keepdim=True) has shape (B, C, 1, 1), so the 1x1 convolutions apply "
        "directly: w = torch.sigmoid(self.fc2(torch.relu(self.fc1(s)))), also (B, C, 1, 1).",
        "Scale: return x * w, the input with each channel multiplied by its weight (w broadcasts over H and W).",
    ],
    mistakes=[
        Mistake(_SEMaxPool, "values differ", "squeezes with a max instead of a mean",
                "the squeeze is an average over the positions (x.mean(dim=(2, 3), keepdim=True)), not a max."),
        Mistake(_SEWeightsOnly, "expected shape", "returns the weights instead of the scaled map",
                "return the input scaled by the weights, x * w, not the weights themselves."),
        Mistake(_SEWideBottleneck, "wrong shapes", "multiplies by the reduction instead of dividing",
                "the bottleneck has channels // reduction units: it is narrower than the input."),
        Mistake(_SELinear, "wrong shapes", "nn.Linear layers instead of 1x1 convolutions",
                "build fc1 and fc2 as nn.Conv2d(..., kernel_size=1), as in the chapter's SqueezeExcitation "
                "(their weights have shape (out, in, 1, 1)); squeeze with keepdim=True so they apply directly."),
    ],
))
