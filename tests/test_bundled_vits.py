"""The bundled Vision Transformers: each reloads, reproduces its recorded accuracy, and stays small."""

from __future__ import annotations

import re

import pytest
import torch

from course_pkg import bundled, checkpoint_manifest
from course_pkg.attention_maps import cls_rollout_map
from course_pkg.train import evaluate
from course_pkg.vit import VisionTransformer

PATCH_SET = ["clutter_vit_p4", "clutter_vit_p8", "clutter_vit_p16"]
HEAD_SET = ["clutter_vit_h1", "clutter_vit_h2", "clutter_vit_h4", "clutter_vit_h8"]
ALL = [*PATCH_SET, *HEAD_SET, "digits_vit"]


def entries() -> dict[str, dict]:
    return {e["name"]: e for e in checkpoint_manifest.manifest() if e["name"] in ALL}


def test_every_vit_is_in_the_manifest_with_its_command() -> None:
    found = entries()
    assert sorted(found) == sorted(ALL)
    for name, e in found.items():
        assert e["builder"] == "course_pkg.vit:VisionTransformer"
        pattern = r"python scripts/train_vits.py --only (\S+) --seed \d+ --threads \d+"
        command = re.fullmatch(pattern, e["command"])
        assert command is not None, e["command"]
        trained = command.group(1)  # a run with the same settings as another is that model (h4 is p8)
        assert trained == name or (e["same_as"] == trained and found[trained]["kwargs"] == e["kwargs"]
                                   and found[trained]["file"] == e["file"])
        assert (checkpoint_manifest.CHECKPOINT_DIR / e["file"]).is_file()


@pytest.mark.parametrize("name", ALL)
def test_bundled_vit_reproduces_its_recorded_accuracy(name: str) -> None:
    entry = checkpoint_manifest.get_entry(name)
    model = bundled.load_bundled(name, device="cpu")
    assert isinstance(model, VisionTransformer) and not model.training
    assert sum(p.numel() for p in model.parameters()) == entry["num_params"]
    test = bundled.bundled_test_data(name)
    accuracy = evaluate(model, test, device="cpu")
    # the same weights and data give the same predictions; allow one image for another CPU's float rounding
    assert abs(accuracy - entry["test_accuracy"]) <= 1.0 / len(test.labels) + 1e-9
    assert accuracy > 2.0 / entry["kwargs"]["num_classes"]  # well above chance


def test_digits_vit_reaches_97_percent() -> None:
    assert checkpoint_manifest.get_entry("digits_vit")["test_accuracy"] >= 0.97


def test_the_sets_vary_one_thing_only() -> None:
    found = entries()

    def fixed(names: list[str], varied: str) -> list[dict]:
        return [{k: v for k, v in found[n]["kwargs"].items() if k != varied} for n in names]

    patch = fixed(PATCH_SET, "patch_size")
    heads = fixed(HEAD_SET, "num_heads")
    assert all(k == patch[0] for k in patch) and all(k == heads[0] for k in heads)
    assert [found[n]["kwargs"]["patch_size"] for n in PATCH_SET] == [4, 8, 16]
    assert [found[n]["kwargs"]["num_heads"] for n in HEAD_SET] == [1, 2, 4, 8]
    budget = {(found[n]["epochs"], found[n]["lr"], found[n]["batch_size"], found[n]["seed"],
               str(found[n]["train_data"])) for n in PATCH_SET + HEAD_SET}
    assert len(budget) == 1  # same data, same budget


def test_checkpoints_are_small() -> None:
    sizes = {e["file"]: (checkpoint_manifest.CHECKPOINT_DIR / e["file"]).stat().st_size for e in entries().values()}
    assert all(s < 512 * 1024 for s in sizes.values()), sizes
    assert sum(sizes.values()) < 4 * 1024 * 1024


def test_rollout_of_a_bundled_vit_points_at_the_object() -> None:
    """Trained attention, rolled out, puts more weight on the target's patches than on the rest."""
    model = bundled.load_bundled("clutter_vit_p4", device="cpu")
    test = bundled.bundled_test_data("clutter_vit_p4")
    x, masks = test.images[:200], test.masks[:200]
    with torch.no_grad():
        _, attentions = model(x, return_attention=True)
    maps = cls_rollout_map(attentions, model.grid_size)  # (B, gh, gw)
    p = model.patch_size[0]
    cover = masks.float().unflatten(1, (-1, p)).unflatten(3, (-1, p)).mean(dim=(2, 4))  # (B, gh, gw)
    on_object = cover > 0.25  # patches at least a quarter covered by the target
    inside = (maps * on_object).sum((1, 2)) / on_object.sum((1, 2)).clamp_min(1)
    outside = (maps * ~on_object).sum((1, 2)) / (~on_object).sum((1, 2)).clamp_min(1)
    assert (inside > outside).float().mean() > 0.9
