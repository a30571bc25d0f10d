"""The optimiser and its schedule: AdamW parameter groups, the cosine learning-rate schedule, and the
three objects a :func:`course_pkg.train.fit` run steps (optimiser, scheduler, gradient scaler)."""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import torch
from torch import nn

from ..checks import positive_int

__all__ = ["cosine_schedule", "param_groups"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weight matrices and kernels only (timm's convention).

    No decay for biases and normalisation weights (every parameter with fewer than 2 dimensions) nor for
    the parameters the model names in ``model.no_weight_decay()`` (a ViT's ``pos_embed`` and
    ``cls_token``); frozen parameters are left out.

    Returns:
        ``[{"params": [...], "weight_decay": weight_decay, "names": [...]}, {"params": [...],
        "weight_decay": 0.0, "names": [...]}]``.
    """
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) or not (
            math.isfinite(weight_decay) and weight_decay >= 0):
        raise (TypeError if not isinstance(weight_decay, numbers.Real) or isinstance(weight_decay, bool)
               else ValueError)(f"weight_decay={weight_decay!r} is not valid; use a finite number >= 0 "
                                "such as 0.05")
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay: dict[str, nn.Parameter] = {}
    no_decay: dict[str, nn.Parameter] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or name in skip else decay)[name] = p
    return [{"params": list(decay.values()), "weight_decay": weight_decay, "names": list(decay)},
            {"params": list(no_decay.values()), "weight_decay": 0.0, "names": list(no_decay)}]


def cosine_schedule(total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """The learning-rate factor of each step: linear warm-up to 1 over ``warmup_steps``, then a cosine to 0.

    ``factor(step)`` is ``(step + 1) / warmup_steps`` during warm-up, then
    ``0.5 * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps)))``; use it with
    ``torch.optim.lr_scheduler.LambdaLR``.
    """
    total_steps = positive_int("total_steps", total_steps)
    if not isinstance(warmup_steps, numbers.Integral) or isinstance(warmup_steps, bool) or warmup_steps < 0:
        raise ValueError(f"warmup_steps={warmup_steps!r} is not valid; use an integer >= 0")
    warmup_steps = int(warmup_steps)
    if warmup_steps >= total_steps > 1:
        raise ValueError(f"warmup_steps={warmup_steps} is not shorter than total_steps={total_steps}: the "
                         "learning rate would never reach its peak and decay; use fewer warm-up steps "
                         f"(at most {total_steps - 1})")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps)))

    return factor


def make_optimizer(model: nn.Module, *, lr: float, weight_decay: float, epochs: int, steps_per_epoch: int,
                   warmup_epochs: float, use_scaler: bool
                   ) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR, torch.amp.GradScaler]:
    """AdamW over :func:`param_groups`, its :func:`cosine_schedule` stepped once per batch, and a
    ``GradScaler`` (enabled for fp16 only).

    The warm-up is ``warmup_epochs`` epochs rounded to whole steps, and always shorter than the run
    (``fit`` has checked ``warmup_epochs < epochs``).

    Returns:
        ``(optimizer, scheduler, scaler)``.
    """
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    total = epochs * steps_per_epoch
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), max(0, total - 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup))
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    return optimizer, scheduler, scaler


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from ..checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
