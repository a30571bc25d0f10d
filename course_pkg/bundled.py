"""The bundled models: small trained models that ship with the package, so chapters show trained attention
without training.

``load_bundled(name)`` rebuilds a shipped model from its ``manifest.json`` entry (builder and kwargs) and
loads its weights safely (``weights_only=True``, SHA-256 checked); ``bundled_test_data(name)`` draws its
held-out set again from the recorded generator and arguments, so anyone can check the recorded accuracy;
``seed_runs(prefix)`` gives the entries of one model trained with several seeds.

Where the rest lives: the manifest (:data:`~course_pkg.checkpoint_manifest.CHECKPOINT_DIR`,
``manifest``, ``get_entry``, ``update_manifest``) in :mod:`course_pkg.checkpoint_manifest`; the checkpoint
file format in :mod:`course_pkg.checkpoint`; the model registry in :mod:`course_pkg.model_registry`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .checkpoint_manifest import CHECKPOINT_DIR, get_entry, manifest
from .model_registry import build_model

__all__ = ["bundled_test_data", "load_bundled", "seed_runs"]


def seed_runs(prefix: str, directory: Union[str, os.PathLike, None] = None) -> list[dict[str, Any]]:
    """The manifest entries named ``prefix`` followed by a seed number, in seed order.

    E.g. ``seed_runs("textures_resnet_small_se_s")`` gives the entries of ``..._se_s0``, ``..._se_s1``, ...:
    the same model trained with several seeds (``scripts/train_textures.py``).
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix={prefix!r} is not valid; use the shared start of the names, e.g. "
                         "'textures_resnet_small_se_s'")
    runs = [e for e in manifest(directory)
            if e["name"].startswith(prefix) and e["name"][len(prefix):].isdigit()]
    return sorted(runs, key=lambda e: int(e["name"][len(prefix):]))


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_bundled(name: str, device: Union[str, torch.device, None] = None,
                 directory: Union[str, os.PathLike, None] = None) -> nn.Module:
    """Rebuild the bundled model ``name``, load its weights (``weights_only=True``), return it in eval mode.

    Args:
        name: one of :func:`course_pkg.checkpoint_manifest.list_bundled`.
        device: where to put the model: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a
            ``torch.device``; default :func:`course_pkg.get_device`.
    """
    from .env import as_device

    dev = as_device(device, "device", default=None)   # before any work: 'gpu' fails here, naming device
    entry = get_entry(name, directory)
    path = Path(directory or CHECKPOINT_DIR) / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"the weights of {name!r} ({path}) are missing; reinstall course_pkg")
    model = build_model(entry["builder"], entry["kwargs"])
    load_checkpoint(path, model)  # checks the SHA-256 that the manifest next to the file records
    return model.to(dev).eval()


def bundled_test_data(name: str, directory: Union[str, os.PathLike, None] = None, *,
                      device: Union[str, torch.device, None] = "cpu") -> Any:
    """The held-out set of the bundled model ``name``, drawn again from its recorded generator and arguments.

    For the clutter models this is a :class:`course_pkg.data.ClutterSet` ``(images, labels, masks,
    class_names)``, for the texture models a :class:`course_pkg.textures.TextureSet`; every result has
    ``.images`` and ``.labels``.

    Args:
        device: where the tensors go: ``"cpu"`` (the default, ready to plot), or the model's device, e.g.
            ``device=next(model.parameters()).device`` or ``course_pkg.get_device()``. Every tensor field
            of the result moves (:func:`course_pkg.to_device.to_device`), whatever the container.
    """
    from .env import as_device
    from .to_device import to_device

    dev = as_device(device, "device", default=None)    # None: the best device, as in load_bundled
    spec = get_entry(name, directory)["test_data"]
    data = _import(spec["generator"])(**spec["kwargs"])
    return to_device(data, dev) if dev.type != "cpu" else data


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
