"""``torch.utils.data.Dataset`` views of image tensors, for a ``DataLoader`` with per-image transforms.

* :class:`ImageDataset`: ``(N, C, H, W)`` images and ``(N,)`` labels (and optionally ``(N, H, W)`` masks) as a
  map-style dataset whose items are ``(image, label)`` or ``(image, label, mask)``; a transform (e.g. a
  torchvision v2 augmentation) applies to each ``(C, H, W)`` image when it is read.
* :class:`ClutterDataset`: :func:`course_pkg.data.make_clutter` drawn straight into an :class:`ImageDataset`.

The tensors themselves come from :mod:`course_pkg.data`; :func:`course_pkg.train.fit` wraps a plain data set
in an :class:`ImageDataset` itself, so a chapter needs this module only for augmentation or masks.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch.utils.data import Dataset

from .data import make_clutter

__all__ = ["ImageDataset", "ClutterDataset"]


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


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
