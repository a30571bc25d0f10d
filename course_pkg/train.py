"""Training: a small, readable loop (``fit``), ``evaluate`` and the per-epoch ``History``.

``fit`` trains any classifier on a ``Dataset`` (or ``(images, labels)`` tensors) with AdamW, a cosine
learning-rate schedule, a ``tqdm`` progress bar, mixed precision on CUDA and a per-epoch history. It is
built from pieces that can be tested one by one: :func:`param_groups` (no weight decay for biases, norms
and what ``model.no_weight_decay()`` names), :func:`cosine_schedule`, :func:`train_step` (with gradient
clipping), and a ``DistributedSampler`` whose epoch is set every epoch (a new shuffled order each epoch).
It also runs unchanged under ``torchrun``: when a process group is initialised it wraps the model in
DistributedDataParallel and gives each process its shard of every global batch.

The command line lives in :mod:`course_pkg.cli.train` (``python -m course_pkg.train`` still runs it);
checkpoints and the model registry live in :mod:`course_pkg.bundled`, the small CNN in
:mod:`course_pkg.cnn`. Their names stay importable from here.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from .bundled import MODELS, Checkpoint, build_model, load_checkpoint, resolve_builder, save_checkpoint
from .checks import positive_int
from .cnn import SimpleCNN, simple_cnn
from .env import as_device, seed_everything

__all__ = [
    "MODELS", "Checkpoint", "History", "SimpleCNN",
    "build_model", "cosine_schedule", "evaluate", "fit", "load_checkpoint", "main", "param_groups",
    "resolve_builder", "save_checkpoint", "simple_cnn", "train_step",
]

DataArg = Union[Dataset, tuple, Any]


# ------------------------------------------------------------------------------------------------
# Data arguments, distributed helpers, mixed precision
# ------------------------------------------------------------------------------------------------

def _as_dataset(data: DataArg, name: str) -> Dataset:
    """A Dataset from a Dataset, an object with ``.images`` and ``.labels``, or an ``(images, labels)`` pair."""
    from .datasets import ImageDataset

    if isinstance(data, Dataset):
        return data
    if hasattr(data, "images") and hasattr(data, "labels"):
        return ImageDataset(data.images, data.labels)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return ImageDataset(data[0], data[1])
    raise TypeError(f"{name} must be a torch Dataset, an (images, labels) pair of tensors, or an object with "
                    f".images and .labels (e.g. make_clutter's result); got {type(data).__name__}")


def _world() -> tuple[int, int]:
    """(rank, world_size) of the process group, or (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum numbers over all processes (a no-op in a single process)."""
    _, world = _world()
    if world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _amp_setup(amp: Union[str, bool, None], device: torch.device) -> tuple[Optional[torch.dtype], bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``amp`` on ``device``."""
    choices = ("auto", "off", "fp16", "bf16")
    if amp is None or amp is False:
        amp = "off"
    elif amp is True:
        amp = "auto"
    if amp not in choices:
        raise ValueError(f"amp={amp!r} is not valid; use one of {choices} (or True/False)")
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None, False
    if amp == "auto":
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device, but training runs on {device.type!r}; "
                             "use amp='bf16' or amp='off'")
        return torch.float16, True
    return torch.bfloat16, False


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _compute_device(device: Any, fn: str) -> torch.device:
    """``device`` parsed by :func:`course_pkg.env.as_device` (None: the best one); the meta device, which
    holds shapes but no numbers, cannot compute a loss or an accuracy."""
    dev = as_device(device, "device", default=None)
    if dev.type == "meta":
        raise ValueError(f"{fn}: device={dev!r} holds shapes but no numbers, so there is no loss or accuracy "
                         "to compute; use 'cpu', 'cuda' or 'mps' (or leave device unset)")
    return dev


def _check_labels(y: torch.Tensor, num_classes: int, where: str) -> None:
    """Labels must be integer class indices in ``[0, num_classes)`` (one device sync)."""
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


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


class History:
    """The per-epoch record of a :func:`fit` run.

    ``history.records`` is a list of dicts (``epoch, train_loss, train_acc, val_loss, val_acc, lr,
    time_s``); ``history["val_acc"]`` is one key over all epochs; ``history.last`` the final epoch.
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        #: True when the run was stopped early (Ctrl-C / KeyboardInterrupt); ``records`` then holds the
        #: finished epochs only.
        self.interrupted: bool = False

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, key: str) -> list[Any]:
        if not self.records or key not in self.records[0]:
            known = sorted(self.records[0]) if self.records else []
            raise KeyError(f"history has no {key!r}; it records {known}")
        return [r[key] for r in self.records]

    @property
    def last(self) -> dict[str, Any]:
        if not self.records:
            raise IndexError("the history is empty: fit ran no epoch")
        return self.records[-1]

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, last={self.records[-1] if self.records else None})"


# ------------------------------------------------------------------------------------------------
# The pieces of a training step
# ------------------------------------------------------------------------------------------------

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


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer,
               scaler: Optional[torch.amp.GradScaler] = None, *, amp_dtype: Optional[torch.dtype] = None,
               label_smoothing: float = 0.0, grad_clip: Optional[float] = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on a batch: forward (under autocast), cross-entropy, backward, clipping, step.

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
    from .checks import check_tensor

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


# ------------------------------------------------------------------------------------------------
# Training and evaluation
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def _eval_pass(model: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
               amp_dtype: Optional[torch.dtype], num_workers: int = 0) -> tuple[float, float, float]:
    """(loss sum, correct, count) over this process's share of ``dataset`` (every world_size-th item)."""
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


def fit(model: nn.Module, train_data: DataArg, val_data: Optional[DataArg] = None, *, epochs: int = 5,
        batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 0.05, warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0, grad_clip: Optional[float] = None,
        device: Union[str, torch.device, None] = None, seed: int = 0, amp: Union[str, bool] = "auto",
        progress: bool = True, num_workers: int = 0, drop_last: bool = False,
        callback: Optional[Callable[[dict[str, Any]], None]] = None,
        save_state: Optional[Callable[[dict[str, Any]], None]] = None,
        resume_state: Optional[Mapping[str, Any]] = None, interrupt_note: bool = True) -> History:
    """Train a classifier with AdamW and a cosine schedule; returns the per-epoch :class:`History`.

    Args:
        model: maps ``(B, C, H, W)`` images to ``(B, num_classes)`` logits; trained in place.
        train_data, val_data: a Dataset of ``(image, label)``, an ``(images, labels)`` pair of tensors, or an
            object with ``.images`` and ``.labels`` such as :func:`course_pkg.data.make_clutter`'s result.
        epochs: passes over ``train_data``.
        batch_size: the *global* batch: inside a process group of ``W`` processes each takes
            ``batch_size / W`` images per step (it must divide evenly).
        lr: peak learning rate; it follows a cosine from ``lr`` to 0, after ``warmup_epochs`` of linear warm-up.
        weight_decay: AdamW's decoupled weight decay (not applied to biases and normalisation weights).
        label_smoothing: passed to the cross-entropy loss.
        grad_clip: clip the gradient norm to this value (None: no clipping).
        device: where to train; default :func:`course_pkg.get_device` (CUDA, then MPS, then CPU).
        seed: seeds the shuffling (and anything random in transforms); the same seed repeats the run.
        amp: mixed precision: ``"auto"`` (bf16 on CUDA GPUs that support it, else fp16 with a GradScaler;
            off on CPU), ``"bf16"``, ``"fp16"`` (CUDA only) or ``"off"``.
        progress: show a ``tqdm`` progress bar (only rank 0 does in a distributed run).
        num_workers: DataLoader worker processes.
        drop_last: drop the last, smaller batch of every epoch.
        callback: called with each epoch's record (a dict) after the epoch.
        save_state: called with the training state (a dict of plain data and tensors: ``epoch``, ``step``,
            ``optimizer``, ``scheduler``, ``scaler``, ``rng``, ``history``...) after every epoch, *before*
            ``callback``, and when a Ctrl-C stops the run at the end of a step; the command line writes
            it into the checkpoint so that ``--resume`` can continue exactly.
        resume_state: such a state: training continues where it stopped (same weights, optimiser,
            schedule, shuffled order and random numbers as an uninterrupted run); the model must already
            hold the weights saved with it.
        interrupt_note: print the line that says what ``fit`` returns after a Ctrl-C (for a notebook); a
            command line that says what it saved passes False.

    Ctrl-C (a ``KeyboardInterrupt``) never loses the finished epochs: the first Ctrl-C stops the run at
    the end of the current step (a second one stops at once), ``fit`` prints one line saying so, puts the
    model in eval mode and returns the :class:`History` of the finished epochs, with
    ``history.interrupted`` set to True. ``fit`` seeds the global random generators with ``seed`` and
    puts back the caller's generator states when it returns.

    Returns:
        :class:`History` with ``epoch, train_loss, train_acc, val_loss, val_acc, lr, time_s`` per epoch
        (``val_*`` are None without ``val_data``), measured over all processes.
    """
    ints = {}
    for name, value, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                            ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use an integer >= {lo}")
        if not isinstance(value, numbers.Integral) or value < lo:
            raise ValueError(f"{name}={value!r} is not valid; use an integer >= {lo}")
        ints[name] = int(value)                 # a NumPy integer works as a Python one
    epochs, batch_size, num_workers, seed = (ints[k] for k in ("epochs", "batch_size", "num_workers", "seed"))
    floats = {}
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("warmup_epochs", warmup_epochs),
                        ("label_smoothing", label_smoothing)):
        what = "a positive number such as 1e-3" if name == "lr" else "a finite number >= 0"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use {what}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r} is not valid; use {what}")
        floats[name] = float(value)
    lr, weight_decay, warmup_epochs, label_smoothing = (
        floats[k] for k in ("lr", "weight_decay", "warmup_epochs", "label_smoothing"))
    if lr == 0:
        raise ValueError("lr=0 is not valid; use a positive learning rate such as 1e-3")
    if label_smoothing >= 1:
        raise ValueError(f"label_smoothing={label_smoothing!r} is not valid; use a number in [0, 1)")
    if warmup_epochs >= epochs and warmup_epochs > 0:
        raise ValueError(f"warmup_epochs={warmup_epochs:g} is not shorter than the run (epochs={epochs}): the "
                         "learning rate would never reach lr and then decay; use warmup_epochs < epochs "
                         f"(e.g. {min(1.0, epochs / 10):g}), or train for more epochs")
    grad_clip = _check_grad_clip(grad_clip)
    for name, flag in (("progress", progress), ("drop_last", drop_last)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name}={flag!r} is a {type(flag).__name__}; use True or False")
    for name, fn in (("callback", callback), ("save_state", save_state)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name}={fn!r} is a {type(fn).__name__}, not callable; pass a function that "
                            "takes the epoch's record (a dict), or None")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {model!r} of type {type(model).__name__}")
    train_set = _as_dataset(train_data, "train_data")
    val_set = _as_dataset(val_data, "val_data") if val_data is not None else None
    if len(train_set) == 0:
        raise ValueError("train_data is empty (0 images): there is nothing to train on")
    if val_set is not None and len(val_set) == 0:
        raise ValueError("val_data is empty (0 images): there is nothing to validate on; pass val_data=None "
                         "to train without validation, or a non-empty data set")
    if resume_state is not None and not isinstance(resume_state, Mapping):
        raise TypeError(f"resume_state must be the dict given to save_state, got {type(resume_state).__name__}")

    rank, world = _world()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} is the global batch and must be divisible by the "
                         f"world size {world}; use a multiple of {world}")
    local_batch = batch_size // world
    dev = _compute_device(device, "fit")
    if world > 1 and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    amp_dtype, use_scaler = _amp_setup(amp, dev)

    # one shuffled order per epoch (seed + epoch), split across ranks; identical to 1 process when world == 1
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=False)
    loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, num_workers=num_workers,
                        pin_memory=dev.type == "cuda", drop_last=drop_last,
                        persistent_workers=num_workers > 0)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} with drop_last=True leaves no batch of {len(train_set)} images; "
                         "use a smaller batch_size or drop_last=False")
    start_epoch, skip_steps = 0, 0
    if resume_state is not None:
        start_epoch, skip_steps = int(resume_state["epoch"]), int(resume_state["step"])
        if resume_state.get("steps_per_epoch") != steps_per_epoch or start_epoch > epochs:
            raise ValueError(f"resume_state was saved by a run with {resume_state.get('steps_per_epoch')} steps "
                             f"per epoch at epoch {start_epoch}; this run has {steps_per_epoch} steps per epoch "
                             f"and epochs={epochs}: resume with the same data, batch_size and epochs")

    learner_rng = _rng_state()
    seed_everything(seed + rank)   # transforms differ across ranks; the shuffled order comes from the sampler
    model.to(dev)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    total = epochs * steps_per_epoch
    warmup = min(int(round(warmup_epochs * steps_per_epoch)), max(0, total - 1))  # checked: < epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_schedule(total, warmup))
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    history = History()
    partial: Optional[Mapping[str, Any]] = None
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        if resume_state.get("scaler"):
            scaler.load_state_dict(resume_state["scaler"])
        for record in resume_state.get("history", []):
            history.append(dict(record))
        partial = resume_state.get("partial")
        _set_rng_state(resume_state["rng"])

    def state(epoch: int, step: int, part: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        return {"epoch": epoch, "step": step, "steps_per_epoch": steps_per_epoch, "epochs": epochs,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if use_scaler else {}, "rng": _rng_state(),
                "history": [dict(r) for r in history.records], "partial": part}

    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=start_epoch * steps_per_epoch + skip_steps, desc="training",
                   unit="batch", dynamic_ncols=True)
    stop = _StopRequest()
    epoch = start_epoch
    try:
        with stop:
            for epoch in range(start_epoch, epochs):
                sampler.set_epoch(epoch)
                net.train()
                start = time.perf_counter()
                loss_sum = correct = count = 0.0
                lr_now = optimizer.param_groups[0]["lr"]
                epoch_rng = _rng_state()
                first = 0
                if partial is not None and epoch == start_epoch and skip_steps:
                    # continue a stopped epoch: the same order, the same random numbers, the same sums
                    _set_rng_state(partial["epoch_rng"])
                    epoch_rng = partial["epoch_rng"]
                    loss_sum, correct, count = partial["loss_sum"], partial["correct"], partial["count"]
                    lr_now, first = partial["lr"], skip_steps
                batches = iter(loader)
                for _ in range(first):
                    next(batches)
                if first:
                    _set_rng_state(partial["rng"])  # type: ignore[index]
                for step, (x, y) in enumerate(batches, start=first + 1):
                    x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
                    loss, logits = train_step(net, x, y, optimizer, scaler, amp_dtype=amp_dtype,
                                              label_smoothing=label_smoothing, grad_clip=grad_clip)
                    scheduler.step()
                    n = y.numel()
                    loss_sum += loss.item() * n
                    correct += (logits.argmax(dim=1) == y).sum().item()
                    count += n
                    if bar is not None:
                        bar.update(1)
                        bar.set_description(f"epoch {epoch + 1}/{epochs}")
                        bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
                    if step < steps_per_epoch and stop.agreed(dev):
                        if save_state is not None:
                            save_state(state(epoch, step, {"loss_sum": loss_sum, "correct": correct,
                                                           "count": count, "lr": lr_now, "epoch_rng": epoch_rng,
                                                           "rng": _rng_state()}))
                        raise KeyboardInterrupt
                loss_sum, correct, count = _all_sum([loss_sum, correct, count], dev)
                if world > 1:   # BatchNorm running statistics: every rank takes rank 0's, as the saved model has
                    for buf in model.buffers():
                        dist.broadcast(buf, 0)
                record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / count,
                                          "train_acc": correct / count, "val_loss": None, "val_acc": None,
                                          "lr": lr_now}
                if val_set is not None:
                    v_loss, v_correct, v_count = _all_sum(list(_eval_pass(
                        model, val_set, max(local_batch, 256), dev, amp_dtype, num_workers)), dev)
                    record["val_loss"], record["val_acc"] = v_loss / v_count, v_correct / v_count
                    if bar is not None:
                        bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}",
                                        val_acc=f"{record['val_acc']:.3f}")
                record["time_s"] = time.perf_counter() - start
                history.append(record)
                if save_state is not None:
                    save_state(state(epoch + 1, 0))
                if callback is not None:
                    # the bar steps aside, so that what the callback prints starts on a line of its own
                    aside = bar.external_write_mode(file=sys.stdout) if bar is not None else contextlib.nullcontext()
                    with aside:
                        callback(record)
                if epoch + 1 < epochs and stop.agreed(dev):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        history.interrupted = True
        if bar is not None:   # end the bar's line first: what follows starts on a line of its own
            bar.close()
            bar = None
        if rank == 0 and interrupt_note:
            print(f"fit was interrupted in epoch {min(epoch + 1, epochs)} of {epochs}: it returns the History "
                  f"of the {len(history)} finished epoch(s) and leaves the model in eval mode")
    finally:
        if bar is not None:
            bar.close()
        _set_rng_state(learner_rng)
        model.eval()
    return history


class _StopRequest:
    """While active, the first Ctrl-C (SIGINT) only asks the loop to stop at the end of the step.

    A second Ctrl-C raises ``KeyboardInterrupt`` at once. Outside the main thread (where handlers cannot
    be set) Ctrl-C keeps its usual effect. In a process group every rank stops at the same step.
    """

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping at the end of this step (press Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> _StopRequest:
        if threading.current_thread() is threading.main_thread():
            try:
                self._old = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                self._installed = False
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._old if self._old is not None else signal.default_int_handler)

    def agreed(self, device: torch.device) -> bool:
        """Whether any process asked to stop (a collective in a process group: every rank calls it)."""
        _, world = _world()
        if world == 1:
            return self.requested
        return _all_sum([float(self.requested)], device)[0] > 0


def _rng_state() -> dict[str, Any]:
    """The global generators' states as tensors and plain data (they load with ``weights_only=True``)."""
    np_state = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                      int(np_state[3]), float(np_state[4])]}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    """Put back the generator states saved by :func:`_rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())


if __name__ == "__main__":  # python -m course_pkg.train: the command line
    from course_pkg.cli.train import main

    main()
