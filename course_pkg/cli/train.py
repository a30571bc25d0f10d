"""The training command line: ``python -m course_pkg.train`` (or ``python -m course_pkg.cli.train``).

Command line (``python -m course_pkg.train --help`` lists every option)::

    # one device (a GPU when there is one, else the CPU)
    python -m course_pkg.train --model resnet_small --attention se --dataset clutter --epochs 8 \\
        --out se.pt

    # one machine, 8 GPUs: one process per GPU (NCCL); --batch-size stays the *global* batch
    torchrun --standalone --nproc_per_node 8 -m course_pkg.train --model resnet_small --attention se \\
        --dataset clutter --epochs 8 --batch-size 512 --out se.pt

    # two machines with 8 GPUs each: run this on both, with --node_rank 0 on the first and 1 on the second;
    # host:port is an address of the first machine that the second can reach
    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 --rdzv_backend c10d \\
        --rdzv_endpoint host:29500 -m course_pkg.train --model resnet_small --dataset clutter --out se.pt

    # two CPU processes (Gloo), e.g. to try the distributed path on a laptop
    torchrun --standalone --nproc_per_node 2 -m course_pkg.train --device cpu --model simple_cnn ...

How the distributed run works:

* ``torchrun`` starts one process per device and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; the
  command line then joins the process group (NCCL on GPUs, Gloo on CPUs) and pins process ``LOCAL_RANK`` to
  GPU ``LOCAL_RANK``.
* Every process builds the same model from the same seed and draws the same data set; a
  ``DistributedSampler`` gives each process a disjoint shard of every epoch's shuffled order, so
  ``--batch-size`` (the global batch) is split into ``batch_size / world_size`` images per process.
* DistributedDataParallel averages the gradients across processes after each backward pass, so every
  process takes the same optimiser step as one process on the whole global batch would.
* Only rank 0 prints, shows a progress bar and writes the checkpoint; accuracies are summed over all ranks.
* BatchNorm is the one layer that breaks this equivalence: each process normalises with the statistics of
  its own shard. ``--sync-bn`` (CUDA only) swaps in SyncBatchNorm to use the global batch's statistics. The
  test that compares a 2-process run with a 1-process run uses ``simple_cnn``, which has GroupNorm
  (per-image statistics) and no dropout, so the two runs must agree up to float rounding.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shlex
import sys
import time
from typing import Any, NoReturn, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Subset

from ..bundled import (
    MODELS,
    accepted_kwargs,
    build_model,
    check_writable,
    load_checkpoint,
    load_train_state,
    resolve_builder,
    save_checkpoint,
    shipped_model_at,
)
from ..env import get_device, seed_everything, torch_pair_problem
from ..train import evaluate, fit
from ..train.distributed import _world
from ..train.inputs import _as_dataset

__all__ = ["main"]


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


def _parser() -> argparse.ArgumentParser:
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
_RESUME_KEYS = ("model", "attention", "kwargs", "dataset", "n_train", "n_val", "n_test", "image_size",
                "num_classes", "data_seed", "data_root", "epochs", "batch_size", "lr", "weight_decay",
                "warmup_epochs", "label_smoothing", "seed", "amp", "sync_bn", "half")


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[dict[str, Any], torch.device]:
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
    data_kwargs = _model_data_kwargs(args)
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


def _model_data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The model arguments the data set decides (classes, channels, image size)."""
    if args.dataset == "clutter":
        return {"num_classes": args.num_classes, "in_chans": 3, "img_size": args.image_size}
    if args.dataset == "digits":
        return {"num_classes": 10, "in_chans": 1, "img_size": 8}
    return {"num_classes": 10, "in_chans": 3, "img_size": 32}


def _data_note(args: argparse.Namespace) -> str:
    """What :func:`_load_data` is about to make or read, in words (printed before it starts)."""
    if args.dataset == "clutter":
        n_val = 500 if args.n_val is None else args.n_val
        return (f"clutter, {args.n_train or 4000} train, {n_val} validation and {args.n_test or 1000} test "
                f"images of {args.image_size} px, drawn now (seed {args.data_seed})")
    if args.dataset == "digits":
        return "scikit-learn's digits (8 x 8 px), split now"
    return f"CIFAR-10 from {args.data_root}" + (" (downloaded when missing)" if args.download else "")


def _load_data(args: argparse.Namespace) -> dict[str, Any]:
    """Train/val/test Datasets, their specs (how to draw them again), and the model's data arguments."""
    from ..data import load_cifar10, load_digits, make_clutter

    if args.dataset == "clutter":
        n_train = args.n_train or 4000
        n_val = 500 if args.n_val is None else args.n_val
        n_test = args.n_test or 1000
        common = {"image_size": args.image_size, "num_classes": args.num_classes}
        specs = {"train": {"n": n_train, **common, "seed": args.data_seed},
                 "val": {"n": n_val, **common, "seed": args.data_seed + 1} if n_val > 0 else None,
                 "test": {"n": n_test, **common, "seed": args.data_seed + 2}}
        sets = {k: (_as_dataset(make_clutter(**s), k) if s else None) for k, s in specs.items()}
        return {"sets": sets, "generator": "course_pkg.data:make_clutter", "specs": specs,
                "model_kwargs": {"num_classes": args.num_classes, "in_chans": 3, "img_size": args.image_size}}
    if args.dataset == "digits":
        specs = {"train": {"split": "train", "seed": args.data_seed}, "val": None,
                 "test": {"split": "test", "seed": args.data_seed}}
        sets = {k: (_as_dataset(load_digits(**s), k) if s else None) for k, s in specs.items()}
        return {"sets": sets, "generator": "course_pkg.data:load_digits", "specs": specs,
                "model_kwargs": {"num_classes": 10, "in_chans": 1, "img_size": 8}}
    specs = {"train": {"root": args.data_root, "train": True}, "val": None,
             "test": {"root": args.data_root, "train": False}}
    train = load_cifar10(args.data_root, train=True, download=args.download)
    test = load_cifar10(args.data_root, train=False, download=False)
    if args.n_train:
        train = Subset(train, range(min(args.n_train, len(train))))
    if args.n_test:
        test = Subset(test, range(min(args.n_test, len(test))))
    return {"sets": {"train": train, "val": None, "test": test}, "generator": "course_pkg.data:load_cifar10",
            "specs": specs, "model_kwargs": {"num_classes": 10, "in_chans": 3, "img_size": 32}}


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    """Run the command line; returns the run's summary (also stored as the checkpoint's ``meta``).

    Every option and the writability of ``--out`` are checked before any data is made (usage errors exit
    with status 2). With ``--out`` a checkpoint is written after every epoch (atomically), holding what
    ``--resume`` needs to continue exactly: weights, optimiser, schedule, epoch, step and random states.
    Ctrl-C stops at the end of the current step, saves, prints the command that resumes and exits 130.

    Nothing finished is lost: an existing ``--out`` (a finished model, a stopped run, any other file) is
    refused unless ``--resume`` (continue the stopped run) or ``--overwrite`` (replace it) says what to do
    with it; a second run on the same ``--out`` while one is writing it is refused; the shipped bundled
    models' files are refused. Data options that the chosen ``--dataset`` does not read are refused, as
    are ``--kwargs`` that contradict the data (``num_classes``, ``in_chans``, ``img_size``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    problem = torch_pair_problem()
    if problem:
        print(f"warning: {problem}", file=sys.stderr, flush=True)
    parser = _parser()
    args = parser.parse_args(argv)
    model_kwargs, device = _check_args(parser, args)
    kept = [a for a in argv if a != "--overwrite"]
    resume_argv = kept if "--resume" in kept else [*kept, "--resume"]
    resume_cmd = "python -m course_pkg.train " + shlex.join(resume_argv)

    lock = _OutLock(args.out) if args.out and os.environ.get("RANK", "0") == "0" else None
    if lock is not None and not lock.acquire():
        parser.error(f"--out={args.out!r} is being written by another training run right now; wait for it "
                     "to finish, or choose another --out (two runs on one file would replace each other's "
                     "work)")
    try:
        return _run(args, argv, model_kwargs, device, resume_cmd)
    finally:
        if lock is not None:
            lock.release()


class _OutLock:
    """An exclusive lock on one ``--out`` path for the length of a run (POSIX ``flock``; elsewhere none).

    The lock file lives in the temporary folder, named after the resolved path, so nothing is left next
    to the checkpoint.
    """

    def __init__(self, out: str) -> None:
        import hashlib
        import tempfile

        key = hashlib.sha256(os.path.realpath(out).encode()).hexdigest()[:16]
        self.path = os.path.join(tempfile.gettempdir(), f"course_pkg_out_{key}.lock")
        self.fh: Any = None

    def acquire(self) -> bool:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return True
        self.fh = open(self.path, "w")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            return False
        return True

    def release(self) -> None:
        if self.fh is not None:
            import fcntl

            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
            self.fh = None


def _run(args: argparse.Namespace, argv: list[str], model_kwargs: dict[str, Any], device: torch.device,
         resume_cmd: str) -> dict[str, Any]:
    """The run itself, once the options are checked and ``--out`` is locked."""
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    started_group = False
    if world_env > 1 and not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        started_group = True
    rank, world = _world()
    say = print if rank == 0 and not args.quiet else (lambda *a, **k: None)
    saved = {"any": False}
    resume_note = (f"to continue, run: {resume_cmd}" if world == 1 else
                   "to continue, run the same torchrun command with --resume added")
    try:
        resume_state = None
        if args.resume:
            resume_state = load_train_state(args.out)
            if resume_state is None:
                raise SystemExit(f"--resume: {args.out!r} holds a finished run (no training state); leave out "
                                 "--resume to train again, or choose another --out")
            old = resume_state.get("args", {})
            changed = {k: (old.get(k), getattr(args, k)) for k in _RESUME_KEYS if old.get(k) != getattr(args, k)}
            if changed:
                raise SystemExit(f"--resume: these options differ from the stopped run's (was, now): {changed}; "
                                 "resume with the same options")
        builder = MODELS.get(args.model, args.model)
        seed_everything(args.seed)
        model = build_model(args.model, model_kwargs, **_model_data_kwargs(args))
        num_params = sum(p.numel() for p in model.parameters())
        say(f"{args.model} {model_kwargs} | {num_params:,} parameters | {world} process(es) on {device}",
            flush=True)
        say(f"making the data: {_data_note(args)} ...", flush=True)
        data_start = time.perf_counter()
        data = _load_data(args)
        say(f"data ready: {len(data['sets']['train'])} train images ({time.perf_counter() - data_start:.1f} s)",
            flush=True)
        if args.sync_bn and world > 1:
            if device.type != "cuda":
                raise SystemExit("--sync-bn needs CUDA devices (SyncBatchNorm does not run on the CPU)")
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if resume_state is not None:
            load_checkpoint(args.out, model)
            say(f"resuming {args.out} after epoch {resume_state['epoch']}"
                + (f", step {resume_state['step']}" if resume_state["step"] else ""))
        kwargs_record = {**{k: v for k, v in data["model_kwargs"].items()
                            if k in accepted_kwargs(builder, data["model_kwargs"])}, **model_kwargs}
        run_args = {k: getattr(args, k) for k in _RESUME_KEYS}

        def report(r: dict[str, Any]) -> None:
            val = f" val_acc {r['val_acc']:.4f}" if r["val_acc"] is not None else ""
            say(f"epoch {r['epoch']}/{args.epochs} train_loss {r['train_loss']:.4f} "
                f"train_acc {r['train_acc']:.4f}{val} ({r['time_s']:.1f} s)")

        def save_state(state: dict[str, Any]) -> None:
            if not args.out or rank != 0:
                return
            meta = {"builder": builder, "kwargs": kwargs_record, "dataset": args.dataset, "complete": False,
                    "epoch": state["epoch"], "step": state["step"], "command": resume_cmd}
            save_checkpoint(args.out, model, meta, train_state={**state, "args": run_args})
            saved["any"] = True

        start = time.perf_counter()
        history = fit(model, data["sets"]["train"], data["sets"]["val"], epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
                      device=device, seed=args.seed, amp=args.amp, progress=not args.no_progress,
                      num_workers=args.num_workers, callback=report, save_state=save_state,
                      resume_state=resume_state, interrupt_note=False)
        if history.interrupted:
            raise KeyboardInterrupt
        train_time = time.perf_counter() - start
        if isinstance(model, nn.Module) and args.sync_bn and world > 1:
            model = _revert_sync_bn(model)
        if args.half:  # score the weights exactly as they are stored
            model.load_state_dict({k: v.half() if v.is_floating_point() else v
                                   for k, v in model.state_dict().items()})
        test_acc = evaluate(model, data["sets"]["test"], device=device)
        result: dict[str, Any] = {
            "builder": builder,
            "kwargs": kwargs_record,
            "dataset": args.dataset,
            "train_data": {"generator": data["generator"], "kwargs": data["specs"]["train"]},
            "val_data": ({"generator": data["generator"], "kwargs": data["specs"]["val"]}
                         if data["specs"]["val"] else None),
            "test_data": {"generator": data["generator"], "kwargs": data["specs"]["test"]},
            "seed": args.seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
            "weight_decay": args.weight_decay, "amp": args.amp,
            "command": "python -m course_pkg.train " + shlex.join([a for a in argv
                                                                  if a not in ("--resume", "--overwrite")]),
            "test_accuracy": test_acc, "num_params": num_params, "train_time_s": round(train_time, 1),
            "world_size": world, "device": device.type, "torch": str(torch.__version__),
            "history": history.records,
        }
        if args.resume:
            result["resumed"] = True
        say(f"test accuracy {test_acc:.4f} ({len(data['sets']['test'])} images) | training {train_time:.1f} s")
        if args.out and rank == 0:
            save_checkpoint(args.out, model, result, dtype=torch.float16 if args.half else None)
            say(f"saved {args.out}")
        return result
    except KeyboardInterrupt:
        if rank == 0:
            if saved["any"] or (args.resume and args.out):
                print(f"interrupted: the finished work is saved in {args.out}; {resume_note}", file=sys.stderr)
            elif args.out:
                print("interrupted before the first epoch ended: nothing was saved", file=sys.stderr)
            else:
                print("interrupted: nothing was saved (no --out); add --out PATH to keep a checkpoint",
                      file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if started_group:
            dist.destroy_process_group()


def _revert_sync_bn(module: nn.Module) -> nn.Module:
    """Swap SyncBatchNorm back to BatchNorm2d so the saved model builds without a process group."""
    out = module
    if isinstance(module, nn.SyncBatchNorm):
        out = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        out.load_state_dict(module.state_dict())
    for name, child in module.named_children():
        out.add_module(name, _revert_sync_bn(child))
    return out


if __name__ == "__main__":
    main()
