"""The fixed sentences of chapters 4 and 5 about *when* SE and CBAM help hold for the bundled networks.

Chapters 4 and 5 glue every number, and compute their verdicts (``compare``); but some sentences state a
reading that a retraining could flip ("a fixed mask does the gates' whole job on the control", "the plain
network cannot fit its training images", "the last spatial map is a saturated plateau"). Each test below
is one such sentence, checked against the bundled models and the measurement files the chapters read, so
a retraining that changes the story fails here instead of leaving the prose wrong.
"""

from __future__ import annotations

import json

import pytest

from course_pkg import bundled
from course_pkg.checkpoint_manifest import CHECKPOINT_DIR
from course_pkg.seed_stats import compare, mean_sd

TASKS = {"objects": "textures", "cued": "cued"}


def _runs(task: str, kind: str) -> list[dict]:
    return bundled.seed_runs(f"{TASKS[task]}_resnet_small_{kind}_s")


def _measured(task: str) -> dict:
    path = CHECKPOINT_DIR / f"{TASKS[task]}_measurements.json"
    return json.loads(path.read_text())


def _accs(task: str, kind: str) -> list[float]:
    return [e["test_accuracy"] for e in _runs(task, kind)]


@pytest.mark.parametrize("task", TASKS)
def test_both_tasks_are_bundled_with_three_kinds_and_at_least_three_seeds(task) -> None:
    for kind in ("none", "se", "cbam"):
        runs = _runs(task, kind)
        assert len(runs) >= 3, (task, kind)
        assert all(e["command"].startswith("python scripts/train_textures.py") for e in runs)


@pytest.mark.parametrize("task", TASKS)
def test_the_measurements_were_made_on_the_bundled_models(task) -> None:
    """The measurement file's accuracies are the manifest's, seed by seed: it is not stale."""
    m = _measured(task)
    for kind in ("none", "se", "cbam"):
        assert m["accuracy"][kind]["names"] == [e["name"] for e in _runs(task, kind)]
        assert m["accuracy"][kind]["values"] == pytest.approx(_accs(task, kind), abs=1e-9)


def test_attention_beats_the_plain_network_on_the_cued_task_only() -> None:
    """ch04/ch05: SE and CBAM "beat" the plain network on the selection task and "do not beat" it on the
    control (the verdict the chapters glue from compare)."""
    for kind in ("se", "cbam"):
        cued = compare(_accs("cued", "none"), _accs("cued", kind))
        assert cued.z >= 2 and cued.diff > 0.3, kind
        control = compare(_accs("objects", "none"), _accs("objects", kind))
        assert not (control.z >= 2 and control.diff > 0), kind


def test_the_plain_network_cannot_fit_the_cued_task() -> None:
    """ch04: the plain ResNets stay near a third and cannot fit their own training images, while every
    SE-ResNet fits them: not a matter of epochs."""
    plain = [e["history"][-1]["train_acc"] for e in _runs("cued", "none")]
    se = [e["history"][-1]["train_acc"] for e in _runs("cued", "se")]
    assert max(plain) < 0.6 and min(se) > 0.85
    assert mean_sd(_accs("cued", "none"))[0] < 0.45


def test_the_ablations_read_as_the_chapters_say() -> None:
    """ch04: on the control a fixed mask (static ablation) does SE's whole job; on the cued task removing
    only the per-image choice brings SE down to about what the shapes alone give. ch05: CBAM's channel
    gates cannot be replaced by a fixed mask even on the control."""
    obj, cue = _measured("objects")["ablations"], _measured("cued")["ablations"]
    assert obj["se channel static"]["drop"]["mean"] < 0.01
    assert cue["se channel static"]["accuracy"]["mean"] < 0.5
    assert cue["cbam channel static"]["accuracy"]["mean"] < 0.5
    assert obj["cbam channel static"]["drop"]["mean"] > 0.05


def test_the_gates_echo_the_class_late_and_the_image_early() -> None:
    """ch04/ch05: on the control the label explains most of the last block's gate variance (SE and CBAM),
    the background most of the first SE block's; on the cued task some SE block carries the cue."""
    var = _measured("objects")["variance"]
    for kind in ("se", "cbam"):
        assert var[kind]["layer3"]["label"]["mean"] > 0.8, kind
    assert var["se"]["layer1"]["background"]["mean"] > 0.5
    cued = _measured("cued")["variance"]["se"]
    assert max(r["background"]["mean"] for r in cued.values()) > 0.3


def test_se_blocks_answer_wood_as_they_answer_fur() -> None:
    """ch04: in the block where fur moves the SE weights most against the noise floor, wood moves them at
    least about as much, and the two shifts are strongly correlated across channels."""
    rec = _measured("objects")["recalibration"]["se"]
    layer = max(rec, key=lambda k: rec[k]["fur"]["mean"] / rec[k]["floor"]["mean"])
    r = rec[layer]
    assert r["fur"]["mean"] > 10 * r["floor"]["mean"]
    assert r["wood"]["mean"] > 0.8 * r["fur"]["mean"]
    assert r["r_fur_wood"]["mean"] > 0.9


def test_cbam_maps_are_saturated_and_the_references_behave() -> None:
    """ch05: the last spatial map is above 0.9 on most cells for every seed; the seeds' pointing scores
    disagree; the quadrant prior scores about one object in four, random maps about chance, and the plain
    network's energy points at the fur."""
    rows = _measured("objects")["pointing_per_seed"]
    last = rows["cbam layer3 spatial map"]["per_seed"]
    assert min(r["share_above"] for r in last) > 0.5
    scores = [r["score"] for r in last]
    assert max(scores) - min(scores) > 0.2
    assert 0.15 < rows["quadrant prior"]["score"]["mean"] < 0.35
    random = rows["random map"]["per_seed"]
    assert abs(rows["random map"]["score"]["mean"] - random[0]["chance"]) < 0.03
    assert rows["plain layer3 feature energy"]["score"]["mean"] > 0.8


def test_twice_the_epochs_does_not_teach_the_plain_network_the_rule() -> None:
    """ch04: trained for twice the epochs, the plain ResNet stays near a third on new images while the
    SE-ResNet of the same seed solves the task (cued_budget_check.json)."""
    runs = json.loads((CHECKPOINT_DIR / "cued_budget_check.json").read_text())["runs"]
    by_kind = {r["kind"]: r for r in runs}
    assert by_kind["none"]["epochs"] == 2 * by_kind["none"]["bundled_epochs"]
    assert by_kind["none"]["test_accuracy"] < 0.45
    assert by_kind["se"]["test_accuracy"] > 0.9
