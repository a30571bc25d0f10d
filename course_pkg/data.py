"""The labelled image data sets of the course, all offline but CIFAR-10: synthetic clutter, digits, CIFAR-10.

These are the functions a training run records as its data: a checkpoint's ``train_data`` and ``test_data``
name them as ``{"generator": "course_pkg.data:make_clutter", "kwargs": {...}}`` (or ``:load_digits``,
``:load_cifar10``), and :func:`course_pkg.bundled.bundled_test_data` draws a bundled model's held-out set
again from that spec. The bundled checkpoints store those strings (hash-checked), so these functions stay
defined here, under these names.

* :func:`make_clutter` draws images that each hold **one target object** (its shape is the class: square,
  disk, triangle, cross, ring, diamond) among **distractors** (thin strokes, bent strokes, thin arcs and
  lumpy blobs, none of which is a class shape). Target and distractors take their colours from the same
  distribution and the target's area does not depend on its class, so only the object's *shape* tells the
  class: a colour histogram is no help (``tests/test_data.py`` proves it). The exact mask of the target
  comes with every image, so a chapter can compare an attention map with where the object really is.
  Everything is drawn from one seeded generator: the same arguments give the same tensors on any machine.
* :func:`load_digits`: scikit-learn's 8 x 8 handwritten digits (shipped inside scikit-learn).
* :func:`load_cifar10`: the optional online path through torchvision. Without a network it fails fast with
  a message saying what to do; it never hangs.

Shapes: images are ``(N, C, H, W)`` floats in ``[0, 1]``, labels ``(N,)`` int64, masks ``(N, H, W)`` bool.

Elsewhere: the sample photographs and ImageNet normalisation are in :mod:`course_pkg.photos`; ``Dataset``
views with transforms (:class:`~course_pkg.datasets.ImageDataset`, ``ClutterDataset``) in
:mod:`course_pkg.datasets`; the ``.to(device)`` of these containers is :func:`course_pkg.to_device.to_device`.
"""

from __future__ import annotations

import math
import numbers
import os
import socket
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Union

import torch
from torch.utils.data import Dataset

from .checks import int_in_range
from .network import reachable
from .to_device import to_device

__all__ = [
    "CLUTTER_CLASSES", "ClutterSet", "LabelledImages", "make_clutter", "load_digits", "load_cifar10",
]

CLUTTER_CLASSES: tuple[str, ...] = ("square", "disk", "triangle", "cross", "ring", "diamond")

# Area of each unit shape (half-size 1), so a target of a given area gets the right half-size whatever
# its class: the number of target pixels then says nothing about the class.
_CROSS_ARM = 1 / 3          # half-width of a cross's arms, as a fraction of its half-size
_RING_INNER = 0.55          # inner radius of a ring, as a fraction of its outer radius
_UNIT_AREA = {
    "square": 4.0,
    "disk": math.pi,
    "triangle": 2.0,
    "cross": 2 * (2 * 2 * _CROSS_ARM) - (2 * _CROSS_ARM) ** 2,
    "ring": math.pi * (1 - _RING_INNER ** 2),
    "diamond": 2.0,
}
_DISTRACTOR_KINDS = ("stroke", "bent", "arc", "blob")


# ------------------------------------------------------------------------------------------------
# The synthetic "object in clutter" set
# ------------------------------------------------------------------------------------------------

class ClutterSet(NamedTuple):
    """What :func:`make_clutter` returns (unpacks as ``images, labels, masks, class_names``)."""

    images: torch.Tensor        # (N, 3, H, W) float32 in [0, 1]
    labels: torch.Tensor        # (N,) int64, index into class_names
    masks: torch.Tensor         # (N, H, W) bool, True on the target object's pixels
    class_names: tuple[str, ...]

    def to(self, device: Union[str, torch.device, None]) -> ClutterSet:
        """The same set with images, labels and masks on ``device`` (e.g. the model's); see :func:`to_device`."""
        return to_device(self, device)


def _random_colours(n: int, g: torch.Generator) -> torch.Tensor:
    """``(n, 3)`` bright colours: a random direction in RGB, scaled so the brightest channel is in [0.6, 1]."""
    rgb = torch.rand(n, 3, generator=g) + 0.05
    value = 0.6 + 0.4 * torch.rand(n, 1, generator=g)
    return rgb / rgb.amax(dim=1, keepdim=True) * value


def _segment_mask(dx: torch.Tensor, dy: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                  half_width: torch.Tensor) -> torch.Tensor:
    """Pixels within ``half_width`` of the segments a->b.

    dx, dy: (q, w, w) pixel offsets from the distractor's centre; a, b: (q, 2) ends in the same frame;
    half_width: (q,). Returns a (q, w, w) bool mask.
    """
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]                  # (q, 1, 1)
    ux, uy = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
    t = ((dx - ax) * ux + (dy - ay) * uy) / (ux * ux + uy * uy).clamp_min(1e-6)
    t = t.clamp(0, 1)                                                   # (q, w, w) closest point on segment
    dist2 = (dx - ax - t * ux) ** 2 + (dy - ay - t * uy) ** 2
    return dist2 <= half_width[:, None, None] ** 2


def _target_mask(kind: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The unit shape ``kind`` on normalised coordinates u, v (centre 0, half-size 1); v points down."""
    au, av = u.abs(), v.abs()
    if kind == "square":
        return torch.maximum(au, av) <= 1
    if kind == "disk":
        return u * u + v * v <= 1
    if kind == "triangle":                      # apex at the top (v = -1), base at the bottom (v = 1)
        return (av <= 1) & (au <= (v + 1) / 2)
    if kind == "cross":
        return ((au <= 1) & (av <= _CROSS_ARM)) | ((av <= 1) & (au <= _CROSS_ARM))
    if kind == "ring":
        r2 = u * u + v * v
        return (r2 <= 1) & (r2 >= _RING_INNER ** 2)
    if kind == "diamond":
        return au + av <= 1
    raise ValueError(f"unknown shape {kind!r}; known: {CLUTTER_CLASSES}")


def make_clutter(n: int, image_size: int = 48, num_classes: int = 6, seed: int = 0, *,
                 distractors: Union[int, tuple[int, int]] = (3, 6), noise: float = 0.03,
                 chunk_size: int = 512) -> ClutterSet:
    """Draw ``n`` images, each with one target shape (the class) among distractors.

    Args:
        n: number of images.
        image_size: side of the square images in pixels (at least 24; 48 or 64 are the usual choices).
        num_classes: how many shapes take part, the first ``num_classes`` of :data:`CLUTTER_CLASSES`
            (2 to 6). Labels are balanced: image ``i`` gets a random class, uniformly.
        seed: seed of the generator; the same arguments give the same tensors.
        distractors: the number of distractors per image, an integer or an inclusive range ``(lo, hi)``.
        noise: standard deviation of the Gaussian pixel noise added to the whole image.
        chunk_size: images drawn at once (memory only; the result does not depend on it).

    Returns:
        :class:`ClutterSet` ``(images (N, 3, H, W) float32 in [0, 1], labels (N,) int64,
        masks (N, H, W) bool, class_names)``.
    """
    n = int_in_range("n", n, 1)
    size = int_in_range("image_size", image_size, 24, 1024, " (e.g. 48 or 64)")
    k = int_in_range("num_classes", num_classes, 2, len(CLUTTER_CLASSES),
                   f" (the shapes are {', '.join(CLUTTER_CLASSES)})")
    seed = int_in_range("seed", seed, 0)
    chunk_size = int_in_range("chunk_size", chunk_size, 1)
    if isinstance(distractors, numbers.Integral) and not isinstance(distractors, bool):
        d_lo = d_hi = int(distractors)
    elif (isinstance(distractors, (tuple, list)) and len(distractors) == 2
          and all(isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in distractors)):
        d_lo, d_hi = (int(d) for d in distractors)
    else:
        raise ValueError(f"distractors={distractors!r} is not valid; use an integer or a range (lo, hi)")
    if not 0 <= d_lo <= d_hi <= 32:
        raise ValueError(f"distractors={distractors!r} is not valid; use counts with 0 <= lo <= hi <= 32")
    if not (isinstance(noise, numbers.Real) and not isinstance(noise, bool) and 0 <= noise <= 0.5):
        raise ValueError(f"noise={noise!r} is not valid; use a standard deviation from 0 to 0.5")
    noise = float(noise)
    classes = CLUTTER_CLASSES[:k]

    # ---- every random number first, in a fixed order, so chunking cannot change the result ----------
    g = torch.Generator().manual_seed(seed)
    s = float(size)
    labels = torch.randint(0, k, (n,), generator=g)
    background = 0.3 * torch.rand(n, 3, generator=g)                       # dark, so objects stand out
    # target: its area is drawn independently of its class ("equivalent radius" 11% to 20% of the side)
    eq_radius = s * (0.11 + 0.09 * torch.rand(n, generator=g))
    unit_area = torch.tensor([_UNIT_AREA[c] for c in classes])[labels]
    half_size = eq_radius * torch.sqrt(math.pi / unit_area)                # half-size of the shape
    margin = half_size + 1.0
    centre = margin[:, None] + (s - 2 * margin[:, None]) * torch.rand(n, 2, generator=g)
    target_colour = _random_colours(n, g)
    # distractors: d_hi slots per image, the first `count` of them drawn; each fits in a window of
    # side 2 * reach around its centre (strokes and arcs reach 0.2 s, blobs 0.25 s)
    slots = d_hi
    count = torch.randint(d_lo, d_hi + 1, (n,), generator=g)
    kind = torch.randint(0, len(_DISTRACTOR_KINDS), (n, slots), generator=g)
    d_centre = s * torch.rand(n, slots, 2, generator=g)
    d_length = s * (0.15 + 0.25 * torch.rand(n, slots, generator=g))        # strokes, arcs: 15%-40% of side
    d_angle = 2 * math.pi * torch.rand(n, slots, 2, generator=g)
    d_bend = (0.25 + 0.5 * torch.rand(n, slots, generator=g)) * math.pi      # bent strokes: 45-135 degrees
    d_width = 0.5 + 0.5 * torch.rand(n, slots, generator=g)                # half-width 0.5-1 px: thin
    d_span = (0.3 + 0.6 * torch.rand(n, slots, generator=g)) * math.pi       # arcs: 54-162 degrees
    d_blob = s * (0.06 + 0.08 * torch.rand(n, slots, generator=g))           # blob base radius
    d_lumps = 0.25 + 0.15 * torch.rand(n, slots, 2, generator=g)            # blob lumpiness (sum <= 0.8)
    d_colour = _random_colours(n * slots, g).view(n, slots, 3)
    pixel_noise_seed = int(torch.randint(0, 2**62, (1,), generator=g))

    # ---- render in chunks ------------------------------------------------------------------------------
    reach = math.ceil(0.26 * s) + 1                         # half-side of a distractor's window, in pixels
    win = 2 * reach
    offs = torch.arange(win)
    coords = torch.arange(size, dtype=torch.float32) + 0.5                  # pixel centres
    py, px = torch.meshgrid(coords, coords, indexing="ij")                  # (H, W) each
    images = torch.empty(n, 3, size, size)
    masks = torch.empty(n, size, size, dtype=torch.bool)
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        m = sl.stop - sl.start
        # channels-last canvas with a margin of `reach` pixels, so every window lies inside it
        side = size + win
        canvas = background[sl, None, None, :].expand(m, side, side, 3).contiguous()
        for j in range(slots):
            active = count[sl] > j
            for t, name in enumerate(_DISTRACTOR_KINDS):
                idx = torch.nonzero(active & (kind[sl, j] == t)).flatten()
                if idx.numel() == 0:
                    continue
                gi = idx + sl.start                                                 # index in the whole set
                c, length, ang, hw = d_centre[gi, j], d_length[gi, j], d_angle[gi, j], d_width[gi, j]
                top_left = c.floor().long()                 # window [c - reach, c + reach) in canvas pixels
                rows = top_left[:, 1, None] + offs                                  # (q, win)
                cols = top_left[:, 0, None] + offs
                # offsets of the window's pixel centres from the distractor's centre: (q, win, win)
                dy = (rows - reach + 0.5 - c[:, 1, None]).float()[:, :, None].expand(-1, win, win)
                dx = (cols - reach + 0.5 - c[:, 0, None]).float()[:, None, :].expand(-1, win, win)
                half = (length / 2)[:, None]
                d1 = torch.stack([torch.cos(ang[:, 0]), torch.sin(ang[:, 0])], dim=1)   # (q, 2)
                if name == "stroke":                                                # a straight line
                    mk = _segment_mask(dx, dy, -d1 * half, d1 * half, hw)
                elif name == "bent":                                                # two arms from a corner
                    turn = ang[:, 0] + d_bend[gi, j]
                    d2 = torch.stack([torch.cos(turn), torch.sin(turn)], dim=1)
                    zero = torch.zeros_like(d1)
                    mk = _segment_mask(dx, dy, zero, d1 * half, hw) | _segment_mask(dx, dy, zero, d2 * half, hw)
                elif name == "arc":                                                 # part of a thin circle
                    r = torch.sqrt(dx * dx + dy * dy)
                    theta = torch.remainder(torch.atan2(dy, dx) - ang[:, 0, None, None], 2 * math.pi)
                    mk = ((r - half[:, :, None]).abs() <= hw[:, None, None]) & (theta <= d_span[gi, j][:, None, None])
                else:                                                               # a lumpy blob
                    theta = torch.atan2(dy, dx)
                    lumps = d_lumps[gi, j]
                    rim = d_blob[gi, j][:, None, None] * (
                        1 + lumps[:, 0, None, None] * torch.cos(2 * theta + ang[:, 0, None, None])
                        + lumps[:, 1, None, None] * torch.cos(3 * theta + ang[:, 1, None, None]))
                    mk = dx * dx + dy * dy <= rim * rim
                # paint the distractor's pixels: flat canvas indices of the window's pixels that it covers
                flat = ((idx[:, None, None] * side + rows[:, :, None]) * side + cols[:, None, :])[mk]
                owner = torch.arange(idx.numel())[:, None, None].expand_as(mk)[mk]
                canvas.view(-1, 3)[flat] = d_colour[gi, j][owner]
        img = canvas[:, reach:reach + size, reach:reach + size].permute(0, 3, 1, 2)  # (m, 3, H, W)
        # the target, drawn last so it is fully visible and its mask is exact
        mask = torch.zeros(m, size, size, dtype=torch.bool)
        for ci, name in enumerate(classes):
            idx = torch.nonzero(labels[sl] == ci).flatten()
            if idx.numel() == 0:
                continue
            gi = idx + sl.start
            h = half_size[gi][:, None, None]
            u = (px - centre[gi, 0, None, None]) / h
            v = (py - centre[gi, 1, None, None]) / h
            mask[idx] = _target_mask(name, u, v)
        images[sl] = torch.where(mask[:, None], target_colour[sl, :, None, None], img)
        masks[sl] = mask
    if noise > 0:
        gn = torch.Generator().manual_seed(pixel_noise_seed)
        images.add_(noise * torch.randn(images.shape, generator=gn))
    images.clamp_(0, 1)
    return ClutterSet(images, labels, masks, classes)


# ------------------------------------------------------------------------------------------------
# Bundled real data: scikit-learn's digits
# ------------------------------------------------------------------------------------------------

class LabelledImages(NamedTuple):
    """Images with labels (unpacks as ``images, labels``)."""

    images: torch.Tensor        # (N, C, H, W) float32
    labels: torch.Tensor        # (N,) int64

    def to(self, device: Union[str, torch.device, None]) -> LabelledImages:
        """The same images and labels on ``device`` (e.g. the model's); see :func:`to_device`."""
        return to_device(self, device)


def load_digits(split: str = "train", test_fraction: float = 0.25, seed: int = 0) -> LabelledImages:
    """scikit-learn's handwritten digits as ``(N, 1, 8, 8)`` floats in [0, 1] and labels 0-9.

    The split is stratified and fixed by ``seed``: ``split="train"`` and ``split="test"`` with the same
    ``test_fraction`` and ``seed`` never share an image. ``split="all"`` returns all 1797 images.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split={split!r} is not valid; use 'train', 'test' or 'all'")
    if not isinstance(test_fraction, numbers.Real) or isinstance(test_fraction, bool):
        raise TypeError(f"test_fraction={test_fraction!r} is a {type(test_fraction).__name__}; use a number "
                        "(a float between 0 and 1, e.g. 0.25)")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction!r} is not valid; use a float in (0, 1), strictly "
                         "between 0 and 1")
    n_all, n_classes = 1797, 10
    n_test = math.ceil(test_fraction * n_all)
    lo, hi = n_classes / n_all, 1 - n_classes / n_all
    if n_test < n_classes or n_all - n_test < n_classes:
        raise ValueError(f"test_fraction={test_fraction!r} leaves {n_test} test and {n_all - n_test} training "
                         f"images; the split is stratified over {n_classes} digits, so each part needs at least "
                         f"{n_classes}: use a fraction between {math.ceil(lo * 1000) / 1000} and "
                         f"{math.floor(hi * 1000) / 1000}")
    seed = int_in_range("seed", seed, 0)
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    bunch = _sk_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0   # (1797, 1, 8, 8)
    y = torch.tensor(bunch.target, dtype=torch.long)
    if split == "all":
        return LabelledImages(x, y)
    idx_train, idx_test = train_test_split(torch.arange(len(y)).numpy(), test_size=test_fraction,
                                           random_state=seed, stratify=bunch.target)
    idx = torch.as_tensor(idx_train if split == "train" else idx_test)
    return LabelledImages(x[idx], y[idx])


# ------------------------------------------------------------------------------------------------
# CIFAR-10: the optional online path
# ------------------------------------------------------------------------------------------------

_CIFAR_HOST = "www.cs.toronto.edu"


def load_cifar10(root: Union[str, os.PathLike], train: bool = True, download: bool = False,
                 transform: Optional[Callable] = None, timeout: float = 3.0) -> Dataset:
    """CIFAR-10 through torchvision (the only data set here that needs a network, once).

    Args:
        root: folder that holds (or will hold) ``cifar-10-batches-py``.
        train: the 50,000 training images, or the 10,000 test images.
        download: fetch the archive (~170 MB) when it is not in ``root`` yet.
        transform: passed to ``torchvision.datasets.CIFAR10``; default ``ToTensor``-like float conversion.
        timeout: seconds to wait for the server before giving up with a clear error.

    Raises:
        FileNotFoundError: the data is not in ``root`` and ``download`` is False.
        ConnectionError: ``download=True`` but the server cannot be reached within ``timeout`` seconds.
    """
    if not (isinstance(timeout, numbers.Real) and not isinstance(timeout, bool) and 0 < timeout < math.inf):
        raise ValueError(f"timeout={timeout!r} is not valid; use a positive number of seconds")
    root = Path(root)
    present = (root / "cifar-10-batches-py").is_dir()
    if not present and not download:
        raise FileNotFoundError(f"CIFAR-10 is not in root={str(root)!r} (no cifar-10-batches-py folder); "
                                "pass download=True to fetch it (~170 MB, needs a network), or use the "
                                "offline data sets make_clutter() and load_digits()")
    if not present and reachable(f"https://{_CIFAR_HOST}/", timeout) is not None:
        raise ConnectionError(f"cannot download CIFAR-10: {_CIFAR_HOST} did not answer within {timeout:g} s "
                              "(no network?). Copy cifar-10-batches-py into root by hand, or use the "
                              "offline data sets make_clutter() and load_digits()")
    from torchvision import datasets  # imported only now: it takes seconds on a busy machine
    from torchvision.transforms import v2

    if transform is None:
        transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    if not present:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(max(timeout, 30.0))      # a stalled transfer fails instead of hanging
        try:
            return datasets.CIFAR10(str(root), train=train, download=True, transform=transform)
        finally:
            socket.setdefaulttimeout(previous)
    return datasets.CIFAR10(str(root), train=train, download=False, transform=transform)


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
