"""What the training functions are given, checked: the data as a Dataset, the device, the labels.

:func:`_as_dataset` turns the three accepted data forms into a ``Dataset``; :func:`_compute_device` parses
a device argument (refusing the meta device); :func:`_check_labels` refuses labels that are not class
indices the model can output.
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from ..env import as_device

#: what ``fit`` and ``evaluate`` accept as data (see :func:`_as_dataset`)
DataArg = Union[Dataset, tuple, Any]


def _as_dataset(data: DataArg, name: str) -> Dataset:
    """A Dataset from a Dataset, an object with ``.images`` and ``.labels``, or an ``(images, labels)`` pair."""
    from ..datasets import ImageDataset

    if isinstance(data, Dataset):
        return data
    if hasattr(data, "images") and hasattr(data, "labels"):
        return ImageDataset(data.images, data.labels)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return ImageDataset(data[0], data[1])
    raise TypeError(f"{name} must be a torch Dataset, an (images, labels) pair of tensors, or an object with "
                    f".images and .labels (e.g. make_clutter's result); got {type(data).__name__}")


def _compute_device(device: Any, fn: str) -> torch.device:
    """``device`` parsed by :func:`course_pkg.env.as_device` (None: the best one); the meta device, which
    holds shapes but no numbers, cannot compute a loss or an accuracy."""
    dev = as_device(device, "device", default=None)
    if dev.type == "meta":
        raise ValueError(f"{fn}: device={dev!r} holds shapes but no numbers, so there is no loss or accuracy "
                         "to compute; use 'cpu', 'cuda' or 'mps' (or leave device unset)")
    return dev


def _model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_labels(y: torch.Tensor, num_classes: int, where: str) -> None:
    """Labels ``(B,)`` must be integer class indices in ``[0, num_classes)`` (one device sync)."""
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{where}: the labels have dtype {y.dtype}; use integer class indices "
                         "(labels.long()), one per image")
    if y.numel() == 0:
        return
    lo, hi = torch.stack([y.min(), y.max()]).tolist()
    if lo < 0 or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        raise ValueError(f"{where}: the labels hold class {bad}, but the model outputs {num_classes} "
                         f"classes (logits of shape (B, {num_classes})), so labels must be in 0..{num_classes - 1}; "
                         f"build the model with num_classes={max(hi + 1, num_classes)}, or check the labels")
