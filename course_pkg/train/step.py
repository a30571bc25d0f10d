"""One optimiser step on a batch: forward under _autocast, cross-entropy, backward, clipping, step."""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .inputs import _check_labels
from .precision import _autocast

__all__ = ["train_step"]


def _check_grad_clip(grad_clip: Any) -> Optional[float]:
    """``grad_clip``: None or a positive, finite gradient norm (True is not a norm: it would clip to 1)."""
    if grad_clip is None:
        return None
    if isinstance(grad_clip, bool) or not isinstance(grad_clip, numbers.Real):
        raise TypeError(f"grad_clip={grad_clip!r} is a {type(grad_clip).__name__}; use the largest "
                        "gradient norm allowed, a positive number such as 1.0 (or None: no clipping)"
                        + (" - True would clip to a norm of 1" if grad_clip is True else ""))
    if not (math.isfinite(grad_clip) and grad_clip > 0):
        raise ValueError(f"grad_clip={grad_clip!r} is not valid; use a positive, finite gradient norm "
                         "such as 1.0, or None")
    return float(grad_clip)


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
               scaler: Optional[torch.amp.GradScaler] = None, *, amp_dtype: Optional[torch.dtype] = None,
               label_smoothing: float = 0.0, grad_clip: Optional[float] = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch: forward (under _autocast), cross-entropy, backward, clipping, step.

    Args:
        net: the model (or its DDP wrapper, which averages the gradients in ``backward``).
        x, y: images ``(B, C, H, W)`` and labels ``(B,)`` on the model's device.
        scaler: a ``GradScaler`` for fp16 (None: no scaling).
        grad_clip: clip the total gradient norm to this value before the step (None: no clipping). After
            the call, the gradients left in the parameters are the clipped ones.

    Returns:
        ``(loss, logits)``: the batch's mean loss (a scalar) and its logits ``(B, num_classes)``.
    """
    grad_clip = _check_grad_clip(grad_clip)
    from ..checks import check_tensor

    check_tensor(x, "x", "train_step", "(B, C, H, W)")
    check_tensor(y, "y", "train_step", "(B,)")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (e.g. torch.optim.AdamW(model.parameters())), "
                        f"got a {type(optimizer).__name__}")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) or not (
            0 <= label_smoothing < 1):
        raise ValueError(f"label_smoothing={label_smoothing!r} is not valid; use a number in [0, 1)")
    scaler = scaler if scaler is not None else torch.amp.GradScaler("cpu", enabled=False)
    with _autocast(x.device, amp_dtype):
        logits = net(x)                                             # (B, num_classes)
    if logits.dim() == 2:
        _check_labels(y, logits.shape[1], "train_step")
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()                                   # DDP averages gradients here
    if grad_clip is not None:
        scaler.unscale_(optimizer)                                  # clip the true gradients, not scaled ones
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), logits.detach()


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from ..checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
