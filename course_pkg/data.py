"""Data for the course, all offline: a synthetic "object in clutter" set, digits, photos, and CIFAR-10.

* :func:`make_clutter` draws images that each hold **one target object** (its shape is the class: square,
  disk, triangle, cross, ring, diamond) among **distractors** (thin strokes, bent strokes, thin arcs and
  lumpy blobs, none of which is a class shape). Target and distractors take their colours from the same
  distribution and the target's area does not depend on its class, so only the object's *shape* tells the
  class: a colour histogram is no help (``tests/test_data.py`` proves it). The exact mask of the target
  comes with every image, so a chapter can compare an attention map with where the object really is.
  Everything is drawn from one seeded generator: the same arguments give the same tensors on any machine.
* :func:`load_digits`: scikit-learn's 8 x 8 handwritten digits (shipped inside scikit-learn).
* :func:`load_photo`: scikit-image's sample photographs that ship inside scikit-image (a cat, an astronaut,
  a cup of coffee, a rocket, ...), as float tensors, optionally resized and ImageNet-normalised.
* :func:`load_cifar10`: the optional online path through torchvision. Without a network it fails fast with
  a message saying what to do; it never hangs.

Shapes: images are ``(N, C, H, W)`` floats in ``[0, 1]``, labels ``(N,)`` int64, masks ``(N, H, W)`` bool.
"""

from __future__ import annotations

import math
import numbers
import os
import socket
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .checks import int_in_range
from .network import reachable

__all__ = [
    "CLUTTER_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD", "PHOTOS",
    "ClutterSet", "LabelledImages", "ImageDataset", "ClutterDataset",
    "make_clutter", "load_digits", "load_photo", "normalize_imagenet", "denormalize_imagenet",
    "load_cifar10", "to_device",
]

CLUTTER_CLASSES: tuple[str, ...] = ("square", "disk", "triangle", "cross", "ring", "diamond")
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

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


def to_device(data: Any, device: Union[str, torch.device, None]) -> Any:
    """``data`` with every tensor on ``device``: the one ``.to(device)`` of the course's data containers.

    Every data set the course returns (:class:`ClutterSet`, :class:`LabelledImages`,
    :class:`course_pkg.textures.TextureSet`) is a ``NamedTuple`` of tensors and plain fields; their
    ``.to(device)`` is this function. It also takes a bare tensor, or a tuple, list or dict of tensors.
    Fields that are not tensors (``class_names``) are kept as they are.

    Args:
        data: a data container, a tensor, or a tuple / list / dict of them.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device`` (``None``: the CPU);
            parsed by :func:`course_pkg.env.as_device`, so ``'gpu'`` gets a clear error naming ``device``.

    Returns:
        The same kind of object (a new one; ``data`` is not changed) with its tensors on ``device``.
    """
    from .env import as_device

    dev = as_device(device, "device")
    return _moved(data, dev)


def _moved(data: Any, dev: torch.device) -> Any:
    if isinstance(data, torch.Tensor):
        return data.to(dev)
    if isinstance(data, tuple) and hasattr(data, "_fields"):              # a NamedTuple: keep its class
        return data._replace(**{f: _moved(getattr(data, f), dev) for f in data._fields})
    if isinstance(data, (tuple, list)):
        return type(data)(_moved(v, dev) for v in data)
    if isinstance(data, dict):
        return {k: _moved(v, dev) for k, v in data.items()}
    if isinstance(data, (str, bytes, int, float, bool, type(None))):
        return data
    raise TypeError(f"data is a {type(data).__name__}, which to_device cannot move; pass a data set of the "
                    "course (a NamedTuple of tensors), a tensor, or a tuple, list or dict of tensors")


class ClutterSet(NamedTuple):
    """What :func:`make_clutter` returns (unpacks as ``images, labels, masks, class_names``)."""

    images: torch.Tensor        # (N, 3, H, W) float32 in [0, 1]
    labels: torch.Tensor        # (N,) int64, index into class_names
    masks: torch.Tensor         # (N, H, W) bool, True on the target object's pixels
    class_names: tuple[str, ...]

    def to(self, device: Union[str, torch.device, None]) -> ClutterSet:
        """The same set with images, labels and masks on ``device`` (e.g. the model's); see :func:`to_device`."""
        return to_device(self, device)


class LabelledImages(NamedTuple):
    """Images with labels (unpacks as ``images, labels``)."""

    images: torch.Tensor        # (N, C, H, W) float32
    labels: torch.Tensor        # (N,) int64

    def to(self, device: Union[str, torch.device, None]) -> LabelledImages:
        """The same images and labels on ``device`` (e.g. the model's); see :func:`to_device`."""
        return to_device(self, device)


# ------------------------------------------------------------------------------------------------
# The synthetic "object in clutter" set
# ------------------------------------------------------------------------------------------------

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
# Datasets
# ------------------------------------------------------------------------------------------------

class ImageDataset(Dataset):
    """A map-style dataset over image and label tensors, with an optional transform.

    Args:
        images: ``(N, C, H, W)`` float tensor.
        labels: ``(N,)`` integer tensor.
        transform: applied to each ``(C, H, W)`` image when it is read (e.g. a torchvision v2 transform).
        masks: optional ``(N, H, W)`` tensor, returned as a third item when ``return_mask`` is True.
        return_mask: return ``(image, label, mask)`` instead of ``(image, label)``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 masks: Optional[torch.Tensor] = None, return_mask: bool = False) -> None:
        for name, t in (("images", images), ("labels", labels)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got a {type(t).__name__}; convert it with "
                                f"torch.as_tensor({name})")
        if images.dim() != 4:
            raise ValueError(f"images must be a (N, C, H, W) tensor, got shape {tuple(images.shape)}"
                             + ("; add the channel axis with images.unsqueeze(1)" if images.dim() == 3 else ""))
        n = images.shape[0]
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels has dtype {labels.dtype}; use integer class indices (labels.long())")
        if labels.dim() != 1:
            raise ValueError(f"labels must be a ({n},) tensor, one label per image (N,), got shape "
                             f"{tuple(labels.shape)}"
                             + ("; use labels.view(-1)" if labels.numel() == n else ""))
        if labels.shape[0] != n:
            raise ValueError(f"labels must be a ({n},) tensor to match images: labels has {labels.shape[0]} "
                             f"entries but images has {n}; give one label per image")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform={transform!r} is a {type(transform).__name__}, not callable; pass a "
                            "function of a (C, H, W) image (e.g. a torchvision v2 transform) or None")
        if masks is not None:
            if not isinstance(masks, torch.Tensor):
                raise TypeError(f"masks must be a torch.Tensor (N, H, W) or None, got a {type(masks).__name__}")
            want = (n, *images.shape[-2:])
            if tuple(masks.shape) != want:
                raise ValueError(f"masks has shape {tuple(masks.shape)}; use one (H, W) mask per image: {want}")
        if return_mask and masks is None:
            raise ValueError("return_mask=True needs masks; pass masks=... or leave return_mask False")
        self.images, self.labels, self.masks = images, labels, masks
        self.transform, self.return_mask = transform, return_mask

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.transform is not None:
            x = self.transform(x)
        if self.return_mask:
            return x, self.labels[i], self.masks[i]
        return x, self.labels[i]


class ClutterDataset(ImageDataset):
    """:func:`make_clutter` as a ``Dataset``: ``ClutterDataset(n, image_size, num_classes, seed)``.

    Keeps ``class_names`` and ``spec`` (the generator's arguments, enough to draw the same set again).
    """

    def __init__(self, n: int, image_size: int = 48, num_classes: int = 6, seed: int = 0, *,
                 transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 return_mask: bool = False, **kwargs: Any) -> None:
        data = make_clutter(n, image_size, num_classes, seed, **kwargs)
        super().__init__(data.images, data.labels, transform, data.masks, return_mask)
        self.class_names = data.class_names
        self.spec = {"n": n, "image_size": image_size, "num_classes": num_classes, "seed": seed, **kwargs}


# ------------------------------------------------------------------------------------------------
# Bundled real data: scikit-learn's digits, scikit-image's photographs
# ------------------------------------------------------------------------------------------------

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


# name -> (file inside skimage's data directory, loader function name in skimage.data)
PHOTOS: dict[str, tuple[str, str]] = {
    "cat": ("chelsea.png", "chelsea"),
    "chelsea": ("chelsea.png", "chelsea"),
    "astronaut": ("astronaut.png", "astronaut"),
    "coffee": ("coffee.png", "coffee"),
    "rocket": ("rocket.jpg", "rocket"),
    "camera": ("camera.png", "camera"),
    "coins": ("coins.png", "coins"),
    "hubble": ("hubble_deep_field.jpg", "hubble_deep_field"),
}


def _check_image(x: Any, fn: str, allow_0_255: bool = False, name: str = "x") -> None:
    """``x`` must be a float tensor ``(..., 3, H, W)``; for ``normalize_imagenet`` also in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor (..., 3, H, W), got a {type(x).__name__}; convert it "
                        f"with torch.as_tensor({name}, dtype=torch.float32)")
    if not x.is_floating_point():
        raise ValueError(f"{fn}: {name} has dtype {x.dtype}; use a float image in [0, 1], e.g. {name}.float() / 255 "
                         "for a 0-255 image")
    shape = tuple(x.shape)
    if x.dim() < 3 or shape[-3] != 3:
        if x.dim() >= 3 and shape[-1] == 3:
            raise ValueError(f"{fn}: {name} has shape {shape}, which looks channels-last (..., H, W, C) with 3 "
                             f"channels at the end; use (..., 3, H, W): {name}.permute(2, 0, 1) for one image, "
                             f"{name}.permute(0, 3, 1, 2) for a batch")
        raise ValueError(f"{fn}: {name} has shape {shape}; use (..., 3, H, W) with 3 colour channels at dim -3 "
                         f"(a grey image: {name}.expand(..., 3, H, W) or {name}.repeat(1, 3, 1, 1) to get 3 channels)")
    if not allow_0_255 and x.numel():
        finite = torch.isfinite(x.detach())
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"{fn}: {name} holds {bad} NaN or infinite value(s) (shape {shape}); use a float image "
                             f"in [0, 1] with finite values (find them with (~torch.isfinite({name})).nonzero())")
        lo, top = torch.aminmax(x.detach())
        lo, top = lo.item(), top.item()
        if lo < -0.5:
            raise ValueError(f"{fn}: {name} has values down to {lo:g}, which looks like an image that is already "
                             "normalised (mean subtracted, divided by the std); use values in [0, 1] "
                             f"(undo it with denormalize_imagenet({name}), or do not normalise twice)")
        if top > 1.5:
            raise ValueError(f"{fn}: {name} has values up to {top:g}, which looks like a 0-255 image; use values in "
                             f"[0, 1] (divide by 255: {name} / 255)")


def normalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` float in [0, 1] -> ImageNet-normalised (subtract the mean, divide by the std).

    Raises:
        TypeError: ``x`` is not a tensor (a NumPy array, a list).
        ValueError: ``x`` is not a float tensor (uint8: use ``x.float() / 255``), has values above 1.5
            (a 0-255 image) or below -0.5 (already normalised), holds NaN or infinite values, or is not
            ``(..., 3, H, W)`` (channels-last, grey).
    """
    _check_image(x, "normalize_imagenet")
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def denormalize_imagenet(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`normalize_imagenet`, for showing a normalised float ``(..., 3, H, W)`` image."""
    _check_image(x, "denormalize_imagenet", allow_0_255=True)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return x * std + mean


def load_photo(name: str = "cat", size: Union[int, Sequence[int], None] = None,
               normalize: bool = False) -> torch.Tensor:
    """A sample photograph bundled with scikit-image as a ``(3, H, W)`` float tensor in [0, 1].

    Args:
        name: one of :data:`PHOTOS` (``"cat"`` is ``skimage.data.chelsea()``); grey images get 3 channels.
        size: ``None`` keeps the original size; an int resizes the shorter side to ``size`` and crops the
            centre square ``(size, size)``, as ImageNet models expect; ``(h, w)`` resizes to exactly that.
        normalize: subtract the ImageNet mean and divide by its std (for pretrained models).
    """
    if name not in PHOTOS:
        raise ValueError(f"name={name!r} is not a bundled photo; use one of {sorted(PHOTOS)}")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize={normalize!r} is a {type(normalize).__name__}; use True or False")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (numbers.Integral, tuple, list))):
        raise TypeError(f"size={size!r} is a {type(size).__name__}; use an int (the shorter side), "
                        "(height, width) or None")
    import skimage.data

    filename, loader = PHOTOS[name]
    path = Path(skimage.data.__file__).parent / filename
    if not path.is_file():  # a scikit-image that fetches it at run time: refuse instead of downloading
        raise FileNotFoundError(f"photo {name!r} ({filename}) is not bundled with this scikit-image "
                                f"({path} is missing); pick another of {sorted(PHOTOS)}")
    arr = getattr(skimage.data, loader)()                                   # (H, W, 3) or (H, W) uint8
    x = torch.from_numpy(arr.copy()).float() / 255.0
    x = x.permute(2, 0, 1) if x.dim() == 3 else x.unsqueeze(0).expand(3, -1, -1)
    x = x[:3].contiguous()                                                  # (3, H, W); drop any alpha
    if size is not None:
        x = _resize(x, size)
    return normalize_imagenet(x) if normalize else x


def _resize(x: torch.Tensor, size: Union[int, Sequence[int]]) -> torch.Tensor:
    """Resize a ``(3, H, W)`` image: int -> shorter side then centre crop; (h, w) -> exactly."""
    h, w = x.shape[-2:]
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = int(size)
        if size < 1:
            raise ValueError(f"size={size!r} is not valid; use a positive integer or (height, width)")
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        y = F.interpolate(x[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0]
        top, left = (nh - size) // 2, (nw - size) // 2
        return y[:, top:top + size, left:left + size].clamp(0, 1).contiguous()
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in size)):
        y = F.interpolate(x[None], size=tuple(int(s) for s in size), mode="bilinear", antialias=True, align_corners=False)[0]
        return y.clamp(0, 1)
    raise ValueError(f"size={size!r} is not valid; use a positive integer or (height, width)")


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
