"""The resumable state of a training run: what ``fit`` hands to ``save_state`` and takes back as
``resume_state``, so that a stopped run continues exactly where it stopped.

The state is a dict of plain data and tensors (it loads with ``weights_only=True``): ``epoch`` and
``step`` (where the run stopped), ``steps_per_epoch`` and ``epochs`` (what the run was), the
``optimizer``, ``scheduler`` and ``scaler`` state dicts, the random generators' states (``rng``), the
finished epochs' ``history``, and ``partial``: the sums and random states of a stopped epoch (None at
the end of an epoch).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import torch

from .history import History


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


def resume_position(resume_state: Mapping[str, Any], steps_per_epoch: int, epochs: int) -> tuple[int, int]:
    """``(epoch, step)`` where the stopped run ``resume_state`` continues, once it is checked to match
    this run (the same number of steps per epoch, and not past its last epoch)."""
    start_epoch, skip_steps = int(resume_state["epoch"]), int(resume_state["step"])
    if resume_state.get("steps_per_epoch") != steps_per_epoch or start_epoch > epochs:
        raise ValueError(f"resume_state was saved by a run with {resume_state.get('steps_per_epoch')} steps "
                         f"per epoch at epoch {start_epoch}; this run has {steps_per_epoch} steps per epoch "
                         f"and epochs={epochs}: resume with the same data, batch_size and epochs")
    return start_epoch, skip_steps


class TrainState:
    """What a run must keep to be resumed: its optimiser, schedule, gradient scaler and :class:`History`.

    :meth:`snapshot` gives the state dict that ``save_state`` receives; :meth:`restore` loads one back.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, scheduler: torch.optim.lr_scheduler.LRScheduler,
                 scaler: torch.amp.GradScaler, *, use_scaler: bool, steps_per_epoch: int, epochs: int) -> None:
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.use_scaler = use_scaler
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.history = History()

    def snapshot(self, epoch: int, step: int, part: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        """The state after ``step`` steps of epoch ``epoch`` (0-based; ``(epoch + 1, 0)`` once it ends);
        ``part`` holds a stopped epoch's sums and random states."""
        return {"epoch": epoch, "step": step, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.use_scaler else {}, "rng": _rng_state(),
                "history": [dict(r) for r in self.history.records], "partial": part}

    def restore(self, resume_state: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
        """Load a :meth:`snapshot` back (optimiser, schedule, scaler, history, random generators).

        Returns:
            its ``partial`` entry: the stopped epoch's sums and random states, or None.
        """
        self.optimizer.load_state_dict(resume_state["optimizer"])
        self.scheduler.load_state_dict(resume_state["scheduler"])
        if resume_state.get("scaler"):
            self.scaler.load_state_dict(resume_state["scaler"])
        for record in resume_state.get("history", []):
            self.history.append(dict(record))
        partial = resume_state.get("partial")
        _set_rng_state(resume_state["rng"])
        return partial
