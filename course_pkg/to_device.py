"""``to_device``: every tensor of a data container on a device, the one ``.to(device)`` of the course's data.

The data sets the course returns are ``NamedTuple`` classes of tensors and plain fields (a
:class:`course_pkg.data.ClutterSet` holds ``images (N, 3, H, W)``, ``labels (N,)``, ``masks (N, H, W)`` and
``class_names``); their ``.to(device)`` is :func:`to_device`, which keeps the container's class and its
non-tensor fields. It lives apart from the data sets so that every container, and the checkpoint loader
that hands a held-out set to a device, share one definition.
"""

from __future__ import annotations

from typing import Any, Union

import torch

from .env import as_device

__all__ = ["to_device"]


def to_device(data: Any, device: Union[str, torch.device, None]) -> Any:
    """``data`` with every tensor on ``device``: the one ``.to(device)`` of the course's data containers.

    Every data set the course returns (:class:`course_pkg.data.ClutterSet`,
    :class:`course_pkg.data.LabelledImages`, :class:`course_pkg.textures.TextureSet`) is a ``NamedTuple``
    of tensors and plain fields; their ``.to(device)`` is this function. It also takes a bare tensor, or a
    tuple, list or dict of tensors. Fields that are not tensors (``class_names``) are kept as they are.

    Args:
        data: a data container, a tensor, or a tuple / list / dict of them.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device`` (``None``: the CPU);
            parsed by :func:`course_pkg.env.as_device`, so ``'gpu'`` gets a clear error naming ``device``.

    Returns:
        The same kind of object (a new one; ``data`` is not changed) with its tensors on ``device``.
    """
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


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
