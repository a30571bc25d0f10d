"""The environment: pick a device, seed every generator, print a banner in each chapter."""

from __future__ import annotations

import os
import platform
import random
from typing import Optional

import numpy as np
import torch

__all__ = ["banner", "environment", "get_device", "seed_everything"]


def get_device(prefer: Optional[str] = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device (``"cpu"``, ``"cuda"``, ``"mps"``); the environment variable
            ``COURSE_DEVICE`` does the same for a whole session.
    """
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        dev = torch.device(choice)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={choice!r} was asked for, but CUDA is not available here; "
                               "use 'cpu' or leave it unset to pick automatically.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python's, NumPy's and PyTorch's generators (all devices) so a run repeats.

    Args:
        seed: the seed, a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels (slower on GPU).

    Returns:
        The seed, so ``seed = seed_everything(0)`` reads well.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def environment() -> dict[str, str]:
    """The facts a banner shows: package, torch and Python versions, and the device."""
    from . import __version__

    dev = get_device()
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    return {
        "course_pkg": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": dev.type,
        "device_name": name,
        "threads": str(torch.get_num_threads()),
    }


def banner() -> None:
    """Print one line about the environment, for the first cell of every chapter."""
    env = environment()
    print(f"course_pkg {env['course_pkg']} | torch {env['torch']} | python {env['python']} | "
          f"device: {env['device']} ({env['device_name']}, {env['threads']} threads)")
