"""The training command line: ``python -m course_pkg.train`` (or ``python -m course_pkg.cli.train``).

This module runs it (data, model, the lock on ``--out``, the ``fit`` call, what it prints); its options
and their checks are :mod:`course_pkg.cli.train_options`.

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
import os
import shlex
import sys
import time
from typing import Any, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Subset

from ..checkpoint import load_checkpoint, load_train_state, save_checkpoint
from ..env import seed_everything, torch_pair_problem
from ..model_registry import MODELS, accepted_kwargs, build_model
from ..train import evaluate, fit
from ..train.distributed import _world
from ..train.inputs import _as_dataset
from .train_options import RESUME_KEYS, build_parser, check_args, model_data_kwargs

__all__ = ["main"]


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
    parser = build_parser()
    args = parser.parse_args(argv)
    model_kwargs, device = check_args(parser, args)
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
            changed = {k: (old.get(k), getattr(args, k)) for k in RESUME_KEYS if old.get(k) != getattr(args, k)}
            if changed:
                raise SystemExit(f"--resume: these options differ from the stopped run's (was, now): {changed}; "
                                 "resume with the same options")
        builder = MODELS.get(args.model, args.model)
        seed_everything(args.seed)
        model = build_model(args.model, model_kwargs, **model_data_kwargs(args))
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
        run_args = {k: getattr(args, k) for k in RESUME_KEYS}

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
