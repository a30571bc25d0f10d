"""The options of the training command line (``python -m course_pkg.train``): its parser and the checks
that turn every mistake into a usage error (exit status 2) before any data is made.

:func:`build_parser` declares the options; :func:`check_args` checks them together (numbers, names,
``--kwargs``, the data options the chosen ``--dataset`` reads, ``--out``) and returns the builder
arguments and the device; :data:`RESUME_KEYS` are the options a resumed run must repeat.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from typing import Any, NoReturn

import torch

from ..checkpoint import check_writable, load_checkpoint, load_train_state
from ..checkpoint_manifest import shipped_model_at
from ..env import get_device
from ..model_registry import MODELS, accepted_kwargs, resolve_builder

__all__ = ["RESUME_KEYS", "UsageError", "build_parser", "check_args", "model_data_kwargs"]


class UsageError(SystemExit):
    """A usage error: exit status 2 (as argparse's), the message in ``str(err)`` and on stderr."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m course_pkg.train",
        description="Train a classifier on one of the course's data sets; runs under torchrun too.")
    p.add_argument("--model", default="resnet_small",
                   help=f"a name in {sorted(MODELS)} or 'package.module:function' (default resnet_small)")
    p.add_argument("--attention", default=None, help="passed to the builder: none, se or cbam (ResNets)")
    p.add_argument("--kwargs", default="{}", help="more builder arguments, as a JSON object")
    p.add_argument("--dataset", default="clutter", choices=("clutter", "digits", "cifar10"))
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (clutter default 4000; cifar10: the first N)")
    p.add_argument("--n-val", type=int, default=None,
                   help="clutter: validation images, 0 or more (default 500; 0 means no validation)")
    p.add_argument("--n-test", type=int, default=None,
                   help="held-out test images (clutter default 1000; cifar10: the first N)")
    p.add_argument("--image-size", type=int, default=None, help="clutter image side in pixels (default 48)")
    p.add_argument("--num-classes", type=int, default=None, help="clutter shapes, 2 to 6 (default 6)")
    p.add_argument("--data-seed", type=int, default=None,
                   help="clutter: train set seed (default 0); validation uses seed+1, test seed+2; "
                        "digits: split seed")
    p.add_argument("--data-root", default=None, help="cifar10: folder of cifar-10-batches-py (default data)")
    p.add_argument("--download", action="store_true", help="cifar10: download when missing")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128, help="the global batch (split across processes)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0, help="model initialisation and shuffling")
    p.add_argument("--amp", default="auto", choices=("auto", "off", "fp16", "bf16"))
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm in a multi-GPU run")
    p.add_argument("--half", action="store_true", help="store the weights in float16")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--out", default=None,
                   help="checkpoint path (.pt), written after every epoch; nothing is saved without it")
    p.add_argument("--resume", action="store_true",
                   help="continue the stopped run whose checkpoint is --out (same other options)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what --out holds (a finished model or a stopped run); without it an "
                        "existing --out is refused")
    return p


# which data options each data set reads (the others would be dropped without a word: refused instead)
_DATA_OPTIONS = {
    "clutter": ("n_train", "n_val", "n_test", "image_size", "num_classes", "data_seed"),
    "digits": ("data_seed",),
    "cifar10": ("n_train", "n_test", "data_root", "download"),
}
_DATA_DEFAULTS = {"image_size": 48, "num_classes": 6, "data_seed": 0, "data_root": "data"}


# the options that must be the same when a run is resumed (the others only change how it is shown)
RESUME_KEYS = ("model", "attention", "kwargs", "dataset", "n_train", "n_val", "n_test", "image_size",
                "num_classes", "data_seed", "data_root", "epochs", "batch_size", "lr", "weight_decay",
                "warmup_epochs", "label_smoothing", "seed", "amp", "sync_bn", "half")


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[dict[str, Any], torch.device]:
    """Every usage error (exit status 2) before any data is made: numbers, names, --kwargs, --out.

    Returns:
        ``(model_kwargs, device)``.
    """
    from ..env import _parse_device

    def bad(option: str, value: Any, accepted: str) -> None:
        p.error(f"{option}={value} is not valid; use {accepted}")

    given = {k for k in ("n_train", "n_val", "n_test", "image_size", "num_classes", "data_seed", "data_root")
             if getattr(args, k) is not None} | ({"download"} if args.download else set())
    dropped = sorted(given - set(_DATA_OPTIONS[args.dataset]))
    if dropped:
        opts = ", ".join("--" + k.replace("_", "-") for k in dropped)
        uses = ", ".join("--" + k.replace("_", "-") for k in _DATA_OPTIONS[args.dataset])
        p.error(f"{opts} {'does' if len(dropped) == 1 else 'do'} not apply to --dataset {args.dataset}, "
                f"which would ignore {'it' if len(dropped) == 1 else 'them'}; --dataset {args.dataset} "
                f"reads only {uses}" + (" (digits has a fixed split of 1797 8x8 images in 10 classes)"
                                        if args.dataset == "digits" else ""))
    for k, v in _DATA_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite contradict each other: --resume continues the run in --out, "
                "--overwrite starts a new one over it; give one of them")
    for name in ("epochs", "batch_size", "n_train", "n_test", "image_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            bad(f"--{name.replace('_', '-')}", value, "a positive integer")
    if args.n_val is not None and args.n_val < 0:
        bad("--n-val", args.n_val, "0 or more (>= 0; 0 means no validation)")
    if args.num_workers < 0:
        bad("--num-workers", args.num_workers, "0 or more (>= 0)")
    if not 0 <= args.seed < 2**32:
        bad("--seed", args.seed, "an integer >= 0 and below 2**32")
    if not (args.lr > 0 and args.lr < float("inf")):
        bad("--lr", args.lr, "a positive learning rate such as 2e-3")
    if not 0 <= args.weight_decay < float("inf"):
        bad("--weight-decay", args.weight_decay, "a number >= 0")
    if not 0 <= args.warmup_epochs < float("inf"):
        bad("--warmup-epochs", args.warmup_epochs, "a number of epochs >= 0")
    if 0 < args.epochs <= args.warmup_epochs:
        bad("--warmup-epochs", args.warmup_epochs,
            f"fewer epochs than --epochs={args.epochs} (the learning rate would never reach --lr and decay)")
    if not 0 <= args.label_smoothing < 1:
        bad("--label-smoothing", args.label_smoothing, "a number in [0, 1)")
    if args.dataset == "clutter" and not 2 <= args.num_classes <= 6:
        bad("--num-classes", args.num_classes, "2 to 6 (the clutter data set has 6 shapes)")
    if args.device is not None:
        try:
            _parse_device(args.device, "--device")
        except (ValueError, TypeError, RuntimeError) as err:
            p.error(str(err))
    try:
        resolve_builder(args.model)
    except ValueError as err:
        p.error(f"--{err}")
    try:
        model_kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as err:
        p.error(f"--kwargs={args.kwargs!r} is not valid JSON ({err}); use a JSON object such as "
                "'{\"width\": 32}' (keys in double quotes)")
    if not isinstance(model_kwargs, dict):
        p.error(f"--kwargs={args.kwargs!r} is not valid: it must be a JSON object such as "
                "'{\"width\": 32}'")
    if args.attention is not None:
        if args.attention.lower() not in ("none", "se", "cbam"):
            bad("--attention", repr(args.attention), "none, se or cbam")
        model_kwargs["attention"] = None if args.attention.lower() == "none" else args.attention.lower()
    unknown = sorted(set(model_kwargs) - accepted_kwargs(args.model, model_kwargs))
    if unknown:
        builder = resolve_builder(args.model)
        takes = [k for k in inspect.signature(builder).parameters]
        p.error(f"--kwargs names {unknown}, which the builder {args.model} ({builder.__name__}) does not take; "
                f"it takes {takes}" + (" (--attention is for the ResNets)" if "attention" in unknown else ""))
    data_kwargs = model_data_kwargs(args)
    for key, value in data_kwargs.items():
        if key in model_kwargs and not _same_size(model_kwargs[key], value):
            p.error(f"--kwargs sets {key}={model_kwargs[key]!r}, but --dataset {args.dataset} gives "
                    f"{key}={value!r}" + (" (--num-classes)" if key == "num_classes" and args.dataset == "clutter"
                                          else " (--image-size)" if key == "img_size"
                                          and args.dataset == "clutter" else "")
                    + f"; leave {key} out of --kwargs (the data sets it)")
    if args.resume and not args.out:
        p.error("--resume needs --out: the checkpoint of the stopped run to continue")
    if args.out:
        try:
            check_writable(args.out, "--out")
        except OSError as err:
            p.error(str(err))
        if args.resume and not os.path.isfile(args.out):
            p.error(f"--resume: --out={args.out!r} does not exist, so there is no stopped run to continue; "
                    "leave out --resume to start a new run")
        shipped = shipped_model_at(args.out)
        if shipped is not None:
            p.error(f"--out={args.out!r} holds the shipped weights of the bundled model {shipped!r}; "
                    "write your model to another path (the bundled ones are retrained by the scripts/)")
        if os.path.isfile(args.out) and not args.resume and not args.overwrite:
            p.error(_existing_out(args.out))
    device = get_device(args.device)
    return model_kwargs, device


def _same_size(a: Any, b: Any) -> bool:
    """``--kwargs`` value ``a`` and the data's value ``b`` agree (``48`` and ``[48, 48]`` are one size)."""
    if isinstance(a, list):
        a = tuple(a)
    if isinstance(b, int) and isinstance(a, tuple) and len(a) == 2:
        b = (b, b)
    return a == b


def _existing_out(out: str) -> str:
    """Why an existing ``--out`` is refused without ``--resume`` / ``--overwrite``, in words."""
    try:
        state = load_train_state(out)
        meta = load_checkpoint(out).meta
    except (ValueError, OSError):
        return (f"--out={out!r} already exists and is not a checkpoint of this command; choose another "
                "--out, or add --overwrite to replace the file")
    if state is not None:
        return (f"--out={out!r} holds a stopped run (after epoch {state.get('epoch')} of "
                f"{state.get('epochs')}); add --resume to continue it, or --overwrite to start again "
                "over it, or choose another --out")
    acc = meta.get("test_accuracy")
    what = f" (test accuracy {acc:.4f})" if isinstance(acc, float) else ""
    return (f"--out={out!r} already holds a finished model{what}; a new run would replace it after its "
            "first epoch. Choose another --out, or add --overwrite to replace it")


def model_data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The model arguments the data set decides (classes, channels, image size)."""
    if args.dataset == "clutter":
        return {"num_classes": args.num_classes, "in_chans": 3, "img_size": args.image_size}
    if args.dataset == "digits":
        return {"num_classes": 10, "in_chans": 1, "img_size": 8}
    return {"num_classes": 10, "in_chans": 3, "img_size": 32}
