"""The cued-texture task: a small cue says which object to read, so the useful channels change per image.

Every image has a neutral grey background and holds **three objects**, each in its own quadrant at a
random place within it, with three different shapes out of
:data:`~course_pkg.textures.TEXTURE_CLASSES`. The objects are filled with three real textures, cat fur
(``chelsea``), wood (``coffee``'s table) and stained tissue (``immunohistochemistry``), in grey with their
mean level matched and tinted (:data:`TINTS`: fur red, wood green, tissue blue), so colour tells the
three objects apart at once. The fourth quadrant holds the **cue**: a small square cut from the grass,
brick or gravel photograph.

The **cue names the object to read** (:data:`CUES`): grass means the label is the shape of the *fur*
object, brick the *wood* object's, gravel the *tissue* object's. So:

* every image holds all three objects: which colours or textures are present tells nothing;
* the shapes present exclude only the missing fourth shape, so reading shapes alone scores 1/3, and
  reading one object's shape regardless of the cue scores 1/3 as well;
* only the cue *and* the object it names give the label. The channels that matter (red, green or blue
  object detectors) and the place that matters (that object's quadrant) both change from image to image,
  and the cue usually lies far from the object: often outside the receptive field of a small CNN's last
  layer, so a plain network cannot combine the two before its global pooling.

This is a task where per-image channel re-weighting (SE, CBAM's channel gate) has something to select.
``target="fur"`` keeps the same images but always asks for the fur object's shape (the cue is there but
means nothing): the matched control, drawn the same way, where the right channels are the same for
every image. The texture
objects of :func:`course_pkg.textures.make_textures` are the other control.

All textures come from the images that ship inside scikit-image (no download); image ``i`` depends only
on ``(seed, i)``.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import numpy as np
import torch

from .checks import int_in_range
from .env import as_device
from .textures import (
    _UNIT_AREA,
    _UNIT_REACH,
    TEXTURE_CLASSES,
    TEXTURE_NAMES,
    TextureSet,
    _crop,
    _draw_set,
    _shape_mask,
    _source,
)

__all__ = ["CUES", "CUED_TEXTURES", "CUE_SIDE", "TINTS", "make_cued_textures"]

#: cue texture -> the texture whose object's shape is the label
CUES: dict[str, str] = {"grass": "fur", "brick": "wood", "gravel": "tissue"}
#: the textures of the three objects in every image
CUED_TEXTURES: tuple[str, ...] = ("fur", "wood", "tissue")

_LUMA = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)


def _grey(name: str) -> np.ndarray:
    """A texture's photograph as grey levels ``(H, W)`` in [0, 1]."""
    return _source(name) @ _LUMA


#: the colour each object texture is tinted with (its grey-level texture kept): fur red, wood green,
#: tissue blue, so the first convolution already tells the three apart
TINTS: dict[str, tuple[float, float, float]] = {"fur": (1.0, 0.45, 0.3), "wood": (0.35, 1.0, 0.45),
                                                "tissue": (0.4, 0.5, 1.0)}
#: the cue patch's side as a fraction of the image side
CUE_SIDE = 0.2


def _draw_one(rng: np.random.Generator, size: int, label: int, noise: float, fixed: Optional[str]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One image ``(H, W, 3)``, the target object's mask, the other objects' mask, the cue's index."""
    cue = tuple(CUES)[int(rng.integers(len(CUES)))]
    image = np.full((size, size, 3), rng.uniform(0.4, 0.6), dtype=np.float32)     # neutral grey
    level = rng.uniform(0.35, 0.65)               # every object's mean grey level in this image
    others = [k for k in range(len(TEXTURE_CLASSES)) if k != label]
    order = rng.permutation(len(CUED_TEXTURES))   # which object goes to which quadrant
    other_shapes = list(rng.permutation(others)[:2])
    quadrants = rng.permutation(4)                # three objects, then the cue
    q = size / 2
    target = np.zeros((size, size), dtype=bool)
    distract = np.zeros((size, size), dtype=bool)
    wanted = CUED_TEXTURES.index(fixed or CUES[cue])
    for j, t in enumerate(order):
        k = label if t == wanted else int(other_shapes.pop())
        shape = TEXTURE_CLASSES[k]
        eq_radius = size * rng.uniform(0.13, 0.17)
        half = eq_radius * math.sqrt(math.pi / _UNIT_AREA[shape])
        qy, qx = divmod(int(quadrants[j]), 2)
        reach = min(half * _UNIT_REACH[shape], q / 2 - 0.5)
        cy = qy * q + rng.uniform(reach + 0.5, q - reach - 0.5)
        cx = qx * q + rng.uniform(reach + 0.5, q - reach - 0.5)
        m, (y0, y1, x0, x1) = _shape_mask(shape, cy, cx, half, 0.0, size)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        m &= (yy // q == qy) & (xx // q == qx)
        name = CUED_TEXTURES[t]
        values = _crop(rng, _grey(name), y1 - y0, x1 - x0)[m]
        values = (values - values.mean()) * rng.uniform(0.85, 1.15) + level   # texture kept, level matched
        image[y0:y1, x0:x1][m] = values[:, None] * np.asarray(TINTS[name], dtype=np.float32)
        (target if t == wanted else distract)[y0:y1, x0:x1] |= m
    side = int(round(size * CUE_SIDE))            # the cue: a square of its photograph, in the 4th quadrant
    qy, qx = divmod(int(quadrants[3]), 2)
    y0 = int(qy * q) + int(rng.integers(1, int(q) - side))
    x0 = int(qx * q) + int(rng.integers(1, int(q) - side))
    image[y0:y0 + side, x0:x0 + side] = _crop(rng, _source(cue), side, side)
    if noise > 0:
        image = image + rng.normal(0.0, noise, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32), target, distract, TEXTURE_NAMES.index(cue)


def make_cued_textures(n: int, image_size: int = 48, seed: int = 0, *, noise: float = 0.02,
                       target: Optional[str] = None, device: Union[str, torch.device, None] = None
                       ) -> TextureSet:
    """Draw ``n`` cued-texture images: three textured shapes and a cue that names the one to read.

    Args:
        n: number of images.
        image_size: side of the square images in pixels, 32 to 96 (48 is the bundled models' size).
        seed: seed; image ``i`` depends only on ``(seed, i)`` (and the other arguments), not on ``n``.
        noise: standard deviation of Gaussian pixel noise, 0 to 0.5.
        target: ``None`` (the cue names the object) or one of :data:`CUED_TEXTURES`: always read that
            object, the cue meaning nothing (the matched control, drawn the same way).
        device: where the returned tensors live (default: the CPU).

    Returns:
        :class:`~course_pkg.textures.TextureSet` ``(images (N, 3, H, W) float32 in [0, 1]; labels (N,)
        int64, the shape of the object to read; masks (N, H, W) bool, True on that object;
        distractor_masks (N, H, W) bool, True on the two other objects; backgrounds (N,) int64, the
        cue's texture as an index into TEXTURE_NAMES; class_names)``.
    """
    n = int_in_range("n", n, 1)
    size = int_in_range("image_size", image_size, 32, 96, " (e.g. 48 or 64)")
    int_in_range("seed", seed, 0)
    if not (isinstance(noise, (int, float)) and not isinstance(noise, bool) and 0 <= noise <= 0.5):
        raise ValueError(f"noise={noise!r} is not valid; use a standard deviation from 0 to 0.5")
    if target is not None and target not in CUED_TEXTURES:
        raise ValueError(f"target={target!r} is not valid; use None (the cue names the object) or one of "
                         f"{', '.join(map(repr, CUED_TEXTURES))} (always that object: the cue means nothing)")
    dev = as_device(device)
    return _draw_set(n, size, lambda i: np.random.default_rng([seed, i, 7]),   # 7: apart from make_textures
                    lambda rng, label: _draw_one(rng, size, label, float(noise), target), dev)


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
