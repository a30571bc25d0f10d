"""A small CNN without BatchNorm: the model of the distributed-training test and of the data tests.

Its output for an image depends on that image only (GroupNorm, no dropout), so a distributed run and a
single-process run on the same global batch compute the same thing.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_image_batch, positive_int

__all__ = ["SimpleCNN", "simple_cnn"]


class SimpleCNN(nn.Module):
    """Three conv-GroupNorm-ReLU stages with 2x2 max pooling, global average pooling and a linear head.

    No BatchNorm and no dropout: its output for an image depends on that image only, so a distributed run
    and a single-process run on the same global batch compute the same thing.

    Shapes: ``(B, in_chans, H, W) -> (B, num_classes)``.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_chans", in_chans), ("width", width)):
            positive_int(name, value)
        self.in_chans = in_chans
        layers: list[nn.Module] = []
        cin = in_chans
        for i, cout in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(min(8, cout), cout), nn.ReLU()]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.in_chans, "x", "SimpleCNN", "in_chans", self.head.weight.dtype)
        x = self.features(x)                       # (B, 4 * width, H / 4, W / 4)
        return self.head(x.mean(dim=(2, 3)))       # (B, num_classes)


def simple_cnn(num_classes: int = 10, in_chans: int = 3, width: int = 32) -> SimpleCNN:
    """Build a :class:`SimpleCNN` (about 100k parameters at ``width=32``)."""
    return SimpleCNN(num_classes, in_chans, width)


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
