"""Checkpoints: the model registry, saving and loading weights, and the models shipped with the package.

* **Registry** (:data:`MODELS`, :func:`resolve_builder`, :func:`build_model`): a model is rebuilt from a
  builder name (``"resnet_small"``) or a ``"package.module:function"`` string and its keyword arguments.
* **Files** (:func:`save_checkpoint`, :func:`load_checkpoint`): a state dict plus plain-data metadata,
  loaded with ``torch.load(weights_only=True)`` (no code runs from a file).
* **Bundled models**: small trained models that ship with the package, so chapters show trained attention
  without training.

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
import errno
import hashlib
import importlib
import inspect
import json
import os
import pickle
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional, Union

import torch
from torch import nn

__all__ = ["CHECKPOINT_DIR", "MODELS", "REQUIRED_KEYS", "Checkpoint", "accepted_kwargs", "build_model",
           "bundled_test_data", "check_writable", "checkpoint_path", "get_entry", "list_bundled", "load_bundled",
           "load_checkpoint", "load_train_state", "manifest", "remove_from_manifest", "resolve_builder", "save_checkpoint",
           "seed_runs", "shipped_model_at", "sha256_of", "update_manifest"]


# ------------------------------------------------------------------------------------------------
# Model builders by name
# ------------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------------
# Checkpoint files
# ------------------------------------------------------------------------------------------------
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


def shipped_model_at(path: Union[str, os.PathLike]) -> Optional[str]:
    """The name of the bundled model whose weights are the file ``path`` (the ``manifest.json`` next to it
    lists it), or None. :func:`save_checkpoint` refuses to write over such a file."""
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


# ------------------------------------------------------------------------------------------------
# The bundled models
# ------------------------------------------------------------------------------------------------
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


def _import(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_bundled(name: str, device: Union[str, torch.device, None] = None,
                 directory: Union[str, os.PathLike, None] = None) -> nn.Module:
    """Rebuild the bundled model ``name``, load its weights (``weights_only=True``), return it in eval mode.

    Args:
        name: one of :func:`list_bundled`.
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
