"""course_pkg.bundled: the shipped checkpoints load, and reproduce their recorded held-out accuracy."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_pkg import bundled
from course_pkg.bundled import bundled_test_data, load_bundled
from course_pkg.checkpoint_manifest import (
    CHECKPOINT_DIR,
    REQUIRED_KEYS,
    get_entry,
    list_bundled,
    manifest,
    remove_from_manifest,
    sha256_of,
    update_manifest,
)
from course_pkg.train import evaluate

ROOT = Path(__file__).resolve().parents[1]
CNNS = ["clutter_resnet_small_cbam", "clutter_resnet_small_none", "clutter_resnet_small_se"]


def test_the_three_cnn_checkpoints_are_bundled() -> None:
    names = list_bundled()
    assert set(CNNS) <= set(names)
    assert names == sorted(names), "entries are kept sorted by name"
    for name in CNNS:
        e = get_entry(name)
        assert e["builder"] == "course_pkg.resnet:resnet_small"
        assert e["kwargs"]["attention"] == {"none": None}.get(name.rsplit("_", 1)[1], name.rsplit("_", 1)[1])
        assert e["command"].startswith("python -m course_pkg.train --model resnet_small")
    # same data and same budget for the three, so they compare attention modules only
    specs = [{k: get_entry(n)[k] for k in ("train_data", "test_data", "epochs", "batch_size", "lr", "seed")}
             for n in CNNS]
    assert specs[0] == specs[1] == specs[2]


def test_manifest_entries_are_complete_and_files_small() -> None:
    entries = manifest()
    assert entries, "no bundled checkpoints"
    total = 0
    for e in entries:
        assert all(k in e for k in REQUIRED_KEYS), e["name"]
        path = CHECKPOINT_DIR / e["file"]
        assert path.is_file() and path.stat().st_size == e["file_bytes"]
        assert path.stat().st_size < 2 * 2**20, f"{e['file']} is over 2 MB"
        assert sha256_of(path) == e["sha256"]
        total += path.stat().st_size
    assert total < 10 * 2**20


def test_package_data_ships_every_checkpoint_file() -> None:
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = patterns["course_pkg"]
    for path in CHECKPOINT_DIR.iterdir():
        rel = f"checkpoints/{path.name}"
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not covered by package-data"


@pytest.mark.parametrize("name", list_bundled())
def test_bundled_model_reproduces_its_recorded_accuracy(name: str) -> None:
    entry = get_entry(name)
    model = load_bundled(name, device="cpu")
    assert not model.training
    data = bundled_test_data(name)
    n = len(data.labels)
    assert n == entry.get("test_n", n)
    accuracy = evaluate(model, data, device="cpu")
    assert abs(accuracy - entry["test_accuracy"]) <= 1 / n + 1e-9, (accuracy, entry["test_accuracy"])


def test_load_bundled_errors(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="name='nope' is not a bundled model; use one of"):
        load_bundled("nope")
    # a damaged file is caught by its checksum
    name = CNNS[0]
    shutil.copy(CHECKPOINT_DIR / get_entry(name)["file"], tmp_path / get_entry(name)["file"])
    (tmp_path / "manifest.json").write_text(json.dumps([get_entry(name)]))
    assert load_bundled(name, device="cpu", directory=tmp_path) is not None
    with open(tmp_path / get_entry(name)["file"], "r+b") as fh:
        fh.seek(-20, 2)
        fh.write(b"\0" * 8)
    with pytest.raises(ValueError, match="does not match the SHA-256"):
        load_bundled(name, device="cpu", directory=tmp_path)


def _entry(name: str, file: str) -> dict:
    return {"name": name, "file": file, "builder": "course_pkg.train:simple_cnn", "kwargs": {"num_classes": 2},
            "dataset": "clutter", "command": "python -m course_pkg.train ...", "test_accuracy": 0.5,
            "test_data": {"generator": "course_pkg.data:make_clutter", "kwargs": {"n": 4, "num_classes": 2}}}


def test_update_manifest_merges_by_name_in_a_stable_order(tmp_path: Path) -> None:
    for f in ("a.pt", "b.pt"):
        torch.save({}, tmp_path / f)
    update_manifest(_entry("zeta", "a.pt"), tmp_path)
    update_manifest(_entry("alpha", "b.pt"), tmp_path)
    changed = dict(_entry("zeta", "b.pt"), test_accuracy=0.75)
    entries = update_manifest(changed, tmp_path)
    assert [e["name"] for e in entries] == ["alpha", "zeta"] == list_bundled(tmp_path)
    assert get_entry("zeta", tmp_path)["test_accuracy"] == 0.75 and get_entry("zeta", tmp_path)["file"] == "b.pt"
    assert "sha256" in entries[0] and entries[0]["file_bytes"] > 0
    with pytest.raises(ValueError, match="missing the keys \\['test_data'\\]"):
        update_manifest({k: v for k, v in _entry("x", "a.pt").items() if k != "test_data"}, tmp_path)
    with pytest.raises(ValueError, match="entry\\['file'\\]='c.pt' must be the name of a file"):
        update_manifest(_entry("x", "c.pt"), tmp_path)
    with pytest.raises(ValueError, match="entry\\['test_accuracy'\\]=1.5"):
        update_manifest(dict(_entry("x", "a.pt"), test_accuracy=1.5), tmp_path)
    with pytest.raises(ValueError, match="entry\\['test_data'\\]="):
        update_manifest(dict(_entry("x", "a.pt"), test_data={"kwargs": {}}), tmp_path)
    with pytest.raises(TypeError, match="JSON data only"):
        update_manifest(dict(_entry("x", "a.pt"), extra=torch.zeros(1)), tmp_path)
    assert list_bundled(tmp_path) == ["alpha", "zeta"], "a refused entry leaves the manifest alone"
    assert remove_from_manifest("zeta", tmp_path) is True
    assert list_bundled(tmp_path) == ["alpha"] and (tmp_path / "b.pt").is_file()   # the file stays
    assert remove_from_manifest("zeta", tmp_path) is False
    assert remove_from_manifest("x", tmp_path / "nowhere") is False
    with pytest.raises(ValueError, match="name=''"):
        remove_from_manifest("", tmp_path)


def test_training_script_smoke_run(tmp_path: Path) -> None:
    """The script that made the bundled checkpoints runs end to end (on a tiny budget, in a temp folder)."""
    proc = subprocess.run([sys.executable, "scripts/train_checkpoints.py", "--only", "se", "--epochs", "1",
                           "--n-train", "32", "--n-val", "16", "--n-test", "32", "--image-size", "24",
                           "--batch-size", "16", "--device", "cpu", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = get_entry("clutter_resnet_small_se", tmp_path)
    assert entry["test_n"] == 32 and "--n-train 32" in entry["command"]
    model = load_bundled("clutter_resnet_small_se", device="cpu", directory=tmp_path)
    assert evaluate(model, bundled_test_data("clutter_resnet_small_se", tmp_path)) == entry["test_accuracy"]


# ------------------------------------------------------------------------------------------------
# The texture-object CNNs (scripts/train_textures.py, scripts/measure_textures.py)
# ------------------------------------------------------------------------------------------------
TEXTURE_KINDS = ("none", "se", "cbam")


def _texture_names(kind: str) -> list[str]:
    return [e["name"] for e in bundled.seed_runs(f"textures_resnet_small_{kind}_s")]


def test_texture_cnns_three_seeds_each_same_data_and_budget() -> None:
    budget_keys = ("train_data", "val_data", "test_data", "epochs", "batch_size", "lr", "weight_decay",
                   "warmup_epochs")
    budgets = []
    for kind in TEXTURE_KINDS:
        names = _texture_names(kind)
        assert len(names) >= 3, f"{kind}: {names} (at least three seeds)"
        accs = []
        for name in names:
            e = get_entry(name)
            assert e["kwargs"]["attention"] == (None if kind == "none" else kind)
            assert e["command"].startswith(f"python scripts/train_textures.py --only {kind} --seeds {e['seed']} ")
            assert e["test_data"]["generator"] == "course_pkg.textures:make_textures"
            assert e["file_bytes"] < 2**20, f"{e['file']} is over 1 MB"
            assert [r["epoch"] for r in e["history"]] == list(range(1, e["epochs"] + 1))
            budgets.append({k: e[k] for k in budget_keys})
            accs.append(e["test_accuracy"])
        s = get_entry(names[0])["seeds_summary"]
        assert s["test_accuracy"] == accs and s["mean"] == pytest.approx(sum(accs) / len(accs))
        mean = sum(accs) / len(accs)
        assert s["sd"] == pytest.approx((sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) ** 0.5)
    assert all(b == budgets[0] for b in budgets), "every texture model has the same data and budget"


def test_texture_learning_curves_and_measurements_match_the_manifest() -> None:
    curves = json.loads((CHECKPOINT_DIR / "textures_training.json").read_text())
    measured = json.loads((CHECKPOINT_DIR / "textures_measurements.json").read_text())
    for kind in TEXTURE_KINDS:
        for name in _texture_names(kind):
            e = get_entry(name)
            assert curves["curves"][name]["val_acc"] == [r["val_acc"] for r in e["history"]]
        acc = measured["accuracy"][kind]
        assert acc["names"] == _texture_names(kind)
        assert acc["values"] == pytest.approx([get_entry(n)["test_accuracy"] for n in acc["names"]], abs=1e-9)
        assert curves["kinds"][kind]["mean"] == pytest.approx(acc["mean"])
    # the pointing game was scored with the course's one tolerance, against the chance of random maps
    from course_pkg.pointing_game import POINTING_TOLERANCE

    assert measured["tolerance"] == POINTING_TOLERANCE
    for label, r in measured["pointing"].items():
        assert 0 < r["chance"] <= r["area"] + 1e-9, label
        assert all(p["tolerance"] == POINTING_TOLERANCE for p in r["per_seed"])


def test_texture_pointing_numbers_reproduce() -> None:
    """The stored pointing score of CBAM's last spatial map (seed 0) is what the bundled model gives."""
    from course_pkg.attention_maps import record_attention
    from course_pkg.pointing_game import pointing_game
    from course_pkg.resnet import attention_modules

    measured = json.loads((CHECKPOINT_DIR / "textures_measurements.json").read_text())
    name = _texture_names("cbam")[0]
    model = load_bundled(name, device="cpu")
    test = bundled_test_data(name)
    with torch.no_grad(), record_attention(model) as rec:
        model(test.images)
    layer = attention_modules(model)[-1][0]
    r = pointing_game(rec[f"{layer}.spatial"], test.masks)
    stored = measured["pointing"][f"cbam {layer.split('.')[0]} spatial map"]["per_seed"][0]
    assert r["hits"] == stored["hits"] and r["chance"] == pytest.approx(stored["chance"])


def test_texture_training_script_smoke_run(tmp_path: Path) -> None:
    for _ in range(2):   # the second run replaces the first run's bundled file and entry
        proc = subprocess.run([sys.executable, "scripts/train_textures.py", "--only", "cbam", "--seeds", "0",
                               "--all-seeds", "0", "--epochs", "1", "--n-train", "32", "--n-val", "16",
                               "--n-test", "16", "--batch-size", "16", "--image-size", "32",
                               "--out-dir", str(tmp_path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    entry = get_entry("textures_resnet_small_cbam_s0", tmp_path)
    assert entry["test_n"] == 16 and "--n-train 32" in entry["command"]
    model = load_bundled("textures_resnet_small_cbam_s0", device="cpu", directory=tmp_path)
    assert evaluate(model, bundled_test_data("textures_resnet_small_cbam_s0", tmp_path)) == entry["test_accuracy"]
    assert json.loads((tmp_path / "textures_training.json").read_text())["kinds"]["cbam"]["n_seeds"] == 1


def test_texture_claims_of_chapters_4_and_5_hold() -> None:
    """The fixed sentences of chapters 4 and 5 about the bundled texture networks: every one ends near the
    top of the scale, and every one finds the fur by its colour (grey images: about chance; every
    distractor brown wood: below chance, so it answers with a wood object's shape)."""
    from course_pkg.textures import make_textures

    name = _texture_names("none")[0]
    test = bundled_test_data(name)
    size = test.images.shape[-1]
    grey = test._replace(images=test.images[:300].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).contiguous(),
                         labels=test.labels[:300])
    wood = make_textures(300, size, 3000, distractor_textures=("wood",))
    for kind in TEXTURE_KINDS:
        for n in _texture_names(kind):
            assert get_entry(n)["test_accuracy"] >= 0.94, n
            model = load_bundled(n, device="cpu")
            assert evaluate(model, grey) < 0.4, n
            assert evaluate(model, wood) < 0.25, n


def test_seed_runs_lists_one_model_per_seed_in_seed_order(tmp_path: Path) -> None:
    torch.save({}, tmp_path / "a.pt")
    for name in ("m_s10", "m_s2", "m_s0", "m_s1_long", "other_s3"):
        update_manifest(_entry(name, "a.pt"), tmp_path)
    assert [e["name"] for e in bundled.seed_runs("m_s", tmp_path)] == ["m_s0", "m_s2", "m_s10"]
    with pytest.raises(ValueError, match="prefix=''"):
        bundled.seed_runs("", tmp_path)

