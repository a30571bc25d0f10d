"""Checkpoint files: a state dict plus plain-data metadata, saved atomically and loaded safely.

* :func:`save_checkpoint` writes ``{"format": "course_pkg.checkpoint/1", "state_dict": ..., "meta": ...}``
  (and an optional ``train_state`` to resume training, read by :func:`load_train_state`); ``meta`` must be
  plain data (numbers, strings, lists, dicts), checked before anything is written.
* :func:`load_checkpoint` reads it with ``torch.load(weights_only=True)`` (no code runs from a file), names
  what is wrong with a bad file (empty, truncated, an HTML page, another format, a changed shipped file),
  strips a ``module.`` / ``_orig_mod.`` wrapper prefix and checks the recorded builder arguments.
* :func:`check_writable` checks a target path before any work is done.

Where the rest lives: rebuilding a model from the recorded builder in :mod:`course_pkg.model_registry`; the
``manifest.json`` that lists the shipped checkpoints (with their SHA-256, checked here on load) in
:mod:`course_pkg.checkpoint_manifest`; the shipped models themselves in :mod:`course_pkg.bundled`.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import torch
from torch import nn

from .checkpoint_manifest import sha256_of, shipped_model_at

__all__ = ["Checkpoint", "check_writable", "load_checkpoint", "load_train_state", "save_checkpoint"]


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns."""

    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]


_FORMAT = "course_pkg.checkpoint/1"


def _check_meta(value: Any, where: str = "meta") -> None:
    """Metadata must be plain data (what ``torch.load(weights_only=True)`` and JSON both accept)."""
    if value is None or type(value) in (bool, int, float, str):   # exact types: subclasses pickle as code
        return
    if type(value) in (list, tuple):
        for i, v in enumerate(value):
            _check_meta(v, f"{where}[{i}]")
        return
    if type(value) is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(f"{where} has a non-string key {k!r}; checkpoint metadata keys must be strings")
            _check_meta(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}; checkpoint metadata may only hold None, bool, int, "
                    "float, str, lists and dicts (so it loads with weights_only=True)")


def check_writable(path: Union[str, os.PathLike], name: str = "path") -> Path:
    """Check that a file can be written at ``path`` (before any work), or raise a clear ``OSError``.

    Creates the missing parent folders and writes and removes a small probe file next to ``path``.

    Raises:
        IsADirectoryError: ``path`` is a folder.
        NotADirectoryError: a part of ``path`` above the file is a file, not a folder.
        PermissionError / OSError: the folder cannot be created or written.
    """
    if not isinstance(path, (str, os.PathLike)) or str(path) == "":
        raise TypeError(f"{name}={path!r} is not valid; use a file path (a str or pathlib.Path) such as 'model.pt'")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{name}={str(path)!r} is a directory; give a file path inside it, such as "
                                f"{str(path / 'model.pt')!r}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{name}={str(path)!r} cannot be written: {str(parent)!r} is a file, "
                                         "not a directory; choose a path whose folders are folders")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise PermissionError(f"{name}={str(path)!r} cannot be written ({err.strerror or err}); choose a file "
                              "in a folder you can write to") from err
    return path


def save_checkpoint(path: Union[str, os.PathLike], model: Union[nn.Module, Mapping[str, torch.Tensor]],
                    meta: Optional[Mapping[str, Any]] = None, dtype: Optional[torch.dtype] = None,
                    train_state: Optional[Mapping[str, Any]] = None) -> Path:
    """Save a model's state dict and plain-data ``meta`` to ``path`` (written atomically).

    The file is written to ``path + ".tmp"`` and renamed over ``path`` (``os.replace``), so a crash never
    leaves half a file at ``path``; the ``.tmp`` file is removed when the write fails.

    Args:
        model: a module (a DDP wrapper is unwrapped) or a state dict.
        meta: plain data (numbers, strings, lists, dicts) about the model: builder, kwargs, data, accuracy.
        dtype: store floating-point tensors in this dtype (e.g. ``torch.float16`` halves the file).
        train_state: what a stopped training run needs to continue (optimiser, schedule, random
            generators; tensors and plain data), read back with :func:`load_train_state`.
    """
    model = _unwrapped(model)
    if not isinstance(model, (nn.Module, Mapping)):
        raise TypeError(f"model must be a torch.nn.Module or a state dict, got {model!r} of type "
                        f"{type(model).__name__}; to save a named model, build it first (build_model)")
    state = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a dict of plain data (str, int, float, lists, dicts), got "
                        f"{type(meta).__name__}")
    meta = dict(meta or {})
    _check_meta(meta)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype={dtype} is not valid; use a floating-point dtype such as torch.float16")
    path = check_writable(path)
    shipped = shipped_model_at(path)
    if shipped is not None:
        raise PermissionError(
            f"path={str(path)!r} holds the shipped weights of the bundled model {shipped!r} (listed in "
            f"{path.parent / 'manifest.json'}); saving there would replace them, and load_bundled would then "
            f"refuse the file. Save to another path (e.g. {path.stem}_mine.pt in your own folder); a script "
            f"that retrains {shipped!r} calls remove_from_manifest({shipped!r}, directory) first")
    out = {}
    for k, v in state.items():
        v = v.detach().to("cpu").clone()
        out[k] = v.to(dtype) if dtype is not None and v.is_floating_point() else v
    obj: dict[str, Any] = {"format": _FORMAT, "state_dict": out, "meta": meta}
    if train_state is not None:
        obj["train_state"] = dict(train_state)
    # one temporary file per writer: two runs saving to the same path never write into each other's file
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except RuntimeError as err:
        tmp.unlink(missing_ok=True)
        text = str(err)
        if any(k in text for k in ("unexpected pos", "file write failed", "PytorchStreamWriter")):
            raise _write_failed(path, text) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_failed(path: Path, detail: str) -> OSError:
    """The error for a checkpoint write that stopped part-way (torch says only ``unexpected pos``)."""
    try:
        free = shutil.disk_usage(path.parent).free
        room = f"{free / 1e6:.1f} MB are free in {str(path.parent)!r}"
    except OSError:
        free, room = -1, f"the free space in {str(path.parent)!r} cannot be read"
    cause = ("the disk is full" if 0 <= free < 1_000_000 else
             "the disk is full, or a disk quota or a file-size limit was reached")
    err = OSError(errno.ENOSPC if 0 <= free < 1_000_000 else errno.EIO,
                  f"cannot save path={str(path)!r}: the write stopped part-way ({cause}; {room}); "
                  f"nothing was written at the path (the old file, if any, is unchanged). Free some space "
                  f"or save to another folder. (torch: {detail.strip()[:200]})")
    return err


def _unwrapped(model: Any) -> Any:
    """The model inside a ``DataParallel`` / ``DistributedDataParallel`` wrapper or a ``torch.compile``
    result, so that its state dict has the plain keys (no ``module.`` / ``_orig_mod.`` prefix)."""
    for _ in range(4):
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(model, nn.Module) and isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            break
    return model


_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def _strip_wrapper_prefix(state: Mapping[str, Any], own: Optional[Mapping[str, Any]] = None
                          ) -> dict[str, Any]:
    """Drop a ``module.`` (DataParallel, DDP) or ``_orig_mod.`` (torch.compile) prefix that every key has
    (unless the keys of ``own``, the model's state dict, have it too)."""
    out = dict(state)
    for _ in range(4):
        prefix = next((p for p in _WRAPPER_PREFIXES if out and all(k.startswith(p) for k in out)
                       and not (own and all(k.startswith(p) for k in own))), None)
        if prefix is None:
            break
        out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def _file_problem(path: Path) -> Optional[str]:
    """What is wrong with a checkpoint file's bytes, in words, or None when it looks like one."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes): the download or the save did not finish; download or save it again"
    with open(path, "rb") as fh:
        head = fh.read(512)
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return ("is an HTML page, not a checkpoint (a web page was saved instead of the file: use the "
                "file's direct download link, or write it with save_checkpoint)")
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return (f"is truncated (incomplete: {size} bytes, its end is missing); download it again or save "
                    "it again with save_checkpoint")
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            return f"is damaged (corrupt: {err}); download it again or save it again with save_checkpoint"
        if bad is not None:
            return (f"is damaged (corrupt: the checksum of its part {bad!r} does not match); download it "
                    "again or save it again with save_checkpoint")
        return None
    if head.startswith(b"\x80"):  # the legacy (non-zip) torch.save format: a pickle
        return None
    return ("is not a checkpoint (it is neither a torch.save zip file nor a pickle; it starts with "
            f"{head[:16]!r}); write checkpoints with save_checkpoint")


def _safe_load(path: Union[str, os.PathLike], map_location: Any = "cpu") -> tuple[Path, Any]:
    """``torch.load(path, weights_only=True)`` with a clear message for every kind of bad file."""
    from .env import as_device

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path={path!r} is not valid; use a file path (a str or pathlib.Path)")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path={str(path)!r} is a directory; give the .pt file inside it")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint path={str(path)!r} does not exist; check the name and the folder")
    if isinstance(map_location, (str, torch.device)):
        map_location = as_device(map_location, "map_location")
    _check_hash(path)   # first: a recorded hash says the most about a changed file
    problem = _file_problem(path)
    if problem:
        raise ValueError(f"checkpoint path={str(path)!r} {problem}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused something: code or an unknown class
        raise ValueError(f"refusing to load {str(path)!r}: it is not a plain weights file that loads with "
                         f"weights_only=True (it may hold code); {err}") from err
    except Exception as err:
        raise ValueError(f"checkpoint path={str(path)!r} is damaged or not a checkpoint ({type(err).__name__}: "
                         f"{err}); download it again or save it again with save_checkpoint") from err
    return path, obj


def _check_hash(path: Path) -> None:
    """When a ``manifest.json`` next to ``path`` records a SHA-256 for it, the file must match it."""
    man = path.parent / "manifest.json"
    if not man.is_file():
        return
    try:
        entries = json.loads(man.read_text())
    except (OSError, ValueError):
        return  # a damaged manifest is reported by the bundled-model functions
    if not isinstance(entries, list):
        return
    for entry in entries:
        if isinstance(entry, dict) and entry.get("file") == path.name and entry.get("sha256"):
            if sha256_of(path) != entry["sha256"]:
                raise ValueError(f"{str(path)!r} does not match the SHA-256 recorded for "
                                 f"{entry.get('name', path.name)!r} in the manifest ({man}); the file was "
                                 "changed or damaged: restore it (reinstall course_pkg) or download it again")
            return


# builder arguments a model keeps as an attribute of the same name: a checkpoint's recorded value must match
_CHECKED_KWARGS = ("num_heads", "embed_dim", "depth", "num_classes", "in_chans", "img_size", "patch_size",
                   "attention", "reduction", "mlp_ratio", "global_pool")


def _same_setting(a: Any, b: Any) -> bool:
    """Recorded and built values agree (an int ``n`` and the pair ``(n, n)`` are the same size)."""
    def norm(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return tuple(norm(x) for x in v)
        return v
    a, b = norm(a), norm(b)
    if isinstance(a, int) and isinstance(b, tuple) and len(b) == 2:
        a = (a, a)
    if isinstance(b, int) and isinstance(a, tuple) and len(a) == 2:
        b = (b, b)
    return a == b


def _check_recorded_kwargs(model: nn.Module, meta: Mapping[str, Any], path: Path) -> None:
    """The builder arguments recorded in ``meta['kwargs']`` must match the model's (e.g. ``num_heads``:
    the weights of a 4-head ViT have the same shapes as a 2-head one, so only the record tells)."""
    kwargs = meta.get("kwargs") if isinstance(meta, Mapping) else None
    if not isinstance(kwargs, Mapping):
        return
    for key in _CHECKED_KWARGS:
        if key not in kwargs or not hasattr(model, key):
            continue
        built = getattr(model, key)
        if isinstance(built, (nn.Module, torch.Tensor)):
            continue
        if not _same_setting(kwargs[key], built):
            raise ValueError(
                f"{str(path)!r} was saved from a model with {key}={kwargs[key]!r}, but this "
                f"{type(model).__name__} has {key}={built!r}; the weights would load but compute something "
                f"else. Build the model with the checkpoint's kwargs: build_model(meta['builder'], "
                f"meta['kwargs']) (recorded: {dict(kwargs)})")


def _load_into(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path, strict: bool,
               meta: Optional[Mapping[str, Any]] = None) -> None:
    """``model.load_state_dict(state)`` with a message naming the first differing keys and shapes.

    A ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) prefix on every key of the file, or a
    wrapped ``model``, is taken off first; the builder arguments recorded in ``meta`` must match the model.
    """
    model = _unwrapped(model)
    own = model.state_dict()
    state = _strip_wrapper_prefix(state, own)
    _check_recorded_kwargs(model, meta or {}, path)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if strict and (missing or unexpected):
        raise ValueError(
            f"{str(path)!r} holds another architecture than {type(model).__name__}: the keys do not match "
            f"(missing from the file: {missing[:5]}{' ...' if len(missing) > 5 else ''}; unexpected in the "
            f"file: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}); build the model with the "
            "builder and kwargs recorded in the checkpoint's meta")
    for k, v in state.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(
                f"{str(path)!r} does not match {type(model).__name__}: {k} has shape {tuple(v.shape)} in the "
                f"file but {tuple(own[k].shape)} in the model (another num_classes or width?); build the "
                "model with the kwargs recorded in the checkpoint's meta")
    model.load_state_dict(state, strict=strict)


def load_checkpoint(path: Union[str, os.PathLike], model: Optional[nn.Module] = None,
                    map_location: Union[str, torch.device] = "cpu", strict: bool = True) -> Checkpoint:
    """Load a checkpoint safely (``torch.load(weights_only=True)``: tensors and plain data only, no code).

    Args:
        path: a file written by :func:`save_checkpoint` (a bare state dict also loads, with empty meta).
            When a ``manifest.json`` next to it records the file's SHA-256 (a bundled model), the file
            must match it.
        model: when given, the weights are loaded into it (cast to its dtypes).
        map_location: where the tensors go: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        strict: passed to ``load_state_dict``.

    Returns:
        :class:`Checkpoint` ``(state_dict, meta)``.

    Raises:
        FileNotFoundError / IsADirectoryError: no file at ``path``.
        ValueError: the file is empty, truncated, damaged, an HTML page, not a checkpoint, of another
            ``format``, does not match its recorded hash, or holds another architecture than ``model``.
        RuntimeError: ``map_location`` names a device this machine does not have.
    """
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module to load the weights into (or None), got {model!r} of "
                        f"type {type(model).__name__}; build it first, e.g. build_model('resnet_small', ...)")
    if not isinstance(strict, bool):
        raise TypeError(f"strict={strict!r} is a {type(strict).__name__}; use True or False")
    path, obj = _safe_load(path, map_location)
    if isinstance(obj, dict) and "format" in obj and obj["format"] != _FORMAT:
        raise ValueError(f"{str(path)!r} has format={obj['format']!r}; this version of course_pkg reads "
                         f"format={_FORMAT!r} (a course checkpoint written by save_checkpoint)")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        state, meta = obj["state_dict"], dict(obj.get("meta") or {})
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, meta = obj, {}
    else:
        raise ValueError(f"{str(path)!r} holds a {type(obj).__name__} that is neither a course checkpoint nor a "
                         "state dict; write checkpoints with save_checkpoint")
    if model is not None:
        _load_into(model, state, path, strict, meta)
    return Checkpoint(state, meta)


def load_train_state(path: Union[str, os.PathLike]) -> Optional[dict[str, Any]]:
    """The training state saved with a checkpoint (see :func:`save_checkpoint`), or None if it has none."""
    _, obj = _safe_load(path, "cpu")
    return obj.get("train_state") if isinstance(obj, dict) else None


# a mistyped keyword argument names the closest accepted one (checks.suggest_keywords)
from .checks import add_keyword_suggestions as _add_keyword_suggestions  # noqa: E402

_add_keyword_suggestions(globals())
