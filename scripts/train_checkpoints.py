"""Train the bundled CNN checkpoints: plain, SE and CBAM ``resnet_small`` on the clutter data.

All three see the same data (same generator seeds) with the same budget (epochs, batch, learning rate,
seed), so their accuracies compare attention modules, nothing else. Each run is one call of the training
command line, recorded word for word in the manifest; the held-out accuracy is measured again on the CPU
from the saved file, so ``tests/test_bundled.py`` can reproduce it exactly.

    python scripts/train_checkpoints.py                 # the bundled set (several minutes on a CPU)
    python scripts/train_checkpoints.py --only se       # one of them
    python scripts/train_checkpoints.py --epochs 1 --n-train 64 --out-dir /tmp/ckpt   # a quick smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_pkg.checkpoint import load_checkpoint  # noqa: E402
from course_pkg.checkpoint_manifest import CHECKPOINT_DIR, remove_from_manifest, update_manifest  # noqa: E402
from course_pkg.cli.train import main  # noqa: E402
from course_pkg.model_registry import build_model  # noqa: E402
from course_pkg.train import evaluate  # noqa: E402

ATTENTIONS = ("none", "se", "cbam")


def train_one(attention: str, args: argparse.Namespace, out_dir: Path) -> dict:
    """Train one model through the command line, score the saved file on the CPU, add it to the manifest."""
    name = f"clutter_resnet_small_{attention}"
    path = out_dir / f"{name}.pt"
    argv = ["--model", "resnet_small", "--attention", attention, "--dataset", "clutter",
            "--n-train", str(args.n_train), "--n-val", str(args.n_val), "--n-test", str(args.n_test),
            "--image-size", str(args.image_size), "--num-classes", "6", "--data-seed", str(args.data_seed),
            "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--weight-decay", str(args.weight_decay), "--seed", str(args.seed), "--out", str(path),
            "--overwrite"]   # retraining replaces the file on purpose
    if args.device:
        argv += ["--device", args.device]
    remove_from_manifest(name, out_dir)   # the CLI refuses to write over a listed (shipped) file
    result = main(argv)
    # the recorded accuracy is the saved file's, scored on the CPU, as the test will score it
    model = build_model(result["builder"], result["kwargs"])
    load_checkpoint(path, model)
    spec = result["test_data"]
    from course_pkg.data import make_clutter
    test = make_clutter(**spec["kwargs"])
    accuracy = evaluate(model, test, device="cpu")
    entry = {
        "name": name,
        "file": path.name,
        "description": f"resnet_small with attention={attention!r} trained on the clutter shapes "
                       f"({args.image_size} px, 6 classes)",
        **{k: result[k] for k in ("builder", "kwargs", "dataset", "train_data", "val_data", "test_data", "seed",
                                  "epochs", "batch_size", "lr", "weight_decay", "num_params", "train_time_s",
                                  "device", "torch")},
        "command": result["command"].replace(str(path), f"course_pkg/checkpoints/{path.name}")
        if out_dir == CHECKPOINT_DIR else result["command"],
        "test_accuracy": accuracy,
        "test_correct": round(accuracy * len(test.labels)),
        "test_n": len(test.labels),
        "test_accuracy_at_training": result["test_accuracy"],
        "history": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                    for r in result["history"]],
    }
    entries = update_manifest(entry, out_dir)
    return next(e for e in entries if e["name"] == name)


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=ATTENTIONS, action="append", help="train only this one (repeatable)")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="default: the best available")
    p.add_argument("--out-dir", type=Path, default=CHECKPOINT_DIR)
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    todo = args.only or list(ATTENTIONS)
    start = time.perf_counter()
    for attention in tqdm(todo, desc="checkpoints", unit="model"):
        entry = train_one(attention, args, args.out_dir)
        print(f"{entry['name']}: test accuracy {entry['test_accuracy']:.4f} ({entry['test_correct']}/"
              f"{entry['test_n']}), {entry['num_params']:,} parameters, {entry['file_bytes'] / 1024:.0f} KiB, "
              f"trained in {entry['train_time_s']:.0f} s", flush=True)
    print(f"done in {time.perf_counter() - start:.0f} s; torch {torch.__version__}; manifest: "
          f"{args.out_dir / 'manifest.json'}")


if __name__ == "__main__":
    cli()
