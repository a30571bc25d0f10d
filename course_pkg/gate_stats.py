"""What trained attention gates are: how much of their variation a label explains, how saturated a map is.

Two descriptive statistics for the gates of SE and CBAM, used by chapters 4 and 5 and
``scripts/measure_textures.py``:

* :func:`variance_explained`: the share of the channel weights' variance across images that is
  explained by a grouping of the images (the class label, or the background). Near 1: the gate is
  mostly a function of that grouping (e.g. a *class switch*); near 0: it varies within the groups.
* :func:`map_saturation`: how much of a spatial map sits near its ceiling, and its mean on and off the
  object: a map that exceeds 0.9 almost everywhere is a plateau with a few dips, not a spotlight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["map_saturation", "variance_explained"]


def variance_explained(gates: torch.Tensor, groups: torch.Tensor) -> float:
    """Share of the total variance of ``gates`` ``(N, C)`` explained by ``groups`` ``(N,)`` (ints).

    Computed over all channels together: ``sum_c between-group variance / sum_c total variance``,
    the :math:`\\eta^2` of a one-way analysis of variance pooled over channels (between 0 and 1).
    With many small groups it is biased upwards by chance; with 4 classes and hundreds of images
    the bias is about ``(groups - 1) / N``.
    """
    if not (isinstance(gates, torch.Tensor) and gates.dim() == 2 and gates.shape[0] >= 2):
        raise ValueError(f"gates must be an (N, C) tensor with N >= 2, got "
                         f"{tuple(gates.shape) if isinstance(gates, torch.Tensor) else type(gates).__name__}")
    if not (isinstance(groups, torch.Tensor) and groups.shape == gates.shape[:1]
            and not groups.is_floating_point()):
        raise ValueError(f"groups must be an integer tensor of shape ({gates.shape[0]},), one group per "
                         f"image, got {groups.dtype if isinstance(groups, torch.Tensor) else type(groups)}")
    g = gates.double().cpu()
    k = groups.cpu()
    total = (g - g.mean(0)).pow(2).sum()
    if not bool((g.amax(0) > g.amin(0)).any()) or total == 0:
        raise ValueError("the gates do not vary across the images: there is no variance to explain")
    between = torch.zeros((), dtype=torch.float64)
    for v in k.unique():
        rows = g[k == v]
        between += len(rows) * (rows.mean(0) - g.mean(0)).pow(2).sum()
    return float(between / total)


def map_saturation(maps: torch.Tensor, masks: torch.Tensor, level: float = 0.9) -> dict[str, float]:
    """How saturated spatial maps ``(N, h, w)`` in (0, 1) are, and their mean on and off the objects.

    ``masks`` ``(N, H, W)`` (bool, at the image's resolution, ``H`` a multiple of ``h``) are pooled to
    the map's cells: a cell is *on* the object when the object covers at least half of it.

    Returns:
        ``{"share_above": share of all cells above level, "mean_on": mean map value on object cells,
        "mean_off": mean off them, "level": level}``.
    """
    if not (isinstance(maps, torch.Tensor) and maps.dim() == 3):
        raise ValueError(f"maps must be an (N, h, w) tensor, got "
                         f"{tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__}")
    if not (isinstance(masks, torch.Tensor) and masks.dim() == 3 and masks.shape[0] == maps.shape[0]):
        raise ValueError(f"masks must be (N, H, W) with N = {maps.shape[0]}, got "
                         f"{tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__}")
    (h, w), (hh, ww) = maps.shape[1:], masks.shape[1:]
    if hh % h or ww % w:
        raise ValueError(f"the masks' size {hh}x{ww} is not a multiple of the maps' {h}x{w}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level={level!r} is not valid; use a number between 0 and 1, such as 0.9")
    cover = F.avg_pool2d(masks[:, None].float().cpu(), (hh // h, ww // w))[:, 0]   # (N, h, w) in [0, 1]
    on = cover >= 0.5
    m = maps.detach().float().cpu()
    return {"share_above": float((m > level).float().mean()),
            "mean_on": float(m[on].mean()) if on.any() else float("nan"),
            "mean_off": float(m[~on].mean()) if (~on).any() else float("nan"), "level": float(level)}


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
