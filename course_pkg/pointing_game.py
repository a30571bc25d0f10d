"""The pointing game: does an attention map's peak fall on the object? Scored against a correct chance.

A map ``(h, w)`` is upsampled bilinearly to its mask's size ``(H, W)`` and its maximum located; the image is
a *hit* when the mask, dilated by :data:`POINTING_TOLERANCE` pixels, is True there.

**Chance** is the score a map without information gets *when scored the same way*: the expected hit rate
of a map of the same shape ``(h, w)`` whose values are independent and uniform, upsampled and scored like
the real maps. It is not the mean object area: bilinear upsampling (``align_corners=False``) reproduces an
edge cell's value exactly on the image border but blends every inner cell with its neighbours, so the
peaks of random coarse maps pile up on the border (about a third of them for 12 x 12 maps upsampled to
48 x 48), where objects seldom are. :func:`random_peak_distribution` measures where those peaks land
(Monte Carlo, 20,000 maps, averaged over the four flips, which leave the procedure unchanged), and the
chance of a set of masks is the probability that such a peak lands on the dilated mask, averaged over
the images. Maps already at the mask's size get the uniform distribution: chance = mean dilated area.

One tolerance is used across the course: :data:`POINTING_TOLERANCE` = 1 pixel, which absorbs the
half-pixel uncertainty of locating a peak in an upsampled map and of a rasterised object's edge, while
keeping chance low on 48 px images.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "POINTING_TOLERANCE",
    "centre_map",
    "dilate_masks",
    "pointing_chance",
    "pointing_game",
    "random_peak_distribution",
    "upsample_maps",
    "wilson_interval",
]

#: The tolerance (pixels of slack around the object) used by every chapter.
POINTING_TOLERANCE = 1
_N_RANDOM_MAPS = 20_000

ArrayLike = Union[torch.Tensor, np.ndarray]


def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu")
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or a numpy array, got {type(x).__name__}")


def _check_size(name: str, size: object) -> tuple[int, int]:
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in size))
    if not ok:
        raise ValueError(f"{name}={size!r} is not valid; use a pair of positive integers (height, width)")
    return int(size[0]), int(size[1])  # type: ignore[index]


def _check_tolerance(tolerance: object) -> int:
    if not isinstance(tolerance, numbers.Integral) or isinstance(tolerance, bool) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer (pixels), got {tolerance!r}")
    return int(tolerance)


def upsample_maps(maps: ArrayLike, size: tuple[int, int]) -> torch.Tensor:
    """Bilinearly resize maps (``align_corners=False``): ``(N, h, w)`` or ``(h, w)`` -> same rank at ``size``."""
    m = _as_tensor(maps, "maps").to(torch.float64)
    size = _check_size("size", tuple(size) if isinstance(size, (tuple, list)) else size)
    squeeze = m.dim() == 2
    if squeeze:
        m = m[None]
    if m.dim() != 3:
        raise ValueError(f"maps must be (N, h, w) or (h, w), got shape {tuple(m.shape)}")
    up = F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return up[0] if squeeze else up


def dilate_masks(masks: ArrayLike, tolerance: int) -> torch.Tensor:
    """Grow ``(N, H, W)`` boolean masks by ``tolerance`` pixels (a square neighbourhood): ``(N, H, W)`` bool."""
    tolerance = _check_tolerance(tolerance)
    mask = _as_tensor(masks, "masks").to(torch.bool)
    if mask.dim() != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(mask.shape)}")
    if tolerance == 0:
        return mask
    return F.max_pool2d(mask[:, None].float(), 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0] > 0


@functools.lru_cache(maxsize=32)
def _peak_distribution(map_size: tuple[int, int], image_size: tuple[int, int]) -> torch.Tensor:
    (h, w), (hh, ww) = map_size, image_size
    if (h, w) == (hh, ww):
        return torch.full((hh, ww), 1.0 / (hh * ww), dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(hh * ww, dtype=torch.float64)
    chunk = max(1, min(_N_RANDOM_MAPS, 4_000_000 // (hh * ww)))
    done = 0
    while done < _N_RANDOM_MAPS:
        k = min(chunk, _N_RANDOM_MAPS - done)
        maps = torch.rand(k, 1, h, w, generator=g, dtype=torch.float64)
        up = F.interpolate(maps, size=(hh, ww), mode="bilinear", align_corners=False)   # (k, 1, H, W)
        counts += torch.bincount(up.flatten(1).argmax(dim=1), minlength=hh * ww).to(torch.float64)
        done += k
    p = counts.view(hh, ww) / _N_RANDOM_MAPS
    p = (p + p.flip(0) + p.flip(1) + p.flip(0).flip(1)) / 4      # the procedure is flip-symmetric
    p.requires_grad_(False)
    return p


def random_peak_distribution(map_size: tuple[int, int], image_size: tuple[int, int]) -> torch.Tensor:
    """Where the peak of a random ``map_size`` map lands once upsampled to ``image_size``: ``(H, W)``
    probabilities summing to one.

    Estimated from 20,000 maps of independent uniform values (seeded, so the same every call; the
    estimate's standard error on a chance rate near 0.1 is about 0.002), upsampled with
    :func:`upsample_maps` and located with ``argmax`` exactly like :func:`pointing_game`.
    """
    h, w = _check_size("map_size", tuple(map_size) if isinstance(map_size, (tuple, list)) else map_size)
    hh, ww = _check_size("image_size", tuple(image_size) if isinstance(image_size, (tuple, list)) else image_size)
    return _peak_distribution((h, w), (hh, ww)).clone()


def pointing_chance(masks: ArrayLike, map_size: tuple[int, int],
                    tolerance: int = POINTING_TOLERANCE) -> float:
    """The chance rate of the pointing game on ``masks`` ``(N, H, W)`` for maps of ``map_size`` ``(h, w)``:
    the expected score of random maps of that shape, scored like :func:`pointing_game` scores maps."""
    size = _check_size("map_size", tuple(map_size) if isinstance(map_size, (tuple, list)) else map_size)
    mask = dilate_masks(masks, tolerance)
    p = _peak_distribution(size, (mask.shape[1], mask.shape[2]))
    return float((mask.to(torch.float64) * p).sum(dim=(1, 2)).mean())


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """A Wilson interval for a proportion ``hits / n`` (95% with the default ``z``)."""
    if not (isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
            and isinstance(hits, numbers.Integral) and not isinstance(hits, bool) and 0 <= hits <= n):
        raise ValueError(f"hits={hits!r} and n={n!r} must be integers with 0 <= hits <= n and n >= 1")
    hits, n = int(hits), int(n)
    if not (isinstance(z, numbers.Real) and not isinstance(z, bool) and 0 < z < math.inf):
        raise ValueError(f"z={z!r} is not valid; use a positive number of standard deviations (1.96: 95%)")
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def pointing_game(maps: ArrayLike, masks: ArrayLike, tolerance: int = POINTING_TOLERANCE
                  ) -> dict[str, float]:
    """Score attention maps by whether each map's peak falls on its object (within ``tolerance`` pixels).

    Args:
        maps: ``(N, h, w)`` attention maps (higher = more attention), any resolution.
        masks: ``(N, H, W)`` object masks (bool or 0/1), each with at least one True pixel. A bool ``maps``
            or a ``masks`` holding other values than 0 and 1 (the arguments swapped) raises ``ValueError``.
        tolerance: pixels of slack around the mask; keep the default (:data:`POINTING_TOLERANCE`) so
            scores compare across chapters.

    Returns:
        ``{"score": hits / n, "hits": hits, "n": n, "chance": the expected score of random (h, w) maps
        scored the same way (see :func:`pointing_chance`), "area": mean fraction of the image the dilated
        masks cover (the chance of maps at full resolution), "tolerance": tolerance}``.
    """
    m = _as_tensor(maps, "maps")
    k = _as_tensor(masks, "masks")
    if m.dtype == torch.bool:
        swapped = " (the arguments look swapped: masks is not bool)" if k.dtype != torch.bool else ""
        raise ValueError(f"maps is a bool tensor of shape {tuple(m.shape)}: that is a mask, not an attention "
                         f"map{swapped}; the order is pointing_game(maps, masks), maps holding attention "
                         "values (higher = more attention)")
    if k.is_complex() or (k.dtype != torch.bool and not bool(((k == 0) | (k == 1)).all())):
        raise ValueError(f"masks (dtype {k.dtype}, shape {tuple(k.shape)}) holds values other than 0 and 1: it "
                         "looks like an attention map, not an object mask (the order is pointing_game(maps, "
                         "masks)); pass bool masks, True on the object (e.g. masks > 0.5)")
    if m.dim() != 3:
        raise ValueError(f"maps must be (N, h, w), got shape {tuple(m.shape)}")
    if k.dim() != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {tuple(k.shape)}")
    if m.shape[0] != k.shape[0]:
        raise ValueError(f"maps has {m.shape[0]} maps but masks has {k.shape[0]} masks; pass one mask per map")
    if m.shape[0] == 0:
        raise ValueError("maps and masks are empty; pass at least one map")
    if not torch.isfinite(m.to(torch.float64)).all():
        raise ValueError("maps hold NaN or infinite values; a peak cannot be located")
    tolerance = _check_tolerance(tolerance)
    raw = k.to(torch.bool)
    has_object = raw.flatten(1).any(dim=1)
    if not has_object.all():
        empty = torch.nonzero(~has_object).flatten()[:5].tolist()
        raise ValueError(f"masks {empty} are empty; every image needs an object to point at")
    mask = dilate_masks(raw, tolerance)
    n, hh, ww = mask.shape
    heat = upsample_maps(m, (hh, ww)).flatten(1)                  # (N, H*W)
    peaks = heat.argmax(dim=1)                                     # (N,) the first maximum
    hits = int(mask.flatten(1).gather(1, peaks[:, None]).sum())
    p = _peak_distribution((int(m.shape[1]), int(m.shape[2])), (hh, ww))
    chance = float((mask.to(torch.float64) * p).sum(dim=(1, 2)).mean())
    area = float(mask.flatten(1).to(torch.float64).mean(dim=1).mean())
    return {"score": hits / n, "hits": hits, "n": n, "chance": chance, "area": area, "tolerance": tolerance}


def centre_map(h: int, w: int, sigma: float = 0.25) -> torch.Tensor:
    """A centre prior: an ``(h, w)`` Gaussian bump at the image centre, ``sigma`` a fraction of the side.

    A reference map that knows nothing about the image, only that objects are often near the middle.
    """
    h, w = _check_size("(h, w)", (h, w))
    if not (isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and 0 < sigma < math.inf):
        raise ValueError(f"sigma={sigma!r} is not valid; use a positive fraction of the side such as 0.25")
    y = (torch.arange(h, dtype=torch.float64) + 0.5) / h - 0.5
    x = (torch.arange(w, dtype=torch.float64) + 0.5) / w - 0.5
    return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
