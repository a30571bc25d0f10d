"""The manifest of the shipped checkpoints: ``course_pkg/checkpoints/manifest.json``.

Each shipped model is a state dict in ``course_pkg/checkpoints/`` (:data:`CHECKPOINT_DIR`) plus an entry in
``manifest.json`` that says how to rebuild it and how it was made::

    {"name": "clutter_resnet_small_se", "file": "clutter_resnet_small_se.pt",
     "builder": "course_pkg.resnet:resnet_small", "kwargs": {"num_classes": 6, "attention": "se", ...},
     "dataset": "clutter", "train_data": {"generator": "course_pkg.data:make_clutter", "kwargs": {...}},
     "test_data": {"generator": ..., "kwargs": {...}}, "test_accuracy": 0.93, "command": "python -m ...",
     "seed": 0, "epochs": 6, "num_params": 80000, "train_time_s": 300.0, "sha256": "...", ...}

Reading: :func:`manifest`, :func:`list_bundled`, :func:`get_entry`, :func:`checkpoint_path`, and for any
file :func:`shipped_model_at` (is it a listed, shipped file?) and :func:`sha256_of`. Writing (scripts
only, under a lock): :func:`update_manifest`, :func:`remove_from_manifest`.

Where the rest lives: the checkpoint file format in :mod:`course_pkg.checkpoint` (which refuses to write over
a shipped file and checks the recorded SHA-256 on load); loading the shipped models and their held-out
sets in :mod:`course_pkg.bundled`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional, Union

__all__ = ["CHECKPOINT_DIR", "REQUIRED_KEYS", "checkpoint_path", "get_entry", "list_bundled", "manifest",
           "remove_from_manifest", "sha256_of", "shipped_model_at", "update_manifest"]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
REQUIRED_KEYS = ("name", "file", "builder", "kwargs", "dataset", "test_data", "test_accuracy", "command")


def _manifest_path(directory: Optional[Path]) -> Path:
    return Path(directory or CHECKPOINT_DIR) / "manifest.json"


def manifest(directory: Union[str, os.PathLike, None] = None) -> list[dict[str, Any]]:
    """All entries of ``manifest.json`` (an empty list when the folder has none yet).

    Raises:
        FileNotFoundError: ``directory`` does not exist (or is not a folder).
        ValueError: ``manifest.json`` is damaged (not valid JSON) or is not a JSON list.
    """
    folder = Path(directory) if directory else CHECKPOINT_DIR
    if directory and not folder.is_dir():
        raise FileNotFoundError(f"directory={str(folder)!r} does not exist (or is not a folder); give the folder "
                                "that holds manifest.json and the .pt files")
    path = _manifest_path(folder)
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        where = f" at line {err.lineno}, column {err.colno}" if isinstance(err, json.JSONDecodeError) else ""
        raise ValueError(f"{path} is damaged: it is not valid JSON{where} ({err}); restore it (reinstall "
                         "course_pkg, or `git checkout` the file) or rewrite it with update_manifest") from err
    if not isinstance(entries, list):
        raise ValueError(f"{path} must hold a JSON list of entries, found a {type(entries).__name__}")
    return entries


def list_bundled(directory: Union[str, os.PathLike, None] = None) -> list[str]:
    """The names of the bundled models."""
    return [e["name"] for e in manifest(directory)]


def get_entry(name: str, directory: Union[str, os.PathLike, None] = None) -> dict[str, Any]:
    """The manifest entry called ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, the name of a bundled model, got {name!r} of type "
                        f"{type(name).__name__}; use one of {list_bundled(directory)}")
    entries = manifest(directory)
    path = _manifest_path(Path(directory) if directory else None)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the folder {str(path.parent)!r} has no manifest.json, so it "
                                "holds no bundled models; use the default folder (directory=None) or reinstall "
                                "course_pkg")
    for entry in entries:
        if entry.get("name") == name:
            return entry
    raise KeyError(f"name={name!r} is not a bundled model; use one of {[e.get('name') for e in entries]}")


def checkpoint_path(name: str, directory: Union[str, os.PathLike, None] = None) -> Path:
    """The path of the weights file of the bundled model ``name``."""
    return Path(directory or CHECKPOINT_DIR) / get_entry(name, directory)["file"]


def sha256_of(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file (recorded in the manifest, checked when a model loads)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_model_at(path: Union[str, os.PathLike]) -> Optional[str]:
    """The name of the bundled model whose weights are the file ``path`` (the ``manifest.json`` next to it
    lists it), or None. :func:`course_pkg.checkpoint.save_checkpoint` refuses to write over such a file."""
    path = Path(path)
    man = path.parent / "manifest.json"
    if not man.is_file():
        return None
    try:
        entries = json.loads(man.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if isinstance(entry, dict) and entry.get("file") == path.name:
            return str(entry.get("name", path.name))
    return None


# ------------------------------------------------------------------------------------------------
# Writing the manifest (scripts only)
# ------------------------------------------------------------------------------------------------

def _write_manifest(folder: Path, entries: list[dict[str, Any]]) -> None:
    """Write ``manifest.json`` whole (to a ``.tmp`` file renamed over it); call it under :func:`_locked`."""
    target = _manifest_path(folder)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    os.replace(tmp, target)


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
        _write_manifest(folder, entries)
    return entries


def remove_from_manifest(name: str, directory: Union[str, os.PathLike, None] = None) -> bool:
    """Drop the entry called ``name`` from ``manifest.json`` (its file stays); ``True`` if there was one.

    A training script calls this before it overwrites a bundled file, so that the stale entry's
    SHA-256 does not refuse the new weights when they are read back.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} is not valid; use a manifest entry's name, e.g. 'digits_vit'")
    folder = Path(directory or CHECKPOINT_DIR)
    if not _manifest_path(folder).is_file():
        return False
    with _locked(folder):
        entries = manifest(folder)
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            return False
        _write_manifest(folder, kept)
    return True


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
