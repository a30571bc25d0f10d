"""Measure the bundled texture CNNs: accuracy over seeds, pointing game, SE weights, ablations.

Both tasks (``--task objects``, the control, and ``--task cued``, the selection task) get what
:func:`measure_gates` measures: the three test-time ablations of every gate (every gate 1, its per-image
mean, its mean over held-out images: see :mod:`course_pkg.gate_ablation`), the share of the channel gates'
variance explained by the label and by the background (or cue), and the pointing game per seed with how
saturated the maps are. The control also gets the older measurements below and ``recalibration`` (an
object of every texture on grass against grass alone).

Reads the models :mod:`scripts.train_textures` bundled and writes
``course_pkg/checkpoints/textures_measurements.json`` for chapters 4 and 5 to load (no training, no
measuring in the chapters):

* ``accuracy``: held-out accuracy of every model, and mean +- sd over seeds per kind;
* ``pointing``: the pointing game (course tolerance, chance of random maps scored the same way) on the
  held-out images, for CBAM's spatial map of every layer, for the plain network's feature energy (mean
  squared activation over channels) of every layer, for a random map and for a centre prior; per seed
  and mean +- sd over seeds;
* ``shift``: accuracy on test sets with distractors the networks never saw (brown wood, as brown as the
  fur), and whether CBAM's last spatial map and the plain network's energy then peak on the fur or on
  a distractor: did training teach the networks the fur's texture, or its colour?

    python scripts/measure_textures.py
    python scripts/measure_textures.py --task cued     # the cued task's models -> cued_measurements.json
    python scripts/measure_textures.py --budget-check /tmp/long   # after train_textures.py --epochs 48 --out-dir /tmp/long
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_pkg import bundled  # noqa: E402
from course_pkg.attention_maps import record_attention  # noqa: E402
from course_pkg.checkpoint_manifest import CHECKPOINT_DIR, get_entry, manifest  # noqa: E402
from course_pkg.gate_ablation import ablate_gates, gate_means  # noqa: E402
from course_pkg.gate_stats import map_saturation, variance_explained  # noqa: E402
from course_pkg.pointing_game import POINTING_TOLERANCE, centre_map, pointing_game  # noqa: E402
from course_pkg.textures import ALL_DISTRACTOR_TEXTURES, TEXTURE_NAMES, cat_on_grass, make_textures  # noqa: E402
from course_pkg.train import evaluate  # noqa: E402

KINDS = ("none", "se", "cbam")
OUT_FILE = "textures_measurements.json"
#: task -> (manifest name prefix, output file)
TASKS = {"objects": ("textures", OUT_FILE), "cued": ("cued", "cued_measurements.json")}


def _names(kind: str, directory: Path, task: str = "objects") -> list[str]:
    return [e["name"] for e in bundled.seed_runs(f"{TASKS[task][0]}_resnet_small_{kind}_s", directory)]


def _mean_sd(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values), "values": values}


@torch.no_grad()
def stage_outputs(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each stage's output ``{"layer1": (B, C1, H, W), ...}`` (one forward pass, attention maps kept)."""
    out: dict[str, torch.Tensor] = {}
    hooks = [getattr(model, f"layer{i + 1}").register_forward_hook(
        lambda _m, _i, o, key=f"layer{i + 1}": out.__setitem__(key, o.detach()))
        for i in range(model.num_stages)]
    try:
        model(images)
    finally:
        for h in hooks:
            h.remove()
    return out


def _pointing_summary(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    return {"score": _mean_sd([r["score"] for r in per_seed]), "chance": per_seed[0]["chance"],
            "area": per_seed[0]["area"], "n": per_seed[0]["n"], "map_size": per_seed[0]["map_size"],
            "per_seed": per_seed}


def measure(directory: Path) -> dict[str, Any]:
    """Every measurement of the module docstring on the texture models bundled in ``directory``."""

    def load(name: str) -> nn.Module:
        return bundled.load_bundled(name, device="cpu", directory=directory)

    torch.manual_seed(0)
    result: dict[str, Any] = {"tolerance": POINTING_TOLERANCE, "accuracy": {}, "pointing": {}}
    names = {k: _names(k, directory) for k in KINDS}
    if not all(names.values()):
        raise SystemExit(f"train the texture models first (found {names})")
    test = bundled.bundled_test_data(names["none"][0], directory)
    entry = get_entry(names["none"][0], directory)
    result["test_data"] = entry["test_data"]
    images, masks = test.images, test.masks
    n, size = images.shape[0], images.shape[-1]

    for kind in KINDS:
        accs = [evaluate(load(nm), test, device="cpu") for nm in names[kind]]
        result["accuracy"][kind] = {**_mean_sd(accs), "names": names[kind]}

    # pointing game: CBAM spatial maps, plain feature energy, random, centre prior
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(label: str, maps: torch.Tensor) -> None:
        r = pointing_game(maps, masks)
        rows.setdefault(label, []).append({**r, "map_size": list(maps.shape[1:])})

    for nm in names["cbam"]:
        model = load(nm)
        for name, m in _record(model, images)["spatial"].items():
            add(f"cbam {name.split('.')[0]} spatial map", m)
        feats = stage_outputs(model, images)
        add("cbam layer3 feature energy", feats["layer3"].pow(2).mean(dim=1))
    for nm in names["none"]:
        feats = stage_outputs(load(nm), images)
        for key, f in feats.items():
            add(f"plain {key} feature energy", f.pow(2).mean(dim=1))
    last = rows["plain layer3 feature energy"][0]["map_size"]
    g = torch.Generator().manual_seed(0)
    for _ in range(len(names["none"])):
        add("random map", torch.rand(n, *last, generator=g))
    add("centre prior", centre_map(*last).expand(n, *last))
    result["pointing"] = {k: _pointing_summary(v) for k, v in rows.items()}

    result["shift"] = measure_shift(names, load, n, size, test_seed=int(result["test_data"]["kwargs"]["seed"]))
    result["reference_data"] = entry["val_data"]
    intact = {k: result["accuracy"][k]["values"] for k in KINDS}
    result.update(measure_gates(names, load, test, _held_out(entry), intact))
    result["recalibration"] = measure_recalibration(names, load, size)
    return result


#: Test sets whose distractors the networks never saw in training: wood from ``coffee`` is as brown
#: as the cat's fur, so only a network that finds the fur by its *texture* still finds it.
SHIFTS: dict[str, dict[str, Any]] = {
    "wood among the distractors": {"distractor_textures": list(ALL_DISTRACTOR_TEXTURES)},
    "every distractor wood": {"distractor_textures": ["wood"]},
}


def measure_shift(names: dict[str, list[str]], load: Callable[[str], nn.Module], n: int, size: int,
                  test_seed: int) -> dict[str, Any]:
    """Accuracy of every model on :data:`SHIFTS`, and where CBAM's last spatial map and the plain network's
    last-stage energy peak there: on the fur (``on_fur``) or on a distractor (``on_distractors``)."""
    out: dict[str, Any] = {}
    for label, kwargs in SHIFTS.items():
        data = make_textures(n, size, test_seed, **kwargs)
        row: dict[str, Any] = {"make_textures": {"n": n, "image_size": size, "seed": test_seed, **kwargs},
                               "accuracy": {}, "pointing": {}}
        for kind in KINDS:
            row["accuracy"][kind] = _mean_sd([evaluate(load(nm), data, device="cpu") for nm in names[kind]])
        maps: dict[str, list[torch.Tensor]] = {"cbam layer3 spatial map": [], "plain layer3 feature energy": []}
        for nm in names["cbam"]:
            maps["cbam layer3 spatial map"].append(list(_record(load(nm), data.images)["spatial"].values())[-1])
        for nm in names["none"]:
            maps["plain layer3 feature energy"].append(stage_outputs(load(nm), data.images)["layer3"].pow(2).mean(1))
        for key, per_seed in maps.items():
            on_fur = [pointing_game(m, data.masks) for m in per_seed]
            on_dis = [pointing_game(m, data.distractor_masks) for m in per_seed]
            row["pointing"][key] = {"on_fur": _mean_sd([r["score"] for r in on_fur]),
                                    "on_distractors": _mean_sd([r["score"] for r in on_dis]),
                                    "chance_fur": on_fur[0]["chance"], "chance_distractors": on_dis[0]["chance"]}
        out[label] = row
    return out

# ------------------------------------------------------------------------------------------------
# What the gates do and are: three ablations, variance explained, per-seed pointing, recalibration
# ------------------------------------------------------------------------------------------------
#: (model kind, gate kind) pairs that have gates
GATES = (("se", "channel"), ("cbam", "channel"), ("cbam", "spatial"))
#: what each ablation removes and keeps, in one sentence (printed into the JSON for the chapters)
ABLATION_TEXT = {
    "ones": "every gate set to 1: removes the module's effect altogether",
    "image_mean": "each gate replaced by its own mean for that image: keeps each image's overall scale, "
                  "removes which channels (or where), fixed and per-image alike",
    "static": "each gate replaced by its mean over held-out images, per channel (or position): keeps which "
              "channels (or where) on average, removes only the choice made image by image",
}


def measure_ablations(names: dict[str, list[str]], load: Callable[[str], nn.Module], test: Any,
                      reference: torch.Tensor, intact: dict[str, list[float]]) -> dict[str, Any]:
    """Accuracy of every gated model under each ablation of :mod:`course_pkg.gate_ablation`, per seed.

    ``reference`` ``(N, 3, H, W)``: held-out images (not the test set) whose mean gates the ``"static"``
    ablation uses. ``intact``: the models' own test accuracies, per kind, in the order of ``names``."""
    out: dict[str, Any] = {"what": ABLATION_TEXT}
    for kind, gate in GATES:
        for mode in ABLATION_TEXT:
            accs = []
            for nm in names[kind]:
                model = load(nm)
                ref = gate_means(model, reference, gate) if mode == "static" else None
                with ablate_gates(model, gate, mode, ref):
                    accs.append(evaluate(model, test, device="cpu"))
            out[f"{kind} {gate} {mode}"] = {
                "accuracy": _mean_sd(accs), "drop": _mean_sd([a - b for a, b in zip(intact[kind], accs)]),
                "seeds": names[kind]}
    return out


@torch.no_grad()
def _record(model: nn.Module, images: torch.Tensor) -> dict[str, dict[str, torch.Tensor]]:
    with record_attention(model) as rec:
        model(images)
    return {"channel": rec.of_kind("channel"), "spatial": rec.of_kind("spatial")}


def measure_variance(names: dict[str, list[str]], load: Callable[[str], nn.Module], data: Any
                     ) -> dict[str, Any]:
    """Per block: the share of the channel weights' variance across ``data``'s images explained by the
    label and by the background (:func:`course_pkg.gate_stats.variance_explained`), per seed."""
    out: dict[str, Any] = {}
    for kind in ("se", "cbam"):
        rows: dict[str, list[dict[str, float]]] = {}
        for nm in names[kind]:
            for name, w in _record(load(nm), data.images)["channel"].items():
                varies = bool((w.amax(0) > w.amin(0)).any())
                rows.setdefault(name.split(".")[0], []).append(
                    {"label": variance_explained(w, data.labels) if varies else None,
                     "background": variance_explained(w, data.backgrounds) if varies else None,
                     "sd": float(w.std(0).mean())})
        out[kind] = {}
        for layer, rs in rows.items():        # a gate constant over the images explains nothing
            varied = [r for r in rs if r["label"] is not None]
            out[kind][layer] = {"label": _mean_sd([r["label"] for r in varied]) if varied else None,
                                "background": (_mean_sd([r["background"] for r in varied])
                                               if varied else None),
                                "constant_seeds": len(rs) - len(varied),
                                "mean_sd": _mean_sd([r["sd"] for r in rs])}
    return out


def quadrant_prior(n: int, side: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, side, side)`` maps, each a bump at the centre of one quadrant drawn at random: a map that
    knows the objects sit in quadrants but not in which one."""
    y = (torch.arange(side, dtype=torch.float64) + 0.5) / side
    bumps = torch.stack([torch.exp(-((y[:, None] - cy) ** 2 + (y[None, :] - cx) ** 2) / (2 * 0.08 ** 2))
                         for cy in (0.25, 0.75) for cx in (0.25, 0.75)])           # (4, side, side)
    return bumps[torch.randint(0, 4, (n,), generator=generator)]


def measure_pointing_per_seed(names: dict[str, list[str]], load: Callable[[str], nn.Module], data: Any
                              ) -> dict[str, Any]:
    """The pointing game per seed on ``data``, for every CBAM spatial map (every layer, layer 1 too) and
    the plain network's feature energy of every stage: the score on the target, on the other objects,
    and the maps' saturation (share of cells above 0.9, mean on and off the target)."""
    rows: dict[str, list[dict[str, Any]]] = {}

    def add(label: str, seed_name: str, maps: torch.Tensor, saturation: bool) -> None:
        on = pointing_game(maps, data.masks)
        off = pointing_game(maps, data.distractor_masks)
        row = {"name": seed_name, "score": on["score"], "chance": on["chance"],
               "on_others": off["score"], "chance_others": off["chance"], "map_size": list(maps.shape[1:])}
        if saturation:
            row.update(map_saturation(maps, data.masks))
        rows.setdefault(label, []).append(row)

    for nm in names["cbam"]:
        for name, m in _record(load(nm), data.images)["spatial"].items():
            add(f"cbam {name.split('.')[0]} spatial map", nm, m, True)
    for nm in names["none"]:
        for key, f in stage_outputs(load(nm), data.images).items():
            add(f"plain {key} feature energy", nm, f.pow(2).mean(dim=1), False)
    side = rows["plain layer3 feature energy"][0]["map_size"][0]
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        add("random map", "random", torch.rand(len(data.labels), side, side, generator=g), False)
        add("quadrant prior", "prior", quadrant_prior(len(data.labels), side, g), False)
    return {label: {"score": _mean_sd([r["score"] for r in rs]),
                    "on_others": _mean_sd([r["on_others"] for r in rs]), "per_seed": rs}
            for label, rs in rows.items()}


def measure_recalibration(names: dict[str, list[str]], load: Callable[[str], nn.Module], size: int,
                          n: int = 200) -> dict[str, Any]:
    """How far each block's mean channel weights move when an object filled with each texture is put on
    grass, against the same grass alone (``cat_on_grass(..., target_texture=t)``); ``floor``: between
    two independent draws of grass alone. Also the correlation, across channels, of the shifts that fur
    and wood cause: near 1, the block answers both the same way."""
    grass = cat_on_grass(n, image_size=size, seed=1000, with_target=False).images
    grass2 = cat_on_grass(n, image_size=size, seed=2000, with_target=False).images
    filled = {t: cat_on_grass(n, image_size=size, seed=1000, target_texture=t).images for t in TEXTURE_NAMES}
    out: dict[str, Any] = {"inputs": f"cat_on_grass({n}, image_size={size}, seed=1000, target_texture=t) "
                                     f"against cat_on_grass({n}, image_size={size}, seed=1000, with_target=False)"}
    for kind in ("se", "cbam"):
        rows: dict[str, dict[str, list[float]]] = {}
        for nm in names[kind]:
            model = load(nm)
            base = {k: w.mean(0) for k, w in _record(model, grass)["channel"].items()}
            floor = {k: w.mean(0) for k, w in _record(model, grass2)["channel"].items()}
            shifts = {t: {k: w.mean(0) - base[k] for k, w in _record(model, x)["channel"].items()}
                      for t, x in filled.items()}
            for k in base:
                layer = rows.setdefault(k.split(".")[0], {})
                for t in TEXTURE_NAMES:
                    layer.setdefault(t, []).append(float(shifts[t][k].abs().mean()))
                layer.setdefault("floor", []).append(float((floor[k] - base[k]).abs().mean()))
                a, b = shifts["fur"][k], shifts["wood"][k]
                layer.setdefault("r_fur_wood", []).append(float(torch.corrcoef(torch.stack([a, b]))[0, 1]))
        out[kind] = {layer: {t: _mean_sd(v) for t, v in d.items()} for layer, d in rows.items()}
    return out


def _held_out(entry: dict[str, Any]) -> Any:
    """The validation set of a manifest entry, drawn again: the held-out images of the static ablation."""
    spec = entry["val_data"]
    return bundled._import(spec["generator"])(**spec["kwargs"])


def measure_gates(names: dict[str, list[str]], load: Callable[[str], nn.Module], test: Any, reference: Any,
                  intact: dict[str, list[float]]) -> dict[str, Any]:
    """The measurements both tasks share: ablations, variance explained, per-seed pointing."""
    return {"ablations": measure_ablations(names, load, test, reference.images, intact),
            "variance": measure_variance(names, load, test),
            "pointing_per_seed": measure_pointing_per_seed(names, load, test)}


def measure_cued(directory: Path) -> dict[str, Any]:
    """The cued task's models: accuracy and its comparison, and :func:`measure_gates`."""

    def load(name: str) -> nn.Module:
        return bundled.load_bundled(name, device="cpu", directory=directory)

    names = {k: _names(k, directory, "cued") for k in KINDS}
    if not all(names.values()):
        raise SystemExit(f"train the cued-texture models first (found {names})")
    test = bundled.bundled_test_data(names["none"][0], directory)
    entry = get_entry(names["none"][0], directory)
    result: dict[str, Any] = {"tolerance": POINTING_TOLERANCE, "test_data": entry["test_data"],
                              "reference_data": entry["val_data"], "accuracy": {}}
    intact = {}
    for kind in KINDS:
        intact[kind] = [evaluate(load(nm), test, device="cpu") for nm in names[kind]]
        result["accuracy"][kind] = {**_mean_sd(intact[kind]), "names": names[kind]}
    result.update(measure_gates(names, load, test, _held_out(entry), intact))
    return result


BUDGET_FILE = "textures_budget_check.json"


def collect_budget(other_dir: Path, directory: Path, task: str = "objects") -> dict[str, Any]:
    """The convergence check: models trained like the bundled ones but for another number of epochs
    (``scripts/train_textures.py --epochs N --out-dir other_dir``). Records each one's command, test
    accuracy and validation curve next to the bundled model of the same kind and seed; the checkpoints
    themselves are not bundled. If training longer changes little, the bundled models had converged."""
    rows = []
    for e in manifest(other_dir):
        if not e["name"].startswith(f"{TASKS[task][0]}_resnet_small_"):
            continue
        base = get_entry(e["name"], directory)
        if e["test_data"] != base["test_data"] or e["train_data"] != base["train_data"]:
            raise SystemExit(f"{e['name']} in {other_dir} was trained or tested on other data than the bundled one")
        rows.append({"name": e["name"], "kind": e["name"].split("_")[3], "seed": e["seed"],
                     "command": e["command"], "epochs": e["epochs"], "test_accuracy": e["test_accuracy"],
                     "test_n": e["test_n"], "val_acc": [r["val_acc"] for r in e["history"]],
                     "final_train_acc": e["history"][-1]["train_acc"],
                     "bundled_epochs": base["epochs"], "bundled_test_accuracy": base["test_accuracy"]})
    if not rows:
        raise SystemExit(f"no texture models in {other_dir}")
    task_flag = f" --task {task}" if task != "objects" else ""
    return {"runs": rows,
            "command": f"python scripts/measure_textures.py{task_flag} --budget-check {other_dir}"}


def report_gates(result: dict[str, Any]) -> None:
    """Print what :func:`measure_gates` measured."""
    for kind, a in result["accuracy"].items():
        print(f"accuracy {kind:5s} " + " ".join(f"{v:.3f}" for v in a["values"]))
    for label, r in result["ablations"].items():
        if label != "what":
            print(f"ablation {label:24s} " + " ".join(f"{v:.3f}" for v in r["accuracy"]["values"])
                  + f"  drop {r['drop']['mean']:+.3f} +- {r['drop']['sd'] or 0:.3f}")
    for kind, layers in result["variance"].items():
        for layer, r in layers.items():
            if r["label"] is None:
                print(f"variance {kind} {layer}: the gates are constant over the images")
                continue
            print(f"variance {kind} {layer}: label {r['label']['mean']:.2f}, background "
                  f"{r['background']['mean']:.2f} ({r['constant_seeds']} seeds with constant gates; "
                  f"mean per-channel sd {r['mean_sd']['mean']:.4f})")
    for label, r in result["pointing_per_seed"].items():
        cells = "; ".join(f"{x['score']:.2f}" + (f" (>0.9: {x['share_above']:.2f}, on {x['mean_on']:.2f}, off "
                                                  f"{x['mean_off']:.2f})" if "share_above" in x else "")
                          for x in r["per_seed"])
        print(f"pointing {label:28s} others {r['on_others']['mean']:.2f} | {cells}")
    for kind, layers in result.get("recalibration", {}).items():
        if kind != "inputs":
            for layer, r in layers.items():
                print(f"recalibration {kind} {layer}: " + ", ".join(f"{t} {v['mean']:.4f}" for t, v in r.items()))


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=CHECKPOINT_DIR, help="where the models are bundled")
    p.add_argument("--out", type=Path, default=None, help=f"default: DIR/{OUT_FILE}")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--task", choices=tuple(TASKS), default="objects",
                   help="objects: the texture objects (the control); cued: the cued textures")
    p.add_argument("--budget-check", type=Path, default=None,
                   help="only collect the models trained with another number of epochs into this folder, "
                        f"into DIR/{BUDGET_FILE}")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    if args.budget_check is not None:
        check = collect_budget(args.budget_check, args.dir, args.task)
        out = BUDGET_FILE if args.task == "objects" else f"{TASKS[args.task][0]}_budget_check.json"
        (args.dir / out).write_text(json.dumps(check, indent=1) + "\n")
        for r in check["runs"]:
            print(f"{r['name']}: {r['epochs']} epochs {r['test_accuracy']:.4f}, "
                  f"{r['bundled_epochs']} epochs {r['bundled_test_accuracy']:.4f}")
        return
    result = measure(args.dir) if args.task == "objects" else measure_cued(args.dir)
    args.out = args.out or args.dir / TASKS[args.task][1]
    result["command"] = "python scripts/measure_textures.py" + (" --task cued" if args.task == "cued" else "")
    result["torch"] = str(torch.__version__)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    report_gates(result)
    if args.task == "cued":
        print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
        return
    for kind, a in result["accuracy"].items():
        sd = f"{a['sd']:.3f}" if a["sd"] is not None else "n/a"
        print(f"accuracy {kind:5s} {a['mean']:.3f} +- {sd} over {a['n']} seeds {a['values']}")
    for label, r in result["pointing"].items():
        s = r["score"]
        sd = f"{s['sd']:.3f}" if s["sd"] is not None else "n/a"
        print(f"pointing {label:32s} {s['mean']:.3f} +- {sd}  chance {r['chance']:.3f}  area {r['area']:.3f} "
              f"map {r['map_size']}")
    for label, r in result["shift"].items():
        accs = ", ".join(f"{k} {a['mean']:.3f}" for k, a in r["accuracy"].items())
        where = "; ".join(f"{k}: fur {p['on_fur']['mean']:.2f}, distractors {p['on_distractors']['mean']:.2f}"
                          for k, p in r["pointing"].items())
        print(f"shift {label}: accuracy {accs}; peaks {where}")
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    cli()
