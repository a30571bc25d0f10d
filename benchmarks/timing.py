"""Timing shared by the benchmarks: interleaved rounds so that drifting machine load hits every
contender alike."""

from __future__ import annotations

import time
from typing import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def interleaved_times(fns: dict[str, Callable[[], None]], repeats: int, warmup: int, device: torch.device,
                      inner: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each function, one entry per round; the order rotates every round.

    Each round times ``inner`` back-to-back calls of every function and records the mean per call.
    """
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    sync(device)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(inner):
                fns[n]()
            sync(device)
            times[n].append((time.perf_counter() - t0) / inner)
    return times
