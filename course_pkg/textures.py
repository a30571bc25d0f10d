"""The texture-object data set: a cat-fur object among textured distractors on a textured photograph.

Every image holds one **target**, a shape filled with cat fur cut from scikit-image's ``chelsea``
photograph, on a background cut from a texture photograph (``grass``, ``gravel`` or ``brick``, tinted),
usually with **distractors**: the other shapes, filled with other real textures (stained tissue from
``immunohistochemistry`` and the background textures the image does not use; optionally wood from
``coffee``, as brown as the fur). Each object sits in its own quadrant of the image, at a random place
within it, so objects never overlap.
The **label is the shape of the fur object** (:data:`TEXTURE_CLASSES`).

The set is built so that the answer needs the object to be *found*:

* with the default three distractors every image holds each of the four shapes exactly once, so the
  shapes present say nothing about the label;
* every image holds the fur, with an area drawn independently of the label, so colours and textures
  alone (a colour histogram, the mean colour) say nothing either;
* only binding the two answers: *which* object is fur (a channel question, what SE re-weights) and
  *where* it is (a spatial question, what CBAM's spatial gate marks), then reading its shape.

The syllabus' worked example, a cat-fur object on grass and nothing else, is
:func:`cat_on_grass`; the same crops without the object (``with_target=False``) give grass-only inputs
to compare attention weights with.

All textures come from the images that ship inside scikit-image (no download); a seed fixes every
image, and image ``i`` depends only on ``(seed, i)``, not on ``n``.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch

from .checks import int_in_range

__all__ = [
    "BACKGROUND_TEXTURES",
    "ALL_DISTRACTOR_TEXTURES",
    "DISTRACTOR_TEXTURES",
    "TEXTURE_CLASSES",
    "TEXTURE_NAMES",
    "TextureSet",
    "cat_on_grass",
    "make_textures",
    "texture_source",
]

#: The labels: the shape of the fur object.
TEXTURE_CLASSES: tuple[str, ...] = ("disc", "square", "triangle", "cross")
#: Every texture, in the order of :attr:`TextureSet.backgrounds`' indices.
TEXTURE_NAMES: tuple[str, ...] = ("fur", "grass", "gravel", "brick", "wood", "tissue")
#: Textures a background may be cut from.
BACKGROUND_TEXTURES: tuple[str, ...] = ("grass", "gravel", "brick")
#: Textures that fill distractors (never the image's own background texture).
DISTRACTOR_TEXTURES: tuple[str, ...] = ("tissue", "grass", "gravel", "brick")
#: Every texture a distractor may take (``distractor_textures=``): wood is as brown as the fur, so with it
#: the fur object is found by its texture alone (a harder set than the bundled models were trained on).
ALL_DISTRACTOR_TEXTURES: tuple[str, ...] = ("tissue", "wood", "grass", "gravel", "brick")

# (skimage.data function, rows, columns, block-average factor, RGB tint for grey photographs)
_SOURCES: dict[str, tuple[str, slice, slice, int, Optional[tuple[float, float, float]]]] = {
    "fur": ("chelsea", slice(0, 300), slice(0, 330), 2, None),          # the cat, not the wall behind it
    "grass": ("grass", slice(None), slice(None), 2, (0.55, 0.95, 0.40)),
    "gravel": ("gravel", slice(None), slice(None), 2, (0.95, 0.88, 0.75)),
    "brick": ("brick", slice(None), slice(None), 2, (1.00, 0.62, 0.50)),
    "wood": ("coffee", slice(0, 400), slice(490, 600), 1, None),        # the table beside the cup
    "tissue": ("immunohistochemistry", slice(None), slice(None), 2, None),
}

# area of each shape with "half-size" 1 (disc: radius; square: half-side; triangle: circumradius;
# cross: half-length of an arm, arms a third as wide as long), and its circumradius at half-size 1
_UNIT_AREA = {"disc": math.pi, "square": 4.0, "triangle": 3 * math.sqrt(3) / 4, "cross": 20 / 9}
_UNIT_REACH = {"disc": 1.0, "square": math.sqrt(2), "triangle": 1.0, "cross": math.sqrt(1 + 1 / 9)}


class TextureSet(NamedTuple):
    """What :func:`make_textures` returns (unpacks as ``images, labels, masks, ...``)."""

    images: torch.Tensor            # (N, 3, H, W) float32 in [0, 1]
    labels: torch.Tensor            # (N,) int64, index into class_names: the fur object's shape
    masks: torch.Tensor             # (N, H, W) bool, True on the fur object's pixels
    distractor_masks: torch.Tensor  # (N, H, W) bool, True on any distractor's pixels
    backgrounds: torch.Tensor       # (N,) int64, index into TEXTURE_NAMES
    class_names: tuple[str, ...]

    def to(self, device: Union[str, torch.device]) -> TextureSet:
        """The same set with every tensor on ``device`` (like ``Tensor.to``; ``class_names`` unchanged)."""
        from .env import as_device

        dev = as_device(device)
        return self._replace(**{k: v.to(dev) for k, v in self._asdict().items() if isinstance(v, torch.Tensor)})


@functools.cache
def _source(name: str) -> np.ndarray:
    import skimage.data

    func, rows, cols, factor, tint = _SOURCES[name]
    a = np.asarray(getattr(skimage.data, func)())[rows, cols].astype(np.float32) / 255.0
    if a.ndim == 3:
        a = a[..., :3]
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    a = a[:h, :w].reshape(h // factor, factor, w // factor, factor, *a.shape[2:]).mean(axis=(1, 3))
    if a.ndim == 2:          # a grey photograph: tint it, keeping its texture
        a = np.clip(a[..., None] * np.asarray(tint, dtype=np.float32) * 1.1, 0.0, 1.0)
    a.setflags(write=False)
    return a


def texture_source(name: str) -> np.ndarray:
    """The photograph a texture is cut from: an ``(H, W, 3)`` float32 array in [0, 1] (read-only).

    ``name`` is one of :data:`TEXTURE_NAMES`; e.g. ``"fur"`` is the cat of ``skimage.data.chelsea()``
    at half resolution. Everything is read from the images bundled with scikit-image.
    """
    if name not in _SOURCES:
        raise ValueError(f"name={name!r} is not a texture; use one of {', '.join(TEXTURE_NAMES)}")
    return _source(name)


def _shape_mask(shape: str, cy: float, cx: float, half: float, angle: float, size: int
                ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A boolean mask of ``shape`` within its bounding window, and the window ``(y0, y1, x0, x1)``."""
    reach = half * _UNIT_REACH[shape]
    y0, y1 = max(0, int(math.floor(cy - reach))), min(size, int(math.ceil(cy + reach)) + 1)
    x0, x1 = max(0, int(math.floor(cx - reach))), min(size, int(math.ceil(cx + reach)) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5        # pixel centres
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy                          # rotated coordinates
    if shape == "disc":
        m = dx * dx + dy * dy <= half * half
    elif shape == "square":
        m = (np.abs(u) <= half) & (np.abs(v) <= half)
    elif shape == "triangle":   # equilateral: inside all three edges (inradius = half / 2)
        m = np.ones_like(u, dtype=bool)
        for k in range(3):
            t = 2 * math.pi * k / 3
            m &= (math.cos(t) * u + math.sin(t) * v) <= half / 2
    else:                       # cross: two bars, each three times as long as wide
        w = half / 3
        m = ((np.abs(u) <= half) & (np.abs(v) <= w)) | ((np.abs(u) <= w) & (np.abs(v) <= half))
    return m, (y0, y1, x0, x1)


def _crop(rng: np.random.Generator, src: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random ``h x w`` crop of ``src`` (a view), flipped left-right half of the time."""
    oy = int(rng.integers(0, src.shape[0] - h + 1))
    ox = int(rng.integers(0, src.shape[1] - w + 1))
    patch = src[oy:oy + h, ox:ox + w]
    return patch[:, ::-1] if rng.random() < 0.5 else patch


def _paste(image: np.ndarray, mask: np.ndarray, window: tuple[int, int, int, int], texture: str,
           gain: float, rng: np.random.Generator) -> None:
    """Fill ``mask`` (inside ``window`` of ``image``) with a random crop of ``texture``, scaled by ``gain``."""
    y0, y1, x0, x1 = window
    patch = _crop(rng, _source(texture), y1 - y0, x1 - x0)
    region = image[y0:y1, x0:x1]
    region[mask] = np.clip(patch[mask] * gain, 0.0, 1.0)


def _draw_one(rng: np.random.Generator, size: int, label: int, n_distractors: int,
              backgrounds: Sequence[str], fills: Sequence[str], noise: float, with_target: bool,
              rotate: bool, target_texture: str = "fur"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One image ``(H, W, 3)``, its target mask, its distractor mask and its background's name index."""
    background = backgrounds[int(rng.integers(len(backgrounds)))]
    image = np.clip(_crop(rng, _source(background), size, size) * rng.uniform(0.8, 1.2), 0.0, 1.0)

    others = [k for k in range(len(TEXTURE_CLASSES)) if k != label]
    shapes = [label] + list(rng.permutation(others)[:n_distractors])
    fillers = [t for t in fills if t != background] or list(fills)
    quadrants = rng.permutation(4)          # one object per quadrant: none overlaps, none is dropped
    q = size / 2
    target = np.zeros((size, size), dtype=bool)
    distract = np.zeros((size, size), dtype=bool)
    for j, k in enumerate(shapes):
        shape = TEXTURE_CLASSES[k]
        # size: equivalent radius 11.5% to 15.5% of the side, drawn independently of the shape
        eq_radius = size * rng.uniform(0.115, 0.155)
        half = eq_radius * math.sqrt(math.pi / _UNIT_AREA[shape])
        angle = rng.uniform(0, 2 * math.pi) if rotate else 0.0   # drawn only when used
        texture = target_texture if j == 0 else fillers[int(rng.integers(len(fillers)))]
        gain = rng.uniform(0.85, 1.15)
        qy, qx = divmod(int(quadrants[j]), 2)
        # the centre may sit anywhere its shape stays inside the quadrant (a 1 px gap to the next one)
        reach = min(half * _UNIT_REACH[shape], q / 2 - 0.5)
        cy = qy * q + rng.uniform(reach + 0.5, q - reach - 0.5)
        cx = qx * q + rng.uniform(reach + 0.5, q - reach - 0.5)
        m, win = _shape_mask(shape, cy, cx, half, angle, size)
        y0, y1, x0, x1 = win            # keep the shape inside its quadrant (a triangle's corner may not fit)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        m &= (yy // q == qy) & (xx // q == qx)
        m &= ~((yy % q == 0) & (qy > 0)) & ~((xx % q == 0) & (qx > 0))   # 1 px gap between quadrants
        if j == 0 and not with_target:   # the same random draws as with the target, painted nowhere
            _paste(np.zeros_like(image), m, win, texture, gain, rng)
            continue
        _paste(image, m, win, texture, gain, rng)
        (target if j == 0 else distract)[y0:y1, x0:x1] |= m
    if noise > 0:
        image = np.clip(image + rng.normal(0.0, noise, size=image.shape).astype(np.float32), 0.0, 1.0)
    return image, target, distract, TEXTURE_NAMES.index(background)


def _draw_set(n: int, size: int, rng_of: Callable[[int], np.random.Generator],
             draw: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray, np.ndarray, int]],
             device: torch.device) -> TextureSet:
    """``n`` images of side ``size`` drawn one by one: image ``i`` from the generator ``rng_of(i)``, which
    first draws its label (uniform over :data:`TEXTURE_CLASSES`), then ``draw(rng, label)`` returns the
    image ``(H, W, 3)``, the target's mask, the other objects' mask and a texture index. Shared by
    :func:`make_textures` and :func:`course_pkg.cued_textures.make_cued_textures`."""
    images = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    dmasks = np.empty((n, size, size), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    index = np.empty(n, dtype=np.int64)
    for i in range(n):
        rng = rng_of(i)
        labels[i] = int(rng.integers(len(TEXTURE_CLASSES)))
        images[i], masks[i], dmasks[i], index[i] = draw(rng, int(labels[i]))
    return TextureSet(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
        labels=torch.from_numpy(labels).to(device),
        masks=torch.from_numpy(masks).to(device),
        distractor_masks=torch.from_numpy(dmasks).to(device),
        backgrounds=torch.from_numpy(index).to(device),
        class_names=TEXTURE_CLASSES,
    )


def make_textures(n: int, image_size: int = 48, seed: int = 0, *, distractors: int = 3,
                  backgrounds: Sequence[str] = BACKGROUND_TEXTURES,
                  distractor_textures: Sequence[str] = DISTRACTOR_TEXTURES, noise: float = 0.02,
                  with_target: bool = True, rotate: bool = False, target_texture: str = "fur",
                  device: Union[str, torch.device, None] = None) -> TextureSet:
    """Draw ``n`` texture-object images: a fur shape (the class) among distractors on a texture.

    Args:
        n: number of images.
        image_size: side of the square images in pixels, 32 to 96 (48 is the bundled models' size).
        seed: seed; image ``i`` depends only on ``(seed, i)`` (and the other arguments), not on ``n``.
        distractors: how many of the other three shapes join the target (0 to 3), each filled with a
            texture of :data:`DISTRACTOR_TEXTURES` other than the background's. With 3, every image
            holds each shape exactly once.
        backgrounds: the textures backgrounds are drawn from (uniformly), a non-empty subset of
            :data:`BACKGROUND_TEXTURES`.
        distractor_textures: the textures distractors are filled with, a non-empty subset of
            :data:`ALL_DISTRACTOR_TEXTURES` (a distractor never takes the image's background texture
            unless nothing else is left).
        noise: standard deviation of Gaussian pixel noise, 0 to 0.5.
        with_target: ``False`` leaves the fur object out (same backgrounds and distractors as with it,
            masks all False): the inputs to compare attention with and without the object.
        rotate: turn every shape by a random angle (``False``: upright discs, squares, triangles and
            crosses, which a small network learns from far fewer images).
        target_texture: what fills the target object, one of :data:`TEXTURE_NAMES` (``"fur"``, the
            data set's; another texture in its place tests what a trained network responds to).
        device: where the returned tensors live (default: the CPU).

    Returns:
        :class:`TextureSet` ``(images (N, 3, H, W) float32 in [0, 1], labels (N,) int64, masks (N, H, W)
        bool, distractor_masks (N, H, W) bool, backgrounds (N,) int64, class_names)``. Labels are
        balanced in expectation (uniform over :data:`TEXTURE_CLASSES`).
    """
    n = int_in_range("n", n, 1)
    size = int_in_range("image_size", image_size, 32, 96, " (e.g. 48 or 64)")
    int_in_range("seed", seed, 0)
    int_in_range("distractors", distractors, 0, len(TEXTURE_CLASSES) - 1,
               " (how many of the other shapes join the target)")
    if isinstance(backgrounds, str) or not isinstance(backgrounds, Sequence) or not backgrounds:
        raise ValueError(f"backgrounds={backgrounds!r} is not valid; use a non-empty list drawn from "
                         f"{', '.join(BACKGROUND_TEXTURES)}")
    bad = [b for b in backgrounds if b not in BACKGROUND_TEXTURES]
    if bad:
        raise ValueError(f"backgrounds={list(backgrounds)!r} holds {bad!r}, not a background texture; use "
                         f"names from {', '.join(BACKGROUND_TEXTURES)}")
    if (isinstance(distractor_textures, str) or not isinstance(distractor_textures, Sequence)
            or not distractor_textures
            or any(t not in ALL_DISTRACTOR_TEXTURES for t in distractor_textures)):
        raise ValueError(f"distractor_textures={distractor_textures!r} is not valid; use a non-empty list drawn "
                         f"from {', '.join(ALL_DISTRACTOR_TEXTURES)}")
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and 0 <= noise <= 0.5):
        raise ValueError(f"noise={noise!r} is not valid; use a standard deviation from 0 to 0.5")
    if target_texture not in TEXTURE_NAMES:
        raise ValueError(f"target_texture={target_texture!r} is not valid; use one of {', '.join(TEXTURE_NAMES)}")
    for name, flag in (("with_target", with_target), ("rotate", rotate)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}={flag!r} is not valid; use True or False")
    from .env import as_device

    dev = as_device(device)

    return _draw_set(n, size, lambda i: np.random.default_rng([seed, i]),
                    lambda rng, label: _draw_one(rng, size, label, distractors, tuple(backgrounds),
                                                 tuple(distractor_textures), float(noise), with_target,
                                                 rotate, target_texture), dev)


def cat_on_grass(n: int = 1, image_size: int = 48, seed: int = 0, *, with_target: bool = True,
                 target_texture: str = "fur", device: Union[str, torch.device, None] = None) -> TextureSet:
    """The worked example: a cat-fur shape on grass, no distractors (``make_textures`` with
    ``distractors=0, backgrounds=("grass",)``). ``with_target=False`` gives the same grass alone;
    ``target_texture`` fills the object with another texture (the same shapes, places and crops of grass).

    Returns:
        :class:`TextureSet` with images ``(n, 3, H, W)`` and masks ``(n, H, W)``.
    """
    return make_textures(n, image_size, seed, distractors=0, backgrounds=("grass",),
                         with_target=with_target, target_texture=target_texture, device=device)


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
