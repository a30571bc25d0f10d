"""Argument checks shared by the package: one message per kind of mistake, naming the parameter and value."""

from __future__ import annotations

import numbers
from typing import Any, Union

__all__ = ["pair", "positive_int"]


def positive_int(name: str, value: Any, hint: str = "") -> int:
    """``value`` as an ``int`` if it is a positive integer (Python or NumPy; ``bool`` is refused), else a
    ``ValueError`` naming ``name`` and the value.

    Args:
        name: the parameter's name, for the message.
        value: what the caller passed.
        hint: an optional sentence appended to the message (e.g. the paper's value).
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        extra = f"; {hint}" if hint else ""
        raise ValueError(f"{name}={value!r} is not valid; use a positive integer{extra}")
    return int(value)


def pair(value: Union[int, tuple[int, int], Any], name: str) -> tuple[int, int]:
    """``16 -> (16, 16)``; a pair of positive ints passes through; anything else raises ``ValueError``."""
    p = (value, value) if isinstance(value, int) else tuple(value)
    if len(p) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in p):
        raise ValueError(f"{name}={value!r} must be a positive int or a pair of positive ints")
    return p  # type: ignore[return-value]
