"""Train the bundled texture CNNs of chapters 4 and 5: plain, SE and CBAM ``resnet_small``, several seeds each.

``--task objects`` (the control) trains on :func:`course_pkg.textures.make_textures` (a cat-fur shape
among textured distractors on grass, gravel or brick; the label is the fur object's shape, the same target
in every image). ``--task cued`` trains on :func:`course_pkg.cued_textures.make_cued_textures` (three tinted
textured shapes and a small cue that names the one whose shape is the label: the useful channels change
from image to image). ``--task uncued`` uses the same kind of images with the cue meaning nothing (always
the fur object). Every model sees the same images with the
same budget (epochs, batch, learning rate with a cosine schedule); only the attention module and the
seed (initialisation and shuffling) differ, so the spread over seeds measures what a seed does and the
difference of means what attention does.

Each model is saved (float16, under 100 KB) to ``course_pkg/checkpoints/<task prefix>_resnet_small_<kind>_s<seed>.pt``,
scored again on the CPU from the saved file, and entered in ``manifest.json`` with the exact command that
makes it and its per-epoch validation curve. When a kind has all its seeds, every one of its entries gets
``seeds_summary`` (mean and sd of test accuracy over the seeds) and ``<prefix>_training.json`` next to the
manifest collects the curves and summaries for the chapters to plot without training.

    python scripts/train_textures.py                    # the bundled control: 3 kinds x 3 seeds
    python scripts/train_textures.py --task cued --epochs 12 --seeds 0 1 2 3 4 --all-seeds 0 1 2 3 4
    python scripts/train_textures.py --task uncued --epochs 12 --seeds 0 --all-seeds 0
    python scripts/train_textures.py --only se --seeds 1
    python scripts/train_textures.py --distractor-textures tissue wood grass gravel brick --out-dir /tmp/wood
    python scripts/train_textures.py --epochs 1 --n-train 64 --n-val 32 --n-test 32 --out-dir /tmp/tx  # smoke run
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_pkg.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from course_pkg.checkpoint_manifest import CHECKPOINT_DIR, manifest, remove_from_manifest, update_manifest  # noqa: E402
from course_pkg.cued_textures import make_cued_textures  # noqa: E402
from course_pkg.env import seed_everything  # noqa: E402
from course_pkg.resnet import resnet_small  # noqa: E402
from course_pkg.textures import ALL_DISTRACTOR_TEXTURES, TEXTURE_CLASSES, make_textures  # noqa: E402
from course_pkg.train import evaluate, fit  # noqa: E402

KINDS = ("none", "se", "cbam")
#: task -> (data generator, its import path, manifest name prefix, summary file, extra generator kwargs)
TASKS: dict[str, tuple[Any, str, str, str, dict[str, Any]]] = {
    "objects": (make_textures, "course_pkg.textures:make_textures", "textures", "textures_training.json", {}),
    "cued": (make_cued_textures, "course_pkg.cued_textures:make_cued_textures", "cued",
             "cued_training.json", {}),
    "uncued": (make_cued_textures, "course_pkg.cued_textures:make_cued_textures", "uncued",
               "uncued_training.json", {"target": "fur"}),
}


def entry_name(kind: str, seed: int, task: str = "objects") -> str:
    """The manifest name of one trained model, e.g. ``textures_resnet_small_cbam_s1``
    (``cued_resnet_small_cbam_s1`` on the cued task)."""
    return f"{TASKS[task][2]}_resnet_small_{kind}_s{seed}"


def data_specs(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """``make_textures`` keyword arguments of the train, validation and test sets."""
    common: dict[str, Any] = {"image_size": args.image_size, **TASKS[args.task][4]}
    if args.distractor_textures and args.task == "objects":   # only when not the default
        common["distractor_textures"] = list(args.distractor_textures)
    return {"train": {"n": args.n_train, **common, "seed": args.data_seed},
            "val": {"n": args.n_val, **common, "seed": args.data_seed + 1},
            "test": {"n": args.n_test, **common, "seed": args.data_seed + 2}}


def command_for(kind: str, seed: int, args: argparse.Namespace) -> str:
    """The command line that trains exactly this one model into the bundled folder."""
    words = ["python", "scripts/train_textures.py", *(["--task", args.task] if args.task != "objects" else []),
             "--only", kind, "--seeds", str(seed),
             "--n-train", str(args.n_train), "--n-val", str(args.n_val), "--n-test", str(args.n_test),
             "--image-size", str(args.image_size), "--data-seed", str(args.data_seed),
             "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
             "--weight-decay", str(args.weight_decay), "--warmup-epochs", str(args.warmup_epochs),
             "--widths", *[str(w) for w in args.widths]]
    if args.distractor_textures:
        words += ["--distractor-textures", *args.distractor_textures]
    return shlex.join(words)


def train_one(kind: str, seed: int, args: argparse.Namespace, sets: dict[str, Any]) -> dict[str, Any]:
    """Train one model, save it, score the saved file on the CPU, add it to the manifest; returns its entry."""
    name = entry_name(kind, seed, args.task)
    path = args.out_dir / f"{name}.pt"
    attention = None if kind == "none" else kind
    kwargs = {"num_classes": len(TEXTURE_CLASSES), "in_chans": 3, "attention": attention,
              "widths": list(args.widths)}
    seed_everything(seed)
    model = resnet_small(**kwargs)

    def say(r: dict[str, Any]) -> None:
        print(f"  {name} epoch {r['epoch']}/{args.epochs} train_acc {r['train_acc']:.3f} "
              f"val_acc {r['val_acc']:.3f} ({r['time_s']:.0f} s)", flush=True)

    start = time.perf_counter()
    history = fit(model, sets["train"], sets["val"], epochs=args.epochs, batch_size=args.batch_size,
                  lr=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                  device=args.device, seed=seed, progress=False, callback=say)
    train_time = time.perf_counter() - start
    specs = data_specs(args)
    meta = {"builder": "course_pkg.resnet:resnet_small", "kwargs": kwargs, "seed": seed,
            "train_data": {"generator": TASKS[args.task][1], "kwargs": specs["train"]}}
    remove_from_manifest(name, args.out_dir)   # its old hash would refuse the new file
    save_checkpoint(path, model, meta, dtype=torch.float16)
    fresh = resnet_small(**kwargs)                     # score the stored (float16) weights on the CPU
    load_checkpoint(path, fresh)
    accuracy = evaluate(fresh, sets["test"], device="cpu")
    n_test = len(sets["test"].labels)
    entry = {
        "name": name,
        "file": path.name,
        "description": f"resnet_small with attention={attention!r} trained on "
                       + {"objects": "the texture objects", "cued": "the cued textures",
                          "uncued": "the cued textures without the cue's meaning"}[args.task]
                       + f" ({args.image_size} px, label = shape of the "
                       + {"objects": "cat-fur object", "cued": "object the cue names",
                          "uncued": "fur object"}[args.task]
                       + f", 4 classes), seed {seed}",
        "builder": "course_pkg.resnet:resnet_small",
        "kwargs": kwargs,
        "dataset": "textures",
        "train_data": {"generator": TASKS[args.task][1], "kwargs": specs["train"]},
        "val_data": {"generator": TASKS[args.task][1], "kwargs": specs["val"]},
        "test_data": {"generator": TASKS[args.task][1], "kwargs": specs["test"]},
        "seed": seed, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
        "weight_decay": args.weight_decay, "warmup_epochs": args.warmup_epochs, "schedule": "cosine",
        "num_params": sum(p.numel() for p in model.parameters()),
        "train_time_s": round(train_time, 1), "device": str(torch.device(args.device or "cpu").type),
        "torch": str(torch.__version__), "dtype": "float16",
        "command": command_for(kind, seed, args),
        "test_accuracy": accuracy,
        "test_correct": round(accuracy * n_test),
        "test_n": n_test,
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                    for r in history.records],
    }
    update_manifest(entry, args.out_dir)
    return entry


def summarise(out_dir: Path, seeds: list[int], task: str = "objects") -> dict[str, Any]:
    """Mean and sd of test accuracy per kind over those of ``seeds`` that are trained (``seeds_missing``
    lists the others), written into each of their manifest entries (``seeds_summary``) and into
    ``textures_training.json`` (``cued_training.json``) with the curves. The sd is None for a single seed."""
    entries = {e["name"]: e for e in manifest(out_dir)}
    summary: dict[str, Any] = {"kinds": {}, "curves": {}}
    for kind in KINDS:
        done = [s for s in seeds if entry_name(kind, s, task) in entries]
        if not done:
            continue
        names = [entry_name(kind, s, task) for s in done]
        accs = [entries[n]["test_accuracy"] for n in names]
        stats = {"mean": statistics.fmean(accs), "sd": statistics.stdev(accs) if len(accs) > 1 else None,
                 "n_seeds": len(accs), "seeds": done, "seeds_missing": [s for s in seeds if s not in done],
                 "test_accuracy": accs, "names": names, "test_n": entries[names[0]]["test_n"]}
        summary["kinds"][kind] = stats
        for n in names:
            summary["curves"][n] = {"epoch": [r["epoch"] for r in entries[n]["history"]],
                                    "val_acc": [r["val_acc"] for r in entries[n]["history"]],
                                    "train_acc": [r["train_acc"] for r in entries[n]["history"]],
                                    "lr": [r["lr"] for r in entries[n]["history"]]}
            update_manifest({**entries[n], "seeds_summary": stats}, out_dir)
    if summary["kinds"]:
        first = entries[summary["kinds"][next(iter(summary["kinds"]))]["names"][0]]
        summary["data"] = {k: first[k] for k in ("train_data", "val_data", "test_data")}
        summary["budget"] = {k: first[k] for k in ("epochs", "batch_size", "lr", "weight_decay",
                                                   "warmup_epochs", "schedule")}
        (out_dir / TASKS[task][3]).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=tuple(TASKS), default="objects",
                   help="objects: the fur is always the target (the control); cued: a cue names the object "
                        "to read (course_pkg.cued_textures); uncued: the same images, always the fur object")
    p.add_argument("--only", choices=KINDS, action="append", help="train only this kind (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--n-train", type=int, default=8000)
    p.add_argument("--n-val", type=int, default=400)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--widths", type=int, nargs=3, default=[8, 16, 32],
                   help="resnet_small's stage widths (half the default: the set trains on a shared CPU)")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--distractor-textures", nargs="+", choices=ALL_DISTRACTOR_TEXTURES, default=None,
                   help="textures of the distractors (default: make_textures' own, without the brown wood; "
                        "add wood to make the fur's colour useless, so only its texture finds it)")
    p.add_argument("--epochs", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1: on a loaded, shared CPU two threads wait on each other)")
    p.add_argument("--device", default=None, help="default: the CPU (the bundled set was trained there)")
    p.add_argument("--all-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="the seeds the summary (mean +- sd) is taken over; kinds lacking one are left out")
    p.add_argument("--out-dir", type=Path, default=CHECKPOINT_DIR)
    p.add_argument("--summary-only", action="store_true",
                   help="train nothing: recompute the seeds' summary from the manifest (after parallel runs)")
    args = p.parse_args()
    for name in ("n_train", "n_val", "n_test", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    if args.task != "objects" and args.distractor_textures:
        raise SystemExit("--distractor-textures applies to --task objects only; the cued task always "
                         "fills its objects with fur, wood and tissue")
    if any(s < 0 for s in args.seeds):
        raise SystemExit(f"--seeds={args.seeds} must be non-negative integers")
    args.device = args.device or "cpu"
    if args.threads < 1:
        raise SystemExit(f"--threads={args.threads} must be a positive integer")
    torch.set_num_threads(args.threads)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.summary_only:
        args.only, args.seeds = [], []
    specs = data_specs(args) if args.seeds else {}
    sets = {k: TASKS[args.task][0](**v) for k, v in specs.items()}
    if sets:
        print(f"data: {', '.join(f'{k} {len(v.labels)}' for k, v in sets.items())} images of "
              f"{args.image_size} px ({time.perf_counter() - start:.0f} s)", flush=True)
    for seed in args.seeds:            # seed-major: the three kinds of seed 0 first
        for kind in args.only or list(KINDS):
            e = train_one(kind, seed, args, sets)
            print(f"{e['name']}: test accuracy {e['test_accuracy']:.4f} ({e['test_correct']}/{e['test_n']}), "
                  f"trained in {e['train_time_s']:.0f} s",
                  flush=True)
    summary = summarise(args.out_dir, args.all_seeds, args.task)
    for kind, s in summary["kinds"].items():
        sd = "n/a" if s["sd"] is None else f"{s['sd']:.4f}"
        print(f"{kind}: test accuracy {s['mean']:.4f} +- {sd} over seeds {s['seeds']}")
    print(f"done in {time.perf_counter() - start:.0f} s; torch {torch.__version__}")


if __name__ == "__main__":
    cli()
