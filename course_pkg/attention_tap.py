"""The tap: the one place where an attention module's map can be seen (the models import it).

Every attention module of the course (SE, CBAM's two parts, self-attention) passes its map through an
:class:`AttentionTap`, an identity with no parameters. :func:`course_pkg.attention_maps.record_attention`
hooks the taps of a model for the length of a ``with`` block; :mod:`course_pkg.gate_ablation` replaces a
tap's output to ablate a gate. A model outside both runs exactly as if the tap were not there.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["KINDS", "AttentionTap", "as_recorded"]

#: the three kinds of map and the shape each is recorded in
KINDS: dict[str, str] = {"channel": "(B, C)", "spatial": "(B, H, W)", "token": "(B, heads, N, N)"}


def as_recorded(kind: str, weights: torch.Tensor, detach: bool = True) -> torch.Tensor:
    """The tap's input in the recorded shape of its kind (see :data:`KINDS`), detached by default."""
    w = weights.detach() if detach else weights
    if kind == "channel":
        return w.flatten(1)          # (B, C, 1, 1) -> (B, C)
    if kind == "spatial":
        return w[:, 0]               # (B, 1, H, W) -> (B, H, W)
    return w                         # (B, heads, N, N)


class AttentionTap(nn.Module):
    """An identity on an attention map, the one place where :func:`course_pkg.attention_maps.record_attention` sees it.

    Args:
        kind: ``"channel"`` (input ``(B, C, 1, 1)``), ``"spatial"`` (``(B, 1, H, W)``) or ``"token"``
            (``(B, heads, N, N)``).

    Attributes:
        recording: True while a recorder watches this tap (a layer whose map is optional, such as
            self-attention on its fused path, computes the map then). Set by :func:`course_pkg.attention_maps.record_attention` only.

    It has no parameters and no buffers: a model's ``state_dict`` keys do not change.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not known; use one of {sorted(KINDS)}")
        self.kind = kind
        self.recording = False

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        return weights

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}"
