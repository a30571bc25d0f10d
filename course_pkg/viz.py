"""Drawing channel and spatial attention: SE/CBAM channel weights as bars, spatial maps over images,
and the pointing game (does a map's peak fall on the object?).

Every plotting helper builds a ``matplotlib.figure.Figure`` without pyplot and returns it (headless-safe;
shows once in a notebook when it is a cell's last expression), like :mod:`course_pkg.plotting`.
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from .plotting import display_image, draw_overlay, to_numpy

__all__ = [
    "handmade_features",
    "image_to_numpy",
    "plot_cbam_maps",
    "plot_channel_weights",
    "plot_feature_maps",
    "plot_map_overlay",
    "plot_pointing_game",
    "pointing_game",
    "upsample_maps",
]

ArrayLike = Union[torch.Tensor, np.ndarray]


#: An image as ``(H, W, 3)`` or ``(H, W)`` floats in [0, 1] (see :func:`course_pkg.plotting.display_image`).
image_to_numpy = display_image


def upsample_maps(maps: ArrayLike, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize attention maps to an image's size: ``(N, h, w)`` or ``(h, w)`` -> same rank at ``size``."""
    if isinstance(maps, (str, bytes)) or maps is None:
        raise TypeError(f"maps must be a tensor or array (N, h, w) or (h, w), got a {type(maps).__name__}")
    if (not isinstance(size, (tuple, list, torch.Size)) or len(size) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in size)):
        raise ValueError(f"size={tuple(size) if isinstance(size, (list, torch.Size)) else size!r} is not valid; "
                         "use (H, W), two positive integers")
    m = torch.as_tensor(to_numpy(maps, "maps"), dtype=torch.float64)
    squeeze = m.dim() == 2
    if squeeze:
        m = m[None]
    if m.dim() != 3:
        raise ValueError(f"maps must be (N, h, w) or (h, w), got shape {tuple(m.shape)}")
    up = F.interpolate(m[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
    return up[0] if squeeze else up


# ------------------------------------------------------------------------------------------------
# Channel weights
# ------------------------------------------------------------------------------------------------
def plot_channel_weights(weights: ArrayLike, labels: Optional[Sequence[str]] = None, *,
                         channel_names: Optional[Sequence[str]] = None, title: Optional[str] = None,
                         sort: bool = False, highlight: Optional[Sequence[int]] = None, xlabel: str = "channel",
                         ylabel: str = "weight", ylim: Optional[tuple[float, float]] = None,
                         figsize: tuple[float, float] = (7.0, 2.6)) -> Figure:
    """Per-channel attention weights as bars (one series) or side-by-side bars (several series).

    Args:
        weights: ``(C,)`` weights, or ``(K, C)`` for ``K`` series (e.g. images, or models).
        labels: ``K`` legend labels.
        channel_names: ``C`` tick labels (default: the channel numbers when ``C <= 32``).
        ylim: the value axis' range (default ``(0, 1)`` for weights, else fitted to the values).
        sort: order the channels by the first series' weight, highest first.
        highlight: channel indices drawn in a contrasting colour (one series only).

    Returns:
        The ``Figure``; for weights in [0, 1] a dashed line marks 0.5 (a sigmoid of zero).
    """
    w = to_numpy(weights, "weights").astype(np.float64)
    if w.ndim == 1:
        w = w[None]
    if w.ndim != 2:
        raise ValueError(f"weights must be (C,) or (K, C), got shape {tuple(w.shape)}"
                         + ("; for (K, Nq, Nk) attention matrices use plot_attention_grid" if w.ndim == 3 else ""))
    if w.size == 0:
        raise ValueError(f"weights is empty (shape {tuple(to_numpy(weights, 'weights').shape)}); pass at least one "
                         "channel weight")
    if highlight is not None:
        bad = [h for h in highlight if isinstance(h, bool) or not isinstance(h, (int, np.integer))
               or not 0 <= h < w.shape[1]]
        if bad:
            raise ValueError(f"highlight has {bad}, not channel indices of these {w.shape[1]} channels; use "
                             f"integers from 0 to {w.shape[1] - 1}")
    k, c = w.shape
    if labels is not None and len(labels) != k:
        raise ValueError(f"labels has {len(labels)} entries but weights has {k} series")
    if channel_names is not None and len(channel_names) != c:
        raise ValueError(f"channel_names has {len(channel_names)} entries but weights has {c} channels")
    order = np.argsort(-w[0], kind="stable") if sort else np.arange(c)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    width = 0.85 / k
    x = np.arange(c)
    for i in range(k):
        colours = None
        if highlight is not None and k == 1:
            hl = set(int(h) for h in highlight)
            colours = ["tab:orange" if int(ch) in hl else "tab:blue" for ch in order]
        ax.bar(x + (i - (k - 1) / 2) * width, w[i, order], width=width, color=colours,
               label=None if labels is None else labels[i])
    is_weight = ylabel == "weight" and ylim is None and np.nanmin(w) >= 0 and np.nanmax(w) <= 1
    if is_weight:
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(ylim if ylim is not None else (0, 1.0) if is_weight else
                (min(0.0, float(np.nanmin(w)) * 1.05), float(np.nanmax(w)) * 1.05))
    ax.set_xlim(-0.6, c - 0.4)
    ax.set_xlabel(xlabel + (" (sorted by weight)" if sort else ""))
    ax.set_ylabel(ylabel)
    if channel_names is not None:
        ax.set_xticks(x, labels=[channel_names[int(o)] for o in order], fontsize=7, rotation=60, ha="right")
    elif c <= 32:
        ax.set_xticks(x, labels=[str(int(o)) for o in order], fontsize=7)
    if labels is not None:
        ax.legend(fontsize=8, ncols=min(k, 4), loc="upper right")
    if title:
        ax.set_title(title)
    return fig


def plot_feature_maps(features: ArrayLike, names: Optional[Sequence[str]] = None, *, ncols: int = 8,
                      cmap: str = "magma", shared_scale: bool = False, panel_size: float = 1.5,
                      suptitle: Optional[str] = None) -> Figure:
    """The channels of one feature map as small images: ``(C, H, W)``, one panel per channel.

    Args:
        names: ``C`` panel titles (default ``"0"``, ``"1"``, ...).
        shared_scale: one colour scale for all panels (compare strengths); default each panel its own
            (compare patterns).
    """
    f = to_numpy(features)
    if f.ndim != 3:
        raise ValueError(f"features must be (C, H, W), got shape {tuple(f.shape)}")
    c = f.shape[0]
    if names is not None and len(names) != c:
        raise ValueError(f"names has {len(names)} entries but features has {c} channels")
    if ncols < 1:
        raise ValueError(f"ncols must be at least 1, got {ncols}")
    ncols = min(ncols, c)
    nrows = -(-c // ncols)
    aspect = f.shape[1] / f.shape[2]
    fig = Figure(figsize=(panel_size * ncols, panel_size * aspect * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    vmax = float(np.nanmax(f)) if shared_scale else None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= c:
            ax.axis("off")
            continue
        ax.imshow(f[i], cmap=cmap, vmin=0 if shared_scale else None, vmax=vmax)
        ax.set_title(names[i] if names is not None else str(i), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------
# Spatial maps on images
# ------------------------------------------------------------------------------------------------
def plot_map_overlay(image: ArrayLike, attention_map: ArrayLike, *, title: Optional[str] = None,
                     alpha: float = 0.5, cmap: str = "jet", mask: Optional[ArrayLike] = None,
                     mark_peak: bool = False, side_by_side: bool = True, size: float = 2.8) -> Figure:
    """A spatial attention map ``(h, w)`` upsampled (bilinear) onto its image.

    Args:
        image: ``(3, H, W)``, ``(H, W, 3)`` or ``(H, W)`` in [0, 1].
        attention_map: ``(h, w)``, any resolution (e.g. a CBAM map of a deep stage).
        mask: optional ``(H, W)`` object mask, drawn as a white outline.
        mark_peak: mark the map's maximum with a red cross (what the pointing game scores).
        side_by_side: also show the image alone on the left.
    """
    img = image_to_numpy(image)
    a = to_numpy(attention_map)
    if a.ndim != 2:
        raise ValueError(f"attention_map must be (h, w), got shape {tuple(a.shape)}")
    heat = upsample_maps(a, img.shape[:2]).numpy()
    n = 2 if side_by_side else 1
    fig = Figure(figsize=(size * n + 0.6, size), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    if side_by_side:
        axes[0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[0].set_title("input", fontsize=10)
        axes[0].set_xticks([])
        axes[0].set_yticks([])
    m = None if mask is None else to_numpy(mask).astype(bool)
    if m is not None and m.shape != img.shape[:2]:
        raise ValueError(f"mask has shape {tuple(m.shape)} but the image is {tuple(img.shape[:2])}; pass the "
                         "(H, W) object mask of this image")
    im = draw_overlay(axes[-1], img, heat, alpha=alpha, cmap=cmap, mask=m, mark_peak=mark_peak)
    axes[-1].set_title(title or f"attention map ({a.shape[0]}x{a.shape[1]}, upsampled)", fontsize=10)
    fig.colorbar(im, ax=axes[-1], shrink=0.8)
    return fig


def plot_cbam_maps(images: ArrayLike, channel_weights: ArrayLike, spatial_maps: ArrayLike, *,
                   masks: Optional[ArrayLike] = None, titles: Optional[Sequence[str]] = None,
                   alpha: float = 0.5, cmap: str = "jet", mark_peak: bool = True, size: float = 2.3) -> Figure:
    """CBAM's two maps for a few images: one row per image: the image, its spatial map on top of it,
    and its channel weights as bars.

    Args:
        images: ``(N, 3, H, W)`` in [0, 1].
        channel_weights: ``(N, C)``.
        spatial_maps: ``(N, h, w)`` (upsampled to ``H x W`` for drawing).
        masks: optional ``(N, H, W)`` object masks (white outline).
        titles: ``N`` row titles (e.g. the class and the prediction).
    """
    imgs = to_numpy(images)
    cw = to_numpy(channel_weights)
    sm = to_numpy(spatial_maps)
    if imgs.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(imgs.shape)}")
    n = imgs.shape[0]
    if n == 0:
        raise ValueError(f"images has shape {tuple(imgs.shape)}: 0 images; pass at least one image")
    if cw.ndim != 2 or cw.shape[0] != n:
        raise ValueError(f"channel_weights must be (N, C) with N={n}, got shape {tuple(cw.shape)}")
    if sm.ndim != 3 or sm.shape[0] != n:
        raise ValueError(f"spatial_maps must be (N, h, w) with N={n}, got shape {tuple(sm.shape)}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries but there are {n} images")
    mk = None if masks is None else to_numpy(masks).astype(bool)
    fig = Figure(figsize=(size * 3.6, size * n), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False, width_ratios=[1, 1, 1.6])
    for i in range(n):
        img = image_to_numpy(imgs[i])
        heat = upsample_maps(sm[i], img.shape[:2]).numpy()
        axes[i, 0].imshow(img)
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
        axes[i, 0].set_ylabel(titles[i] if titles is not None else f"image {i}", fontsize=9)
        draw_overlay(axes[i, 1], img, heat, alpha=alpha, cmap=cmap, vmin=0.0, vmax=1.0,
                     mask=None if mk is None else mk[i], mark_peak=mark_peak)
        axes[i, 2].bar(np.arange(cw.shape[1]), cw[i], width=1.0, color="tab:blue")
        axes[i, 2].axhline(0.5, color="grey", lw=0.8, ls="--")
        axes[i, 2].set_ylim(0, 1)
        axes[i, 2].set_xlim(-0.5, cw.shape[1] - 0.5)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=10)
            axes[i, 1].set_title(f"spatial map ({sm.shape[1]}x{sm.shape[2]})", fontsize=10)
            axes[i, 2].set_title("channel weights", fontsize=10)
        if i == n - 1:
            axes[i, 2].set_xlabel("channel")
    return fig


# ------------------------------------------------------------------------------------------------
# The pointing game
# ------------------------------------------------------------------------------------------------
def pointing_game(maps: ArrayLike, masks: ArrayLike, tolerance: Optional[int] = None) -> dict[str, float]:
    """Score attention maps by whether each map's peak falls on its object; see
    :func:`course_pkg.pointing_game.pointing_game` (this delegates to it).

    Args:
        maps: ``(N, h, w)`` attention maps (higher = more attention).
        masks: ``(N, H, W)`` object masks (bool or 0/1).
        tolerance: pixels of slack around the mask; default (None) the course-wide
            :data:`course_pkg.pointing_game.POINTING_TOLERANCE`.

    Returns:
        ``{"score", "hits", "n", "chance", "area", "tolerance"}``; ``chance`` is the expected score of
        random maps of the same shape upsampled and scored the same way (not the mean object area).
    """
    k = to_numpy(masks)
    if k.dtype.kind == "f" and not np.isin(k, (0.0, 1.0)).all():
        raise ValueError(f"masks has dtype {k.dtype} (float) with values other than 0 and 1; pass bool object "
                         "masks (True on the object), e.g. masks > 0.5 (the order is pointing_game(maps, "
                         "masks): were the arguments swapped?)")
    from .pointing_game import POINTING_TOLERANCE
    from .pointing_game import pointing_game as score

    return score(maps, masks, POINTING_TOLERANCE if tolerance is None else tolerance)


def _wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """A 95% Wilson interval for a proportion."""
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def plot_pointing_game(results: Union[Mapping[str, float], Mapping[str, Mapping[str, float]]], *,
                       title: Optional[str] = "pointing game", figsize: Optional[tuple[float, float]] = None) -> Figure:
    """Pointing-game scores as bars with 95% intervals, each beside its chance rate.

    Args:
        results: one :func:`pointing_game` result, or ``{name: result}`` to compare several maps
            (e.g. CBAM's spatial map, the feature-energy map, a random map).
    """
    if "score" in results:
        results = {"attention map": results}  # type: ignore[dict-item]
    items = list(results.items())
    if not items:
        raise ValueError("results is empty; pass a pointing_game() result or a dict of them")
    for name, r in items:
        if not isinstance(r, Mapping) or not {"score", "chance", "hits", "n"} <= set(r):
            raise ValueError(f"results[{name!r}] is not a pointing_game() result (needs score, chance, hits, n)")
    k = len(items)
    fig = Figure(figsize=figsize or (1.6 + 1.5 * k, 3.0), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(k)
    scores = [float(r["score"]) for _, r in items]
    lo_hi = [_wilson(int(r["hits"]), int(r["n"])) for _, r in items]
    err = np.array([[s - lo, hi - s] for s, (lo, hi) in zip(scores, lo_hi)]).T
    ax.bar(x - 0.18, scores, width=0.36, yerr=err, capsize=3, color="tab:blue", label="score (peak on object)")
    ax.bar(x + 0.18, [float(r["chance"]) for _, r in items], width=0.36, color="lightgrey",
           label="chance (random maps scored the same way)")
    for xi, s, (_, hi), (_, r) in zip(x, scores, lo_hi, items):
        ax.text(xi - 0.18, hi + 0.02, f"{s:.2f}", ha="center", va="bottom", fontsize=8)  # above the error bar
        ax.text(xi + 0.18, float(r["chance"]) + 0.02, f"{float(r['chance']):.2f}", ha="center", va="bottom",
                fontsize=8)
    ax.set_xticks(x, labels=[name for name, _ in items], fontsize=9)
    ax.set_ylim(0, 1.32)                          # room for the labels and, above them, the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("share of images")
    ax.legend(fontsize=8, loc="upper center", ncol=2, frameon=False)
    if title:
        ax.set_title(f"{title} (n = {int(items[0][1]['n'])})" if len({int(r['n']) for _, r in items}) == 1
                     else title)
    return fig


# ------------------------------------------------------------------------------------------------
# A hand-made feature map to look at (no training, no downloads)
# ------------------------------------------------------------------------------------------------
def _gaussian_derivative(sigma: float, theta: float, size: int) -> torch.Tensor:
    """A first derivative of a Gaussian along direction ``theta`` (an oriented edge detector), ``(size, size)``."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    g = torch.exp(-(x * x + y * y) / (2 * sigma * sigma))
    d = -(x * math.cos(theta) + y * math.sin(theta)) / (sigma * sigma) * g
    return d / d.abs().sum() * 2                        # unit response to a step edge of height 1


def handmade_features(image: torch.Tensor, kernel_size: int = 15) -> tuple[torch.Tensor, list[str]]:
    """One convolution layer with hand-made weights plus a ReLU: a ``(C, H, W)`` feature map with named channels.

    A stand-in for the first stage of a trained CNN, so that a chapter has a real feature map of a photo
    without downloading weights. The 16 filters, all applied to the RGB image with ``padding="same"``:

    * 4 colour channels from colour mixes, smoothed: ``orange`` (red minus blue), ``cool`` (blue minus red,
      above -0.15: greys, whites and blues), ``bright`` (grey level above 0.6) and ``dark`` (below 0.4);
    * 8 fine-texture channels: derivatives of a narrow Gaussian (sigma 1 px) at 0, 45, 90, 135 degrees,
      each with both signs (as trained first layers have), that fire on fur strands and whiskers;
    * 4 coarse-edge channels: derivatives of a wide Gaussian (sigma 3 px) at the four orientations
      (one sign), that fire on the outlines of large shapes.

    Args:
        image: ``(3, H, W)`` RGB in [0, 1].
        kernel_size: odd size of the kernels.

    Returns:
        ``(features (16, H, W), names)``; every channel is non-negative (after the ReLU).
    """
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"image must be a (3, H, W) RGB tensor, got "
                         f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral):
        raise TypeError(f"kernel_size={kernel_size!r} is a {type(kernel_size).__name__}; use an odd int >= 7 "
                        "(e.g. 15)")
    kernel_size = int(kernel_size)
    if kernel_size < 7 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd integer >= 7, got {kernel_size}")
    k = kernel_size
    grey = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    r = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    blur = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * 2.0 ** 2))
    blur = blur / blur.sum()
    kernels, names = [], []
    for name, mix, bias in (("orange", (1.0, 0.0, -1.0), 0.0), ("cool", (-1.0, 0.0, 1.0), 0.15),
                            ("bright", tuple(grey.tolist()), -0.6), ("dark", tuple((-grey).tolist()), 0.4)):
        kernels.append((torch.tensor(mix, dtype=torch.float64)[:, None, None] * blur, bias))
        names.append(name)
    for scale, sigma, signs in (("fine", 1.0, (1, -1)), ("coarse", 3.0, (1,))):
        for deg in (0, 45, 90, 135):
            d = _gaussian_derivative(sigma, math.radians(deg), k)
            for s in signs:
                kernels.append((s * grey[:, None, None] * d, 0.0))
                names.append(f"{scale} {deg}°" + ({1: "+", -1: "-"}[s] if len(signs) == 2 else ""))
    weight = torch.stack([w for w, _ in kernels]).float()             # (16, 3, k, k)
    bias = torch.tensor([b for _, b in kernels], dtype=torch.float32)  # (16,)
    x = image.float()[None]                                            # (1, 3, H, W)
    feats = F.relu(F.conv2d(F.pad(x, (k // 2,) * 4, mode="reflect"), weight, bias))[0]  # (16, H, W)
    return feats, names


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
