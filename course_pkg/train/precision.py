"""Mixed precision: which _autocast dtype an ``amp`` setting means on a device, and the _autocast context."""

from __future__ import annotations

import contextlib
from typing import Optional, Union

import torch


def _amp_setup(amp: Union[str, bool, None], device: torch.device) -> tuple[Optional[torch.dtype], bool]:
    """(_autocast dtype or None, whether a GradScaler is needed) for ``amp`` on ``device``."""
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


def _autocast(device: torch.device, dtype: Optional[torch.dtype]) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``dtype`` on ``device``'s type, or a context that does nothing (dtype None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
