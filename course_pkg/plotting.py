"""Plotting helpers shared by the chapters: attention weights as heatmaps, images ready to show, a map
drawn over an image, and a figure rendered to PNG bytes (one helper for each, used by ``viz`` and
``widgets`` alike).

Every helper builds a ``matplotlib.figure.Figure`` without pyplot and returns it, so it works
headless (tests, the book build) and shows exactly once in a notebook when it is the last
expression of a cell.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["display_image", "draw_overlay", "enable_notebook_display", "figure_png", "plot_attention",
           "plot_attention_grid", "to_numpy"]

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[Sequence[float]]]


def to_numpy(x: ArrayLike, name: str = "x") -> np.ndarray:
    """A detached CPU NumPy copy of a tensor, array or nested list (``name`` is for the error message)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a tensor, an array or a nested list of numbers, got a "
                        f"{type(x).__name__} ({x!r:.40})")
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64 if x.is_floating_point() else x.dtype).numpy()
    return np.asarray(x)


def display_image(image: ArrayLike) -> np.ndarray:
    """An image ready for ``imshow``: ``(H, W, 3)`` or ``(H, W)`` floats in [0, 1].

    Accepts ``(C, H, W)`` (C = 1 or 3, channels first), ``(H, W, C)`` or ``(H, W)`` tensors or arrays.
    The values are mapped to [0, 1] in one documented way:

    * ``uint8``: divided by 255;
    * floats already in [0, 1]: unchanged;
    * floats that overshoot [0, 1] by at most 0.05 (resampling ringing): clipped;
    * floats further outside (a normalised image, e.g. ImageNet mean/std): rescaled by their min and max,
      so the picture stays visible instead of saturating.
    """
    a = to_numpy(image)
    a = a.astype(np.float64) / 255.0 if a.dtype == np.uint8 else a.astype(np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)                  # (C, H, W) -> (H, W, C)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise ValueError(f"image must have shape (C, H, W), (H, W, C) with C in (1, 3), or (H, W); "
                         f"got {tuple(a.shape)}")
    lo, hi = float(a.min()), float(a.max())
    if lo < -0.05 or hi > 1.05:
        return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.clip(a, 0.0, 1.0)


def draw_overlay(ax: Axes, image: np.ndarray, heat: np.ndarray, *, alpha: float = 0.5, cmap: str = "jet",
                 vmin: Optional[float] = None, vmax: Optional[float] = None, grey: bool = False,
                 interpolation: str = "bilinear", mask: Optional[np.ndarray] = None,
                 mark_peak: bool = False, mask_color: str = "white") -> Any:
    """Draw ``heat`` (any ``(h, w)`` grid) over ``image`` ``(H, W[, 3])`` on ``ax``, stretched to the image.

    Args:
        grey: show the image in grey under the map (the colours then belong to the map only).
        interpolation: ``"bilinear"`` for a smooth map, ``"nearest"`` for one block per patch.
        mask: optional ``(H, W)`` object mask, outlined.
        mark_peak: a red cross on the map's maximum (what the pointing game scores).

    Returns:
        the map's ``AxesImage`` (for a colour bar).
    """
    h, w = image.shape[:2]
    shown = image.mean(-1) if grey and image.ndim == 3 else image
    ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    im = ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax, extent=extent,
                   interpolation=interpolation)
    if mask is not None:
        ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=mask_color, linewidths=1.0)
    if mark_peak:
        r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
        ax.plot([(c + 0.5) * w / heat.shape[1] - 0.5], [(r + 0.5) * h / heat.shape[0] - 0.5], marker="x",
                color="red", markersize=9, mew=2.5)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _check_matrix(w: np.ndarray, name: str = "weights") -> np.ndarray:
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (queries x keys) or a 1-D row, "
                         f"got an array of shape {tuple(w.shape)}")
    return w


def _draw(ax: Axes, w: np.ndarray, query_labels: Optional[Sequence[str]], key_labels: Optional[Sequence[str]],
          annotate: Optional[bool], cmap: str, vmin: Optional[float], vmax: Optional[float]):
    nq, nk = w.shape
    for labels, n, what in ((query_labels, nq, "query_labels"), (key_labels, nk, "key_labels")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{what} has {len(labels)} labels but the weights have {n} "
                             f"{'rows' if what == 'query_labels' else 'columns'}")
    im = ax.imshow(w, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    if key_labels is not None:
        ax.set_xticks(range(nk), labels=list(key_labels), rotation=45, ha="right")
    if query_labels is not None:
        ax.set_yticks(range(nq), labels=list(query_labels))
    if annotate is None:
        annotate = nq * nk <= 100
    if annotate:
        lo, hi = np.nanmin(w), np.nanmax(w)
        mid = (lo + hi) / 2
        for i in range(nq):
            for j in range(nk):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if w[i, j] > mid else "white")
    return im


def plot_attention(weights: ArrayLike, query_labels: Optional[Sequence[str]] = None,
                   key_labels: Optional[Sequence[str]] = None, *, title: Optional[str] = None,
                   annotate: Optional[bool] = None, cmap: str = "viridis", vmin: Optional[float] = 0.0,
                   vmax: Optional[float] = None, xlabel: str = "key (attended to)",
                   ylabel: str = "query (attending)", figsize: Optional[tuple[float, float]] = None) -> Figure:
    """Draw attention weights as a heatmap: one row per query, one column per key.

    Args:
        weights: ``(Nq, Nk)`` weights (each row usually sums to one), or one row ``(Nk,)``.
        query_labels, key_labels: tick labels (``Nq`` and ``Nk`` strings).
        annotate: write each weight in its cell (default: when there are at most 100 cells).

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    w = _check_matrix(to_numpy(weights, "weights"))
    nq, nk = w.shape
    if figsize is None:
        figsize = (min(1.0 + 0.55 * nk, 12.0), min(1.0 + 0.45 * nq, 10.0))
        figsize = (max(figsize[0], 3.5), max(figsize[1], 1.8))
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    im = _draw(ax, w, query_labels, key_labels, annotate, cmap, vmin, vmax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="weight")
    return fig


def plot_attention_grid(weights: ArrayLike, titles: Optional[Sequence[str]] = None,
                        query_labels: Optional[Sequence[str]] = None, key_labels: Optional[Sequence[str]] = None,
                        *, ncols: int = 4, annotate: bool = False, cmap: str = "viridis",
                        suptitle: Optional[str] = None, panel_size: float = 2.6) -> Figure:
    """Draw several attention matrices side by side, e.g. one per head.

    Args:
        weights: ``(K, Nq, Nk)`` stack of matrices (for a multi-head layer, ``K`` = heads).
        titles: ``K`` panel titles (default ``"head 0"``, ``"head 1"``, ...).
        ncols: panels per row.

    Returns:
        The ``matplotlib.figure.Figure``; all panels share one colour scale.
    """
    w = to_numpy(weights, "weights")
    if w.ndim != 3:
        raise ValueError(f"weights must have shape (K, Nq, Nk), got {tuple(w.shape)}")
    if w.shape[0] == 0:
        raise ValueError(f"weights has shape {tuple(w.shape)}: no matrices to draw; pass at least one "
                         "(K >= 1) matrix")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    k = w.shape[0]
    if titles is not None and len(titles) != k:
        raise ValueError(f"titles has {len(titles)} entries but there are {k} matrices")
    ncols = min(ncols, k)
    nrows = -(-k // ncols)
    fig = Figure(figsize=(panel_size * ncols + 0.8, panel_size * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    vmax = float(np.nanmax(w)) if w.size else 1.0
    im = None
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.axis("off")
            continue
        im = _draw(ax, w[i], query_labels if i % ncols == 0 else None, key_labels, annotate, cmap, 0.0, vmax)
        if query_labels is not None and i % ncols != 0:
            ax.set_yticks([])
        ax.set_title(titles[i] if titles is not None else f"head {i}", fontsize=10)
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def figure_png(fig: Figure, dpi: int = 100, pad_inches: float = 0.1) -> bytes:
    """Render a Figure to PNG bytes, cropped to its content (works without pyplot or a GUI)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not hasattr(fig.canvas, "print_png"):
        FigureCanvasAgg(fig)
    from .figure_text import text_metadata  # the smallest text's size, read by the book's browser test

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=pad_inches,
                metadata=text_metadata(fig, dpi))
    return buf.getvalue()


def enable_notebook_display() -> bool:
    """Make every ``matplotlib.figure.Figure`` that is the last expression of a cell display as a
    PNG in IPython/Jupyter/Colab, including figures built without pyplot (as the helpers here do).

    Called when ``course_pkg`` is imported; returns whether an IPython shell was found."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    try:  # the inline backend installs its own PNG formatter when it loads: let it load now, then replace it
        import matplotlib_inline.backend_inline  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    png = shell.display_formatter.formatters["image/png"]
    png.for_type(Figure, figure_png)  # figure_png records the figure's smallest text size (figure_text)
    shell.events.register("post_execute", lambda: png.for_type(Figure, figure_png))  # after %matplotlib
    return True


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
