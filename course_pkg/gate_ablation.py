"""Test-time ablations of attention gates: what a trained network loses when a gate stops choosing.

An SE block or CBAM's channel attention multiplies a feature map by weights ``(B, C, 1, 1)``; CBAM's
spatial attention by a map ``(B, 1, H, W)``. Each ablation replaces those gates, at test time only, by
something that keeps one property and removes another:

* ``"ones"``: every gate is 1, the module passes its input through. Removes the module's effect
  altogether (the later layers were trained on gated features, so this also tests how much they rely
  on the gates' overall scale).
* ``"image_mean"``: each gate is replaced by its own mean over channels (or positions) for that image.
  Keeps each image's overall scale; removes *which* channels (or *where*), both the part that is the
  same for every image and the part that changes from image to image.
* ``"static"``: each gate is replaced by its mean **over a reference set of images**, per channel (or
  per position). Keeps *which* channels (or *where*) on average, a fixed mask; removes only the
  choice made **image by image**.

Comparing ``"static"`` with ``"image_mean"`` separates a fixed channel mask from a per-image choice;
that is the question "does attention select per image?".

The replacement happens at each module's :class:`~course_pkg.attention_tap.AttentionTap` (a forward
hook returns the new gate), so the model's own code and weights are untouched.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from torch import nn

from .attention_maps import taps

__all__ = ["ABLATIONS", "GATE_KINDS", "ablate_gates", "gate_means"]

#: the three replacements, in the order the module docstring explains them
ABLATIONS: tuple[str, ...] = ("ones", "image_mean", "static")
#: gates that can be ablated: channel weights (SE, CBAM's channel attention) or spatial maps (CBAM)
GATE_KINDS: tuple[str, ...] = ("channel", "spatial")


def _gate_taps(model: nn.Module, kind: str) -> list[tuple[str, nn.Module]]:
    if kind not in GATE_KINDS:
        raise ValueError(f"kind={kind!r} is not a gate kind; use one of {', '.join(GATE_KINDS)}")
    found = [(name, tap) for name, tap in taps(model) if tap.kind == kind]
    if not found:
        raise ValueError(f"the {type(model).__name__} has no {kind} gate to ablate (build it with "
                         f"attention='se' or 'cbam'; spatial gates exist in CBAM only)")
    return found


@torch.no_grad()
def gate_means(model: nn.Module, images: torch.Tensor, kind: str, batch_size: int = 250
               ) -> dict[str, torch.Tensor]:
    """Each gate of ``kind`` averaged over ``images`` ``(N, 3, H, W)``: the fixed mask of the ``"static"``
    ablation.

    Returns:
        ``{module name: mean gate}``, ``(C, 1, 1)`` for a channel gate, ``(1, h, w)`` for a spatial map.
    """
    if not (isinstance(images, torch.Tensor) and images.dim() == 4 and len(images) > 0):
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    found = _gate_taps(model, kind)
    sums: dict[str, torch.Tensor] = {}
    handles = []
    for name, tap in found:
        def hook(_: nn.Module, __: tuple, out: torch.Tensor, name: str = name) -> None:
            s = out.sum(dim=0)
            sums[name] = sums[name] + s if name in sums else s
        handles.append(tap.register_forward_hook(hook))
    try:
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
    return {name: s / len(images) for name, s in sums.items()}


@contextlib.contextmanager
def ablate_gates(model: nn.Module, kind: str, mode: str,
                 reference: Optional[dict[str, torch.Tensor]] = None) -> Iterator[nn.Module]:
    """Inside the ``with`` block, every gate of ``kind`` in ``model`` is replaced as ``mode`` says.

    Args:
        model: a model holding SE or CBAM modules.
        kind: ``"channel"`` or ``"spatial"``.
        mode: ``"ones"``, ``"image_mean"`` or ``"static"`` (see the module docstring).
        reference: for ``"static"``, the output of :func:`gate_means` on held-out images.

    Yields the model. The gates come back when the block ends, also on an error.
    """
    if mode not in ABLATIONS:
        raise ValueError(f"mode={mode!r} is not an ablation; use one of {', '.join(ABLATIONS)}")
    found = _gate_taps(model, kind)
    if mode == "static":
        if reference is None:
            raise ValueError("mode='static' needs reference=gate_means(model, held_out_images, kind)")
        missing = [name for name, _ in found if name not in reference]
        if missing:
            raise ValueError(f"reference has no mean gate for {missing}; compute it with gate_means on "
                             "the same model and kind")
    elif reference is not None:
        raise ValueError(f"reference is used by mode='static' only, not mode={mode!r}")
    dims = (1, 2, 3)          # a gate's non-batch dimensions: (C, 1, 1) or (1, H, W)

    def replacement(name: str, gate: torch.Tensor) -> torch.Tensor:
        if mode == "ones":
            return torch.ones_like(gate)
        if mode == "image_mean":
            return gate.mean(dim=dims, keepdim=True).expand_as(gate)
        fixed = reference[name].to(gate.device, gate.dtype)      # type: ignore[index]
        if fixed.shape != gate.shape[1:]:
            raise ValueError(f"reference[{name!r}] has shape {tuple(fixed.shape)}, the gate "
                             f"{tuple(gate.shape[1:])}: compute it on images of the same size")
        return fixed.expand_as(gate)

    handles = [tap.register_forward_hook(lambda _m, _i, out, name=name: replacement(name, out))
               for name, tap in found]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
