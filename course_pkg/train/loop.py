"""The epoch loop of :func:`course_pkg.train.fit`: each epoch's shuffled batches, its training steps,
its validation and its record.

:func:`_shuffled_loader` gives every process its shard of each epoch's shuffled order;
:class:`_EpochLoop` runs one epoch at a time (and continues an epoch that a Ctrl-C stopped).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .distributed import _all_sum, _world
from .evaluation import _eval_pass
from .state import TrainState, _rng_state, _set_rng_state
from .step import train_step
from .stop import _StopRequest


def _shuffled_loader(train_set: Dataset, local_batch: int, *, seed: int, num_workers: int, drop_last: bool,
                    device: torch.device) -> tuple[DistributedSampler, DataLoader]:
    """A ``DistributedSampler`` (one shuffled order per epoch, from ``seed`` and the epoch, split across the
    processes; the single-process order when there is one) and the ``DataLoader`` of ``local_batch``
    images ``(B, C, H, W)`` that reads it."""
    rank, world = _world()
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                 drop_last=False)
    loader = DataLoader(train_set, batch_size=local_batch, sampler=sampler, num_workers=num_workers,
                        pin_memory=device.type == "cuda", drop_last=drop_last,
                        persistent_workers=num_workers > 0)
    return sampler, loader


@dataclass
class _EpochLoop:
    """Everything one epoch of a ``fit`` run needs; :meth:`run` trains, validates and records one epoch.

    ``model`` is the network itself and ``net`` what the steps call (the model, or its DDP wrapper);
    ``bar`` is rank 0's progress bar (None: no bar); ``state`` holds the optimiser, schedule, scaler and
    :class:`~course_pkg.train.history.History`.
    """

    model: nn.Module
    net: nn.Module
    sampler: DistributedSampler
    loader: DataLoader
    val_set: Optional[Dataset]
    val_batch: int
    num_workers: int
    device: torch.device
    amp_dtype: Optional[torch.dtype]
    label_smoothing: float
    grad_clip: Optional[float]
    state: TrainState
    stop: _StopRequest
    save_state: Optional[Callable[[dict[str, Any]], None]] = None
    callback: Optional[Callable[[dict[str, Any]], None]] = None
    bar: Any = None

    def run(self, epoch: int, partial: Optional[Mapping[str, Any]] = None, first: int = 0) -> dict[str, Any]:
        """Epoch ``epoch`` (0-based): its training steps, sums over all processes, validation, its record.

        The record is appended to the history and handed to ``save_state`` (as the state after the
        epoch) and then to ``callback``. A Ctrl-C that every process agrees on stops the epoch at the end
        of a step: ``save_state`` receives the stopped epoch's state and ``KeyboardInterrupt`` is raised.

        Args:
            partial, first: continue a stopped epoch: its saved sums and random states (the state's
                ``partial``), and the ``first`` steps it had finished.

        Returns:
            ``{"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "time_s"}``.
        """
        self.sampler.set_epoch(epoch)
        self.net.train()
        start = time.perf_counter()
        loss_sum, correct, count, lr_now = self._train(epoch, partial, first)
        loss_sum, correct, count = _all_sum([loss_sum, correct, count], self.device)
        if _world()[1] > 1:   # BatchNorm running statistics: every rank takes rank 0's, as the saved model has
            for buf in self.model.buffers():
                dist.broadcast(buf, 0)
        record: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss_sum / count,
                                  "train_acc": correct / count, "val_loss": None, "val_acc": None,
                                  "lr": lr_now}
        if self.val_set is not None:
            v_loss, v_correct, v_count = _all_sum(list(_eval_pass(
                self.model, self.val_set, self.val_batch, self.device, self.amp_dtype, self.num_workers)), self.device)
            record["val_loss"], record["val_acc"] = v_loss / v_count, v_correct / v_count
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}",
                                     val_acc=f"{record['val_acc']:.3f}")
        record["time_s"] = time.perf_counter() - start
        self.state.history.append(record)
        if self.save_state is not None:
            self.save_state(self.state.snapshot(epoch + 1, 0))
        if self.callback is not None:
            # the bar steps aside, so that what the callback prints starts on a line of its own
            aside = (self.bar.external_write_mode(file=sys.stdout) if self.bar is not None
                     else contextlib.nullcontext())
            with aside:
                self.callback(record)
        return record

    def _train(self, epoch: int, partial: Optional[Mapping[str, Any]], first: int
               ) -> tuple[float, float, float, float]:
        """This process's training steps of the epoch; returns its (loss sum, correct, count, learning rate
        at the epoch's start)."""
        optimizer, steps_per_epoch = self.state.optimizer, self.state.steps_per_epoch
        loss_sum = correct = count = 0.0
        lr_now = optimizer.param_groups[0]["lr"]
        epoch_rng = _rng_state()
        if partial is not None:
            # continue a stopped epoch: the same order, the same random numbers, the same sums
            _set_rng_state(partial["epoch_rng"])
            epoch_rng = partial["epoch_rng"]
            loss_sum, correct, count = partial["loss_sum"], partial["correct"], partial["count"]
            lr_now = partial["lr"]
        else:
            first = 0
        batches = iter(self.loader)
        for _ in range(first):
            next(batches)
        if first:
            _set_rng_state(partial["rng"])  # type: ignore[index]
        for step, (x, y) in enumerate(batches, start=first + 1):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            loss, logits = train_step(self.net, x, y, optimizer, self.state.scaler, amp_dtype=self.amp_dtype,
                                      label_smoothing=self.label_smoothing, grad_clip=self.grad_clip)
            self.state.scheduler.step()
            n = y.numel()
            loss_sum += loss.item() * n
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += n
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_description(f"epoch {epoch + 1}/{self.state.epochs}")
                self.bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
            if step < steps_per_epoch and self.stop.agreed(self.device):
                if self.save_state is not None:
                    self.save_state(self.state.snapshot(epoch, step, {
                        "loss_sum": loss_sum, "correct": correct, "count": count, "lr": lr_now,
                        "epoch_rng": epoch_rng, "rng": _rng_state()}))
                raise KeyboardInterrupt
        return loss_sum, correct, count, lr_now
