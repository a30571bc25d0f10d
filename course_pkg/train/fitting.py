"""``fit``: train a classifier with AdamW and a cosine schedule, one epoch at a time, resumable.

``fit`` checks its arguments, sets the run up (device, mixed precision, process group, shuffled batches,
optimiser and schedule, a resumed state), then runs the epoch loop (:mod:`course_pkg.train.loop`) epoch by
epoch and turns a Ctrl-C into a :class:`~course_pkg.train.history.History` of the finished epochs.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from ..env import seed_everything
from .distributed import _world
from .history import History
from .inputs import DataArg, _as_dataset, _compute_device
from .loop import _EpochLoop, _shuffled_loader
from .optim import make_optimizer
from .precision import _amp_setup
from .state import TrainState, _rng_state, _set_rng_state, resume_position
from .step import _check_grad_clip
from .stop import _StopRequest

__all__ = ["fit"]


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
    epochs, batch_size, num_workers, seed, lr, weight_decay, warmup_epochs, label_smoothing, grad_clip = (
        _check_numbers(epochs=epochs, batch_size=batch_size, num_workers=num_workers, seed=seed, lr=lr,
                       weight_decay=weight_decay, warmup_epochs=warmup_epochs, label_smoothing=label_smoothing,
                       grad_clip=grad_clip))
    train_set, val_set = _check_inputs(model, train_data, val_data, progress=progress, drop_last=drop_last,
                                       callback=callback, save_state=save_state, resume_state=resume_state)

    rank, world, local_batch, dev = _placement(device, batch_size)
    amp_dtype, use_scaler = _amp_setup(amp, dev)
    sampler, loader = _shuffled_loader(train_set, local_batch, seed=seed, num_workers=num_workers,
                                       drop_last=drop_last, device=dev)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={batch_size} with drop_last=True leaves no batch of {len(train_set)} images; "
                         "use a smaller batch_size or drop_last=False")
    start_epoch, skip_steps = (0, 0) if resume_state is None else resume_position(resume_state, steps_per_epoch,
                                                                                  epochs)

    learner_rng = _rng_state()
    seed_everything(seed + rank)   # transforms differ across ranks; the shuffled order comes from the sampler
    model.to(dev)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer, scheduler, scaler = make_optimizer(model, lr=lr, weight_decay=weight_decay, epochs=epochs,
                                                  steps_per_epoch=steps_per_epoch, warmup_epochs=warmup_epochs,
                                                  use_scaler=use_scaler)
    state = TrainState(optimizer, scheduler, scaler, use_scaler=use_scaler, steps_per_epoch=steps_per_epoch,
                       epochs=epochs)
    partial = state.restore(resume_state) if resume_state is not None else None
    history = state.history

    bar = _progress_bar(epochs * steps_per_epoch, start_epoch * steps_per_epoch + skip_steps) if (
        progress and rank == 0) else None
    loop = _EpochLoop(model=model, net=net, sampler=sampler, loader=loader, val_set=val_set,
                      val_batch=max(local_batch, 256), num_workers=num_workers, device=dev, amp_dtype=amp_dtype,
                      label_smoothing=label_smoothing, grad_clip=grad_clip, state=state, stop=_StopRequest(),
                      save_state=save_state, callback=callback, bar=bar)
    epoch = start_epoch
    try:
        with loop.stop:
            for epoch in range(start_epoch, epochs):
                if partial is not None and epoch == start_epoch and skip_steps:
                    loop.run(epoch, partial, skip_steps)      # continue the stopped epoch
                else:
                    loop.run(epoch)
                if epoch + 1 < epochs and loop.stop.agreed(dev):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        history.interrupted = True
        if loop.bar is not None:   # end the bar's line first: what follows starts on a line of its own
            loop.bar.close()
            loop.bar = None
        if rank == 0 and interrupt_note:
            print(f"fit was interrupted in epoch {min(epoch + 1, epochs)} of {epochs}: it returns the History "
                  f"of the {len(history)} finished epoch(s) and leaves the model in eval mode")
    finally:
        if loop.bar is not None:
            loop.bar.close()
        _set_rng_state(learner_rng)
        model.eval()
    return history


def _placement(device: Any, batch_size: int) -> tuple[int, int, int, torch.device]:
    """``(rank, world_size, local batch, device)`` of this process: the global ``batch_size`` split evenly
    across the processes, and in a multi-GPU run an unnumbered ``cuda`` is this process's GPU ``LOCAL_RANK``."""
    rank, world = _world()
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} is the global batch and must be divisible by the "
                         f"world size {world}; use a multiple of {world}")
    dev = _compute_device(device, "fit")
    if world > 1 and dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return rank, world, batch_size // world, dev


def _progress_bar(total: int, initial: int) -> Any:
    """Rank 0's ``tqdm`` bar over all the run's steps, starting at ``initial`` (a resumed run's steps)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="batch", dynamic_ncols=True)


def _check_numbers(*, epochs: Any, batch_size: Any, num_workers: Any, seed: Any, lr: Any, weight_decay: Any,
                   warmup_epochs: Any, label_smoothing: Any, grad_clip: Any
                   ) -> tuple[int, int, int, int, float, float, float, float, Optional[float]]:
    """``fit``'s numbers checked: ``(epochs, batch_size, num_workers, seed)`` as Python ints, then
    ``(lr, weight_decay, warmup_epochs, label_smoothing)`` as floats, then ``grad_clip`` (a float or None)."""
    ints = {}
    for name, value, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                            ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use an integer >= {lo}")
        if not isinstance(value, numbers.Integral) or value < lo:
            raise ValueError(f"{name}={value!r} is not valid; use an integer >= {lo}")
        ints[name] = int(value)                 # a NumPy integer works as a Python one
    floats = {}
    for name, value in (("lr", lr), ("weight_decay", weight_decay), ("warmup_epochs", warmup_epochs),
                        ("label_smoothing", label_smoothing)):
        what = "a positive number such as 1e-3" if name == "lr" else "a finite number >= 0"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}={value!r} is a {type(value).__name__}; use {what}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}={value!r} is not valid; use {what}")
        floats[name] = float(value)
    epochs, warmup_epochs, label_smoothing = ints["epochs"], floats["warmup_epochs"], floats["label_smoothing"]
    if floats["lr"] == 0:
        raise ValueError("lr=0 is not valid; use a positive learning rate such as 1e-3")
    if label_smoothing >= 1:
        raise ValueError(f"label_smoothing={label_smoothing!r} is not valid; use a number in [0, 1)")
    if warmup_epochs >= epochs and warmup_epochs > 0:
        raise ValueError(f"warmup_epochs={warmup_epochs:g} is not shorter than the run (epochs={epochs}): the "
                         "learning rate would never reach lr and then decay; use warmup_epochs < epochs "
                         f"(e.g. {min(1.0, epochs / 10):g}), or train for more epochs")
    return (ints["epochs"], ints["batch_size"], ints["num_workers"], ints["seed"], floats["lr"],
            floats["weight_decay"], warmup_epochs, label_smoothing, _check_grad_clip(grad_clip))


def _check_inputs(model: Any, train_data: DataArg, val_data: Optional[DataArg], *, progress: Any, drop_last: Any,
                  callback: Any, save_state: Any, resume_state: Any) -> tuple[Dataset, Optional[Dataset]]:
    """``fit``'s flags, callables, model and data checked; returns ``(train_set, val_set)`` as Datasets."""
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
    return train_set, val_set


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from ..checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
