"""course_pkg.cued_textures: the cue names the object, nothing else gives the label away."""

from __future__ import annotations

import pytest
import torch

from course_pkg.cued_textures import CUE_SIDE, CUED_TEXTURES, CUES, TINTS, make_cued_textures
from course_pkg.textures import TEXTURE_CLASSES, TEXTURE_NAMES


@pytest.fixture(scope="module")
def sample():
    return make_cued_textures(300, image_size=48, seed=5)


def _dominant(images: torch.Tensor, masks: torch.Tensor) -> list[int]:
    """The colour channel with the largest mean on each image's masked pixels."""
    return [int(img[:, m].mean(dim=1).argmax()) for img, m in zip(images, masks)]


def test_shapes_types_and_ranges(sample) -> None:
    images, labels, masks, dmasks, cues, names = sample
    assert images.shape == (300, 3, 48, 48) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == torch.int64 and set(labels.tolist()) == set(range(len(TEXTURE_CLASSES)))
    assert masks.shape == dmasks.shape == (300, 48, 48) and masks.dtype == torch.bool
    assert names == TEXTURE_CLASSES
    assert {TEXTURE_NAMES[c] for c in cues.tolist()} == set(CUES)
    assert masks.flatten(1).any(1).all() and dmasks.flatten(1).any(1).all()
    assert not (masks & dmasks).any(), "objects do not overlap"


def test_the_cue_names_the_target_by_its_colour(sample) -> None:
    """The target's tint is the one of the texture its cue names: grass -> fur (red), brick -> wood
    (green), gravel -> tissue (blue)."""
    want = [max(range(3), key=lambda c: TINTS[CUES[TEXTURE_NAMES[k]]][c]) for k in sample.backgrounds.tolist()]
    assert _dominant(sample.images, sample.masks) == want


def test_the_objects_fill_three_quadrants_and_the_cue_the_fourth(sample) -> None:
    q = 24
    for img, m, d in zip(sample.images[:50], sample.masks, sample.distractor_masks):
        objects = m | d
        used = {(qy, qx) for qy in (0, 1) for qx in (0, 1)
                if objects[qy * q:(qy + 1) * q, qx * q:(qx + 1) * q].any()}
        assert len(used) == 3
        (qy, qx), = {(a, b) for a in (0, 1) for b in (0, 1)} - used
        free = img[:, qy * q:(qy + 1) * q, qx * q:(qx + 1) * q]
        level = free.flatten(1).median(dim=1).values[:, None, None]     # the flat background (+ noise)
        patch = (free - level).abs().amax(dim=0) > 0.08                  # 4 sd of the pixel noise
        side = round(48 * CUE_SIDE)
        assert 0.4 * side * side <= patch.sum() <= side * side + 5, "the empty quadrant holds the cue patch"


def test_no_shortcut_without_the_cue(sample) -> None:
    """Labels are spread evenly over the cues, and each object is the target for about a third."""
    for k in set(sample.backgrounds.tolist()):
        per_cue = sample.labels[sample.backgrounds == k]
        assert len(set(per_cue.tolist())) == len(TEXTURE_CLASSES)
    red = [d == 0 for d in _dominant(sample.images, sample.masks)]
    assert 0.2 < sum(red) / len(red) < 0.47, "the fur object is the target in about a third of the images"


def test_target_fixes_the_object() -> None:
    fixed = make_cued_textures(60, seed=5, target="fur")
    assert _dominant(fixed.images, fixed.masks) == [0] * 60


def test_deterministic_and_independent_of_n() -> None:
    a = make_cued_textures(10, seed=2)
    b = make_cued_textures(25, seed=2)
    assert torch.equal(a.images, b.images[:10]) and torch.equal(a.labels, b.labels[:10])
    assert not torch.equal(a.images, make_cued_textures(10, seed=3).images)


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n"), ({"n": 4, "image_size": 20}, "image_size"), ({"n": 4, "noise": -1}, "noise"),
    ({"n": 4, "target": "grass"}, "target"), ({"n": 4, "seed": -1}, "seed")])
def test_bad_arguments_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_cued_textures(**kwargs)


def test_every_texture_is_known() -> None:
    assert set(CUED_TEXTURES) == set(CUES.values()) == set(TINTS)


def test_to_moves_every_tensor_and_bundled_test_data_uses_it() -> None:
    """Chapters 4 and 5 call ``bundled_test_data(name, device=device)``: on a GPU that needs ``.to``
    (checked here on the meta device, which has no GPU)."""
    from course_pkg.bundled import bundled_test_data, seed_runs

    meta = torch.device("meta")
    moved = make_cued_textures(4).to(meta)
    assert all(t.device == meta for t in moved if isinstance(t, torch.Tensor))
    assert moved.class_names == TEXTURE_CLASSES
    with pytest.raises(ValueError, match="device='gpu'"):
        make_cued_textures(4).to("gpu")
    for prefix in ("textures_resnet_small_none_s", "cued_resnet_small_none_s"):
        runs = seed_runs(prefix)
        if runs:
            data = bundled_test_data(runs[0]["name"], device=meta)
            assert data.images.device == meta and data.masks.device == meta
