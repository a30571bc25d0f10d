"""Scoring a classifier: :func:`evaluate` (top-1 accuracy) and the loss/accuracy pass that ``fit``'s
validation shares with it, each process scoring its share inside a process group."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..checks import positive_int
from .distributed import _all_sum, _world
from .inputs import DataArg, _as_dataset, _check_labels, _compute_device, _model_device
from .precision import _amp_setup, _autocast

__all__ = ["evaluate"]


@torch.no_grad()
def _eval_pass(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
              amp_dtype: Optional[torch.dtype], num_workers: int = 0) -> tuple[float, float, float]:
    """(loss sum, correct, count) over this process's share of ``dataset`` (every world_size-th item).

    The model runs in eval mode on batches ``(B, C, H, W)`` and is put back in the mode it was in.
    """
    rank, world = _world()
    shard = dataset if world == 1 else Subset(dataset, range(rank, len(dataset), world))
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    loss_sum = correct = count = 0.0
    try:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with _autocast(device, amp_dtype):
                logits = model(x)
            if logits.dim() == 2:
                _check_labels(y, logits.shape[1], "evaluation")
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += y.numel()
    finally:
        model.train(was_training)
    return loss_sum, correct, count


def evaluate(model: nn.Module, data: DataArg, batch_size: int = 256, device: Union[str, torch.device, None] = None,
             amp: Union[str, bool] = "off") -> float:
    """Top-1 accuracy of ``model`` on ``data`` (a Dataset or ``(images, labels)``), in [0, 1].

    Runs on ``device`` (default: where the model's parameters are) in eval mode, and puts the model back
    in the mode it was in. Inside a process group, each process scores a share and the counts are summed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (the network to score), got {model!r} of type "
                        f"{type(model).__name__}")
    dataset = _as_dataset(data, "data")
    if len(dataset) == 0:
        raise ValueError("data is empty (0 images): there is nothing to evaluate; pass a non-empty data set")
    positive_int("batch_size", batch_size)
    dev = _compute_device(device, "evaluate") if device is not None else _model_device(model)
    model.to(dev)
    amp_dtype, _ = _amp_setup(amp, dev)
    _, correct, count = _eval_pass(model, dataset, batch_size, dev, amp_dtype)
    correct, count = _all_sum([correct, count], dev)
    return correct / count


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from ..checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
