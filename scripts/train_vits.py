"""Train the small Vision Transformers that ship with course_pkg and add them to the manifest.

Three groups, each trained with ``course_pkg.train.fit`` from a fixed seed:

* ``clutter_vit_p4``, ``clutter_vit_p8``, ``clutter_vit_p16``: the same ViT on the same clutter images with
  the same budget, only the patch size changes (more, smaller patches: more tokens and compute, finer
  detail).
* ``clutter_vit_h1``, ``clutter_vit_h2``, ``clutter_vit_h4``, ``clutter_vit_h8``: the same width (64) at patch
  size 8, only the number of heads changes (64-, 32-, 16- and 8-channel heads). ``clutter_vit_h4`` has exactly
  the settings of ``clutter_vit_p8``, so it is that model (one training, one file, two manifest entries).
* ``digits_vit``: a ViT on scikit-learn's 8 x 8 digits (2 x 2 patches, a 4 x 4 grid of tokens).

Each model's weights go to ``course_pkg/checkpoints/<name>.pt`` (stored in float16 to keep the package small;
the accuracy is measured with the stored weights) and an entry with the exact command, the data, the
training settings and the measured held-out accuracy goes to ``manifest.json`` (``update_manifest``).

Usage::

    python scripts/train_vits.py                         # all models, one after the other
    python scripts/train_vits.py --only digits_vit       # one model (repeat --only for more)
    python scripts/train_vits.py --list                  # the models and their settings

Runs are repeatable on one machine: the seed fixes the initialisation, the data, the shuffling and the
augmentation; ``--threads`` (default 1) is recorded because the thread count changes float rounding.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from course_pkg.checkpoint import save_checkpoint  # noqa: E402
from course_pkg.checkpoint_manifest import CHECKPOINT_DIR, remove_from_manifest, update_manifest  # noqa: E402
from course_pkg.data import load_digits, make_clutter  # noqa: E402
from course_pkg.datasets import ImageDataset  # noqa: E402
from course_pkg.env import seed_everything  # noqa: E402
from course_pkg.train import evaluate, fit  # noqa: E402
from course_pkg.vit import VisionTransformer  # noqa: E402

BUILDER = "course_pkg.vit:VisionTransformer"
CLUTTER_SIZE = 32
# 32-px images with 1 to 3 distractors: a ViT trained from scratch on a few thousand images learns this within
# the budget; with the default 3 to 6 distractors it stays near chance for longer (ViTs need more data than
# CNNs)
CLUTTER_TRAIN = {"n": 8000, "image_size": CLUTTER_SIZE, "num_classes": 6, "seed": 0, "distractors": [1, 3]}
CLUTTER_TEST = {"n": 1000, "image_size": CLUTTER_SIZE, "num_classes": 6, "seed": 2, "distractors": [1, 3]}
CLUTTER_VIT = dict(img_size=CLUTTER_SIZE, in_chans=3, num_classes=6, embed_dim=64, depth=4, mlp_ratio=2.0)
CLUTTER_FIT = dict(epochs=25, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_epochs=1.0)


def random_shift(x: torch.Tensor) -> torch.Tensor:
    """Augmentation: roll a (C, H, W) image by -1, 0 or +1 pixel along each axis (uses torch's global RNG)."""
    dy, dx = torch.randint(-1, 2, (2,)).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(1, 2))


AUGMENTATIONS = {"none": None, "shift1": random_shift}

RUNS: dict[str, dict[str, Any]] = {
    **{f"clutter_vit_p{p}": dict(group="patch_size", dataset="clutter",
                                 kwargs={**CLUTTER_VIT, "patch_size": p, "num_heads": 4},
                                 fit=CLUTTER_FIT, augment="none")
       for p in (4, 8, 16)},
    **{f"clutter_vit_h{h}": dict(group="num_heads", dataset="clutter",
                                 kwargs={**CLUTTER_VIT, "patch_size": 8, "num_heads": h},
                                 fit=CLUTTER_FIT, augment="none")
       for h in (1, 2, 4, 8)},
    "digits_vit": dict(group="digits", dataset="digits",
                       kwargs=dict(img_size=8, patch_size=2, in_chans=1, num_classes=10, embed_dim=64,
                                   depth=4, num_heads=4, mlp_ratio=2.0, drop_rate=0.2),
                       fit=dict(epochs=100, batch_size=64, lr=2e-3, weight_decay=0.05, warmup_epochs=5.0,
                                label_smoothing=0.1),
                       augment="none"),
}


def same_runs(name: str) -> list[str]:
    """The runs with exactly the settings of ``name`` (``clutter_vit_p8`` and ``clutter_vit_h4``), in order.

    They are trained once, under the first name, and share its weights file.
    """
    def settings(run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if k != "group"}

    return [other for other, run in RUNS.items() if settings(run) == settings(RUNS[name])]


def data_specs(dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train spec, test spec), each ``{"generator": "module:function", "kwargs": {...}}``: the data again."""
    if dataset == "clutter":
        return ({"generator": "course_pkg.data:make_clutter", "kwargs": CLUTTER_TRAIN},
                {"generator": "course_pkg.data:make_clutter", "kwargs": CLUTTER_TEST})
    return ({"generator": "course_pkg.data:load_digits", "kwargs": {"split": "train", "seed": 0}},
            {"generator": "course_pkg.data:load_digits", "kwargs": {"split": "test", "seed": 0}})


def draw(spec: dict[str, Any]) -> Any:
    generator = {"course_pkg.data:make_clutter": make_clutter, "course_pkg.data:load_digits": load_digits}
    return generator[spec["generator"]](**spec["kwargs"])


def train_one(name: str, seed: int, threads: int, progress: bool) -> list[dict[str, Any]]:
    """Train ``name``, save its float16 weights, add it (and any identical run) to the manifest."""
    names = same_runs(name)
    name = names[0]
    run = RUNS[name]
    train_spec, test_spec = data_specs(run["dataset"])
    train, test = draw(train_spec), draw(test_spec)
    seed_everything(seed)
    model = VisionTransformer(**run["kwargs"])
    num_params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] {num_params:,} parameters, {len(train.labels)} training images, {run['fit']}",
          flush=True)

    def report(r: dict[str, Any]) -> None:
        print(f"[{name}] epoch {r['epoch']}/{run['fit']['epochs']} loss {r['train_loss']:.4f} "
              f"train_acc {r['train_acc']:.4f} ({r['time_s']:.1f} s)", flush=True)

    start = time.perf_counter()
    dataset = ImageDataset(train.images, train.labels, transform=AUGMENTATIONS[run["augment"]])
    history = fit(model, dataset, epochs=run["fit"]["epochs"], batch_size=run["fit"]["batch_size"],
                  lr=run["fit"]["lr"], weight_decay=run["fit"]["weight_decay"],
                  warmup_epochs=run["fit"]["warmup_epochs"],
                  label_smoothing=run["fit"].get("label_smoothing", 0.0),
                  device="cpu", seed=seed, amp="off", progress=progress, callback=report)
    train_time = time.perf_counter() - start
    # score exactly the weights that are stored: rounded to float16
    model.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    accuracy = evaluate(model, test, device="cpu")
    file = f"{name}.pt"
    entry: dict[str, Any] = {
        "name": name, "file": file, "builder": BUILDER, "kwargs": run["kwargs"], "dataset": run["dataset"],
        "group": run["group"], "train_data": train_spec, "test_data": test_spec, "augment": run["augment"],
        "seed": seed, **run["fit"], "optimizer": "AdamW, cosine schedule (course_pkg.train.fit)",
        "command": f"python scripts/train_vits.py --only {name} --seed {seed} --threads {threads}",
        "test_accuracy": accuracy, "num_params": num_params, "weights_dtype": "float16",
        "train_time_s": round(train_time, 1), "threads": threads, "device": "cpu",
        "torch": str(torch.__version__),
        "final_train_loss": round(history.last["train_loss"], 4),
        "final_train_acc": round(history.last["train_acc"], 4),
    }
    for other in names:   # their old hash would refuse the new file; save_checkpoint refuses a listed file
        remove_from_manifest(other)
    save_checkpoint(CHECKPOINT_DIR / file, model, entry, dtype=torch.float16)
    entries = [entry if other == name else
               {**entry, "name": other, "group": RUNS[other]["group"], "same_as": name} for other in names]
    for e in entries:
        update_manifest(e)
    size_kb = (CHECKPOINT_DIR / file).stat().st_size / 1024
    print(f"[{', '.join(names)}] held-out accuracy {accuracy:.4f} ({len(test.labels)} images) | "
          f"{size_kb:.0f} KB | training {train_time:.0f} s", flush=True)
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(RUNS),
                        help="train only this model (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (recorded in the manifest)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per model")
    parser.add_argument("--list", action="store_true", help="print the runs and exit")
    args = parser.parse_args()
    if args.list:
        print(json.dumps(RUNS, indent=1, default=str))
        return
    torch.set_num_threads(args.threads)
    done: set[str] = set()
    for name in args.only or list(RUNS):
        if name not in done:
            done.update(e["name"] for e in train_one(name, args.seed, args.threads, args.progress))


if __name__ == "__main__":
    main()
