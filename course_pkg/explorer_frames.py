"""The pictures of chapter 6's explorers: attention maps of a ViT on one image, and each explorer state as a PNG.

* Maps from a model: :func:`rollout_map` (the attention rollout of the [CLS] token through all layers) and
  :func:`cls_attention_maps` (each head's [CLS] attention in one layer), both on the patch grid and rescaled
  to sum to one. The maps are recorded with :func:`course_pkg.attention_maps.record_attention` and reduced
  with :func:`~course_pkg.attention_maps.cls_rollout_map` and
  :func:`~course_pkg.attention_maps.cls_attention_map`: this module adds only the rescaling and the
  prediction.
* Frames: :func:`render_patch_frame` (the image cut into patches, next to a rollout) and
  :func:`render_head_frame` (the per-head maps), each a PNG in ``bytes``, drawn on a matplotlib ``Figure``
  without pyplot, so nothing shows by itself and no global figure state is touched.

No widget here: :mod:`course_pkg.widgets` builds the explorers from these frames.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .attention_maps import cls_attention_map, cls_rollout_map, record_attention
from .patch_arithmetic import PatchNumbers
from .plotting import display_image, draw_overlay, figure_png

__all__ = [
    "ImageLike",
    "cls_attention_maps",
    "figure_to_png",
    "render_head_frame",
    "render_patch_frame",
    "rollout_map",
    "to_display_image",
]

#: An image as the explorers take it: ``(C, H, W)``, ``(H, W, C)`` or ``(H, W)``, tensor or array.
ImageLike = Union[torch.Tensor, np.ndarray]


# ------------------------------------------------------------------------------------------------
# Maps from a model (recorded with course_pkg.attention_maps)
# ------------------------------------------------------------------------------------------------
def _grid_of(n_tokens: int) -> int:
    """The side ``g`` of a square grid of ``n_tokens`` patch tokens."""
    g = int(round(n_tokens ** 0.5))
    if g * g != n_tokens:
        raise ValueError(f"{n_tokens} patch tokens do not form a square grid")
    return g


def _forward_attention(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(logits (1, classes), [token maps (1, heads, N, N) per layer])`` of one image, recorded."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad(), record_attention(model) as maps:
        logits = model(x.unsqueeze(0).to(device))
    attentions = list(maps.of_kind("token").values())
    if not attentions:
        raise ValueError(f"the {type(model).__name__} has no self-attention layer; pass a ViT")
    return logits.cpu(), [a.cpu() for a in attentions]


def rollout_map(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, int]:
    """Attention rollout of one image: how much the [CLS] output draws on each patch, through all layers.

    :func:`course_pkg.attention_maps.cls_rollout_map` on the token maps that
    :func:`~course_pkg.attention_maps.record_attention` records, rescaled to sum to one.

    Args:
        model: a ViT (any model whose self-attention layers ``record_attention`` records).
        x: one image ``(C, H, W)``, as the model expects it.

    Returns:
        ``(map, predicted_class)``: the rollout ``(g, g)`` over the patch grid, rescaled to sum to one, and
        the model's prediction (argmax of the logits).
    """
    logits, attentions = _forward_attention(model, x)
    n = attentions[0].shape[-1]
    roll = cls_rollout_map(attentions, _grid_of(n - 1))[0]              # (g, g)
    roll = roll / roll.sum().clamp_min(1e-12)
    return roll.numpy(), int(logits.argmax(-1)[0])


def cls_attention_maps(model: torch.nn.Module, x: torch.Tensor, layer: int = -1) -> tuple[np.ndarray, int]:
    """Each head's attention from [CLS] to the patches, in one layer.

    Args:
        model: a ViT (any model whose self-attention layers ``record_attention`` records).
        x: one image ``(C, H, W)``.
        layer: which layer (default: the last one).

    Returns:
        ``(maps, predicted_class)``: ``maps`` is ``(H, g, g)``, one map per head, each rescaled to sum to one
        (the [CLS] weight on itself left out).
    """
    logits, attentions = _forward_attention(model, x)
    if not -len(attentions) <= layer < len(attentions):
        raise ValueError(f"layer={layer} is out of range; the model has {len(attentions)} layers")
    a = attentions[layer]                                               # (1, H, N, N)
    maps = cls_attention_map(a, _grid_of(a.shape[-1] - 1))[0]           # (H, g, g)
    maps = maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return maps.numpy(), int(logits.argmax(-1)[0])


# ------------------------------------------------------------------------------------------------
# Frames (PNG pictures), rendered without pyplot
# ------------------------------------------------------------------------------------------------
#: An image ready for ``imshow`` (see :func:`course_pkg.plotting.display_image`).
to_display_image = display_image

#: Render a Figure to PNG bytes (see :func:`course_pkg.plotting.figure_png`).
figure_to_png = figure_png


def _show_image(ax: Axes, img: np.ndarray) -> None:
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _overlay(ax: Axes, img: np.ndarray, heat: np.ndarray, cmap: str = "inferno") -> None:
    """The image in grey with a patch-level heat map on top (nearest upsampling: one block per patch)."""
    draw_overlay(ax, img, heat, alpha=0.6, cmap=cmap, grey=True, interpolation="nearest")


def _peak_box(ax: Axes, heat: np.ndarray, img_size: tuple[int, int]) -> None:
    g = heat.shape[0]
    ph, pw = img_size[0] / g, img_size[1] / heat.shape[1]
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    ax.add_patch(_rect((c * pw - 0.5, r * ph - 0.5), pw, ph, "cyan"))


def _rect(xy: tuple[float, float], w: float, h: float, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(xy, w, h, fill=False, edgecolor=color, linewidth=1.5)


def render_patch_frame(image: ImageLike, numbers: PatchNumbers, rollout: Optional[np.ndarray] = None,
                       caption: str = "", mask: Optional[np.ndarray] = None, dpi: int = 80) -> bytes:
    """One state of the patch explorer as a PNG: the image cut into patches, and the rollout map.

    Args:
        image: the image (see :func:`to_display_image`).
        numbers: the patch arithmetic (its ``patch_size`` sets the grid drawn).
        rollout: ``(g, g)`` attention rollout of a model trained at this patch size, or None.
        caption: a line under the rollout panel (e.g. the model's accuracy).
        mask: optional ``(H, W)`` boolean object mask, outlined in the rollout panel.
    """
    img = to_display_image(image)
    h, w = img.shape[:2]
    p = numbers.patch_size
    fig = Figure(figsize=(6.0, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    _show_image(ax1, img)
    lines = np.arange(p, h, p) - 0.5
    lw = 0.4 if numbers.grid > 16 else 0.9
    for v in lines:
        ax1.axhline(v, color="yellow", lw=lw)
        ax1.axvline(v, color="yellow", lw=lw)
    ax1.set_title(f"{p}\u00d7{p} patches: {numbers.grid}\u00d7{numbers.grid} = {numbers.num_patches:,} tokens",
                  fontsize=10)
    if rollout is not None:
        heat = np.asarray(rollout, dtype=float)
        if heat.shape != (numbers.grid, numbers.grid):
            raise ValueError(f"rollout has shape {heat.shape} but {p}x{p} patches make a "
                             f"{numbers.grid}x{numbers.grid} grid")
        _overlay(ax2, img, heat)
        _peak_box(ax2, heat, (h, w))
        if mask is not None:
            ax2.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="lime", linewidths=1.0)
        ax2.set_title("attention rollout ([CLS])", fontsize=10)
        ax2.set_xlabel(caption, fontsize=9)
    else:
        ax2.axis("off")
        ax2.text(0.5, 0.5, f"no model trained\nwith {p}\u00d7{p} patches\n\n{caption}", ha="center",
                 va="center", fontsize=10, color="#555", transform=ax2.transAxes)
    return figure_png(fig, dpi, pad_inches=0.05)


def render_head_frame(image: ImageLike, maps: np.ndarray, head: Optional[int] = None, caption: str = "",
                      dpi: int = 80) -> bytes:
    """One state of the head explorer as a PNG.

    Args:
        image: the sample image.
        maps: ``(H, g, g)`` per-head attention maps (from :func:`cls_attention_maps`).
        head: draw this head large next to the image; ``None`` draws every head in a row (a small grid).
        caption: a line of text at the bottom.
    """
    img = to_display_image(image)
    maps = np.asarray(maps, dtype=float)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape (H, g, g), got {maps.shape}")
    n_heads = maps.shape[0]
    if head is not None and not 0 <= head < n_heads:
        raise ValueError(f"head={head} is out of range; this model has {n_heads} heads (0..{n_heads - 1})")
    if head is None:
        panels = [(img, "image", None)] + [(img, f"head {i}", maps[i]) for i in range(n_heads)]
        ncols = min(len(panels), 5)
        nrows = -(-len(panels) // ncols)
        fig = Figure(figsize=(1.5 * ncols + 0.2, 1.55 * nrows + 0.35), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    else:
        panels = [(img, "image", None), (img, f"head {head} of {n_heads}", maps[head])]
        fig = Figure(figsize=(4.2, 2.4), layout="constrained")
        axes = fig.subplots(1, 2).ravel()
    for ax, (im, title, heat) in zip(axes, panels):
        if heat is None:
            _show_image(ax, im)
        else:
            _overlay(ax, im, heat, cmap="viridis")
            _peak_box(ax, heat, im.shape[:2])
        ax.set_title(title, fontsize=9)
    for ax in axes[len(panels):]:
        ax.axis("off")
    if caption:
        fig.suptitle(caption, fontsize=9)
    return figure_png(fig, dpi, pad_inches=0.05)



# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
