"""Sample photographs, offline, and the ImageNet normalisation that pretrained models expect.

* :func:`load_photo`: scikit-image's sample photographs that ship inside scikit-image (a cat, an astronaut,
  a cup of coffee, a rocket, ...), as ``(3, H, W)`` float tensors in ``[0, 1]``, optionally resized and
  ImageNet-normalised. The chapters show attention on them; nothing is downloaded.
* :func:`normalize_imagenet` / :func:`denormalize_imagenet`: ``(..., 3, H, W)`` images to and from the
  ImageNet mean and standard deviation, with clear errors for the usual slips (a 0-255 image, channels
  last, an image normalised twice). :func:`course_pkg.pretrained.preprocess` applies the same checks.

The labelled data sets (clutter, digits, CIFAR-10) are in :mod:`course_pkg.data`.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PHOTOS", "load_photo", "normalize_imagenet", "denormalize_imagenet"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

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
        y = F.interpolate(x[None], size=tuple(int(s) for s in size), mode="bilinear", antialias=True,
                          align_corners=False)[0]
        return y.clamp(0, 1)
    raise ValueError(f"size={size!r} is not valid; use a positive integer or (height, width)")


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
