"""Small trained models that ship with the package, so chapters show trained attention without training.

Each model is a state dict in ``course_pkg/checkpoints/`` plus an entry in ``checkpoints/manifest.json``
that says how to rebuild it and how it was made::

    {"name": "clutter_resnet_small_se", "file": "clutter_resnet_small_se.pt",
     "builder": "course_pkg.resnet:resnet_small", "kwargs": {"num_classes": 6, "attention": "se", ...},
     "dataset": "clutter", "train_data": {"generator": "course_pkg.data:make_clutter", "kwargs": {...}},
     "test_data": {"generator": ..., "kwargs": {...}}, "test_accuracy": 0.93, "command": "python -m ...",
     "seed": 0, "epochs": 6, "num_params": 80000, "train_time_s": 300.0, "sha256": "...", ...}

``load_bundled(name)`` rebuilds the model and loads its weights safely (``weights_only=True``);
``bundled_test_data(name)`` draws its held-out set again from the recorded generator and arguments, so
anyone can check the recorded accuracy. Scripts add entries with :func:`update_manifest`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

__all__ = ["CHECKPOINT_DIR", "REQUIRED_KEYS", "bundled_test_data", "checkpoint_path", "get_entry",
           "list_bundled", "load_bundled", "manifest", "sha256_of", "update_manifest"]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
REQUIRED_KEYS = ("name", "file", "builder", "kwargs", "dataset", "test_data", "test_accuracy", "command")


def _manifest_path(directory: Optional[Path]) -> Path:
    return Path(directory or CHECKPOINT_DIR) / "manifest.json"


def manifest(directory: Union[str, os.PathLike, None] = None) -> list[dict[str, Any]]:
    """All entries of ``manifest.json`` (an empty list when there is none yet)."""
    path = _manifest_path(Path(directory) if directory else None)
    if not path.is_file():
        return []
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path} must hold a JSON list of entries, found a {type(entries).__name__}")
    return entries


def list_bundled(directory: Union[str, os.PathLike, None] = None) -> list[str]:
    """The names of the bundled models."""
    return [e["name"] for e in manifest(directory)]


def get_entry(name: str, directory: Union[str, os.PathLike, None] = None) -> dict[str, Any]:
    """The manifest entry called ``name``."""
    for entry in manifest(directory):
        if entry["name"] == name:
            return entry
    raise KeyError(f"name={name!r} is not a bundled model; use one of {list_bundled(directory)}")


def checkpoint_path(name: str, directory: Union[str, os.PathLike, None] = None) -> Path:
    """The path of the weights file of the bundled model ``name``."""
    return Path(directory or CHECKPOINT_DIR) / get_entry(name, directory)["file"]


def sha256_of(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file (recorded in the manifest, checked when a model loads)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_bundled(name: str, device: Union[str, torch.device, None] = None,
                 directory: Union[str, os.PathLike, None] = None) -> nn.Module:
    """Rebuild the bundled model ``name``, load its weights (``weights_only=True``), return it in eval mode.

    Args:
        name: one of :func:`list_bundled`.
        device: where to put the model; default :func:`course_pkg.get_device`.
    """
    from .env import get_device
    from .train import build_model, load_checkpoint

    entry = get_entry(name, directory)
    path = Path(directory or CHECKPOINT_DIR) / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"the weights of {name!r} ({path}) are missing; reinstall course_pkg")
    if entry.get("sha256") and sha256_of(path) != entry["sha256"]:
        raise ValueError(f"{path} does not match the SHA-256 recorded for {name!r} in the manifest; the file "
                         "was changed or damaged")
    model = build_model(entry["builder"], entry["kwargs"])
    load_checkpoint(path, model)
    return model.to(get_device(device) if not isinstance(device, torch.device) else device).eval()


def bundled_test_data(name: str, directory: Union[str, os.PathLike, None] = None, *,
                      device: Union[str, torch.device, None] = "cpu") -> Any:
    """The held-out set of the bundled model ``name``, drawn again from its recorded generator and arguments.

    For the clutter models this is a :class:`course_pkg.data.ClutterSet` ``(images, labels, masks,
    class_names)``; every result has ``.images`` and ``.labels``.

    Args:
        device: where the tensors go: ``"cpu"`` (the default, ready to plot), or the model's device, e.g.
            ``device=next(model.parameters()).device`` or ``course_pkg.get_device()``.
    """
    from .env import get_device

    spec = get_entry(name, directory)["test_data"]
    data = _import(spec["generator"])(**spec["kwargs"])
    dev = device if isinstance(device, torch.device) else get_device(device)
    return data.to(dev) if dev.type != "cpu" else data


# ------------------------------------------------------------------------------------------------
# Writing the manifest (scripts only)
# ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock while the manifest is read, changed and written (two scripts may run at once)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the write is still atomic
        yield
        return
    key = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"course_pkg_manifest_{key}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_manifest(entry: Mapping[str, Any], directory: Union[str, os.PathLike, None] = None
                    ) -> list[dict[str, Any]]:
    """Add ``entry`` to ``manifest.json``, replacing an entry of the same name; entries stay sorted by name.

    The entry must have the keys :data:`REQUIRED_KEYS`, its ``file`` must exist next to the manifest,
    ``test_data`` must be ``{"generator": "module:function", "kwargs": {...}}`` and everything must be
    JSON. ``sha256`` and ``file_bytes`` are filled in from the file. Returns the new manifest.
    """
    if not isinstance(entry, Mapping):
        raise TypeError(f"entry must be a dict, got {type(entry).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise ValueError(f"entry is missing the keys {missing}; a manifest entry needs {list(REQUIRED_KEYS)}")
    folder = Path(directory or CHECKPOINT_DIR)
    path = folder / str(entry["file"])
    if Path(entry["file"]).name != entry["file"] or not path.is_file():
        raise ValueError(f"entry['file']={entry['file']!r} must be the name of a file in {folder}")
    spec = entry["test_data"]
    if not (isinstance(spec, Mapping) and isinstance(spec.get("generator"), str) and ":" in spec["generator"]
            and isinstance(spec.get("kwargs"), Mapping)):
        raise ValueError(f"entry['test_data']={spec!r} must be {{'generator': 'module:function', 'kwargs': {{...}}}}")
    if not (isinstance(entry["test_accuracy"], (int, float)) and 0 <= entry["test_accuracy"] <= 1):
        raise ValueError(f"entry['test_accuracy']={entry['test_accuracy']!r} must be a number in [0, 1]")
    new = dict(entry)
    new["sha256"] = sha256_of(path)
    new["file_bytes"] = path.stat().st_size
    try:
        json.dumps(new)
    except TypeError as err:
        raise TypeError(f"entry must hold JSON data only ({err})") from err
    with _locked(folder):
        entries = [e for e in manifest(folder) if e["name"] != new["name"]] + [new]
        entries.sort(key=lambda e: e["name"])
        target = _manifest_path(folder)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(entries, indent=2) + "\n")
        os.replace(tmp, target)
    return entries
