"""Ctrl-C during training: the first press asks the loop to stop at the end of the step, all ranks agree."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import torch

from .distributed import _all_sum, _world


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
