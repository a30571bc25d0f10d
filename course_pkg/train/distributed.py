"""The process group as training sees it: this process's rank, the world size, sums over all processes.

Outside a process group (a plain ``python`` run) the rank is 0, the world size 1 and a sum is a no-op,
so the training code runs unchanged with and without ``torchrun``.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


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
