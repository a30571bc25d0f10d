"""The model registry: a model is rebuilt from a builder name and its keyword arguments.

A builder is a name in :data:`MODELS` (``"resnet_small"``) or a ``"package.module:function"`` string
(``"course_pkg.resnet:resnet_small"``), the form that checkpoints and ``checkpoints/manifest.json`` record.
:func:`build_model` calls it with the recorded arguments plus those the data sets (classes, channels, size).

Where the rest lives: the checkpoint file format in :mod:`course_pkg.checkpoint`, the manifest of the
shipped checkpoints in :mod:`course_pkg.checkpoint_manifest`, the shipped models in :mod:`course_pkg.bundled`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any, Callable, Optional, Union

from torch import nn

__all__ = ["MODELS", "accepted_kwargs", "build_model", "resolve_builder"]

MODELS: dict[str, str] = {
    "simple_cnn": "course_pkg.cnn:simple_cnn",
    "resnet_small": "course_pkg.resnet:resnet_small",
    "resnet18": "course_pkg.resnet:resnet18",
    "vit": "course_pkg.vit:VisionTransformer",
    "vit_tiny": "course_pkg.vit:vit_tiny",
    "vit_small": "course_pkg.vit:vit_small",
}


def resolve_builder(spec: str) -> Callable[..., nn.Module]:
    """A model builder from a name in :data:`MODELS` or a ``"package.module:function"`` string."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model={spec!r} is not valid; use one of {sorted(MODELS)} or 'package.module:function'")
    target = MODELS.get(spec, spec)
    if ":" not in target:
        raise ValueError(f"model={spec!r} is not known; use one of {sorted(MODELS)} or 'package.module:function'")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"model={spec!r}: cannot import module {module_name!r} ({err})") from err
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise ValueError(f"model={spec!r}: module {module_name!r} has no callable {attr!r}")
    return builder


def build_model(spec: str, kwargs: Optional[Mapping[str, Any]] = None, **data_kwargs: Any) -> nn.Module:
    """Build a model: ``kwargs`` always go to the builder; ``data_kwargs`` (``num_classes``, ``in_chans``,
    ``img_size``, set by the data) only when the builder names them or takes ``**kwargs``."""
    builder = resolve_builder(spec)
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs={kwargs!r} is a {type(kwargs).__name__}; use a dict of builder arguments, e.g. "
                        "{'num_classes': 6}")
    merged = {k: v for k, v in data_kwargs.items() if k in accepted_kwargs(builder, data_kwargs)}
    merged.update(kwargs or {})
    return builder(**merged)


def accepted_kwargs(builder: Union[str, Callable[..., nn.Module]], candidates: Mapping[str, Any]) -> set[str]:
    """Which of ``candidates`` the builder takes: the names in its signature, or all with ``**kwargs``."""
    fn = resolve_builder(builder) if isinstance(builder, str) else builder
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return {k for k in candidates if k in params or takes_any}


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
