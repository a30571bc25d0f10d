"""course_pkg.textures: the texture-object set is offline, deterministic, has honest masks and no shortcut."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from course_pkg.textures import (
    BACKGROUND_TEXTURES,
    TEXTURE_CLASSES,
    TEXTURE_NAMES,
    cat_on_grass,
    make_textures,
    texture_source,
)


@pytest.fixture(scope="module")
def sample():
    return make_textures(400, image_size=48, seed=3)


def test_shapes_types_and_ranges(sample) -> None:
    images, labels, masks, dmasks, backgrounds, names = sample
    assert images.shape == (400, 3, 48, 48) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.shape == (400,) and labels.dtype == torch.int64
    assert set(labels.tolist()) == set(range(len(TEXTURE_CLASSES)))
    assert masks.shape == dmasks.shape == (400, 48, 48) and masks.dtype == torch.bool
    assert names == TEXTURE_CLASSES
    assert {TEXTURE_NAMES[b] for b in backgrounds.tolist()} == set(BACKGROUND_TEXTURES)
    assert masks.flatten(1).any(1).all(), "every image has its fur object"
    assert not (masks & dmasks).any(), "objects do not overlap"


def test_deterministic_and_independent_of_n() -> None:
    a = make_textures(12, seed=5)
    b = make_textures(12, seed=5)
    c = make_textures(4, seed=5)
    d = make_textures(4, seed=6)
    for x, y in zip(a[:5], b[:5]):
        assert torch.equal(x, y)
    assert torch.equal(a.images[:4], c.images) and torch.equal(a.masks[:4], c.masks)
    assert not torch.equal(c.images, d.images)


def test_harder_options_change_the_images() -> None:
    a = make_textures(8, seed=0)
    b = make_textures(8, seed=0, rotate=True, distractor_textures=("wood", "tissue"))
    assert torch.equal(a.labels, b.labels) and not torch.equal(a.images, b.images)


def test_device_argument() -> None:
    s = make_textures(2, seed=0, device="cpu")
    assert s.images.device.type == "cpu" and s.masks.device.type == "cpu"
    if torch.cuda.is_available():
        s = make_textures(2, seed=0, device="cuda")
        assert s.images.is_cuda and s.labels.is_cuda


def test_masks_mark_the_fur_object() -> None:
    """Where the mask is True the image is the fur texture (plus noise); outside it, it is not."""
    s = make_textures(40, seed=1, noise=0.0)
    fur = texture_source("fur")
    fur_mean = fur.reshape(-1, 3).mean(0)
    inside = s.images.permute(0, 2, 3, 1)[s.masks].numpy()           # (P, 3) pixels on the object
    # every object pixel is a fur pixel scaled by the object's gain (0.85 to 1.15): its chromaticity is fur's
    def chroma(pixels: np.ndarray) -> np.ndarray:
        pixels = pixels.reshape(-1, 3)
        return (pixels / pixels.sum(1, keepdims=True).clip(1e-6)).mean(0)

    got = chroma(inside)
    distances = {t: np.abs(got - chroma(texture_source(t))).max() for t in TEXTURE_NAMES}
    assert min(distances, key=distances.get) == "fur", distances
    assert distances["fur"] < 0.03
    assert np.abs(inside.mean(0) - fur_mean).max() < 0.06
    # the object is where the image changed: drawing the same images without it changes exactly the mask
    bare = make_textures(40, seed=1, noise=0.0, with_target=False)
    changed = (s.images != bare.images).any(dim=1)                    # (N, H, W)
    assert not (changed & ~s.masks).any(), "pixels outside the mask differ"
    assert changed[s.masks].float().mean() > 0.95
    assert not bare.masks.any() and torch.equal(bare.distractor_masks, s.distractor_masks)


@pytest.mark.parametrize("rotate", [False, True])
def test_mask_shapes_match_the_labels(rotate: bool) -> None:
    """Rotation-free shape measures of each label's masks: area / (largest centre distance)^2 is pi for a
    disc, 2 for a square or a cross, 1.3 for a triangle; only the cross fills its convex hull by ~0.7."""
    from skimage.morphology import convex_hull_image

    s = make_textures(200, seed=2, distractors=0, rotate=rotate)
    ratio: dict[int, list[float]] = {k: [] for k in range(4)}
    solidity: dict[int, list[float]] = {k: [] for k in range(4)}
    areas: dict[int, list[float]] = {k: [] for k in range(4)}
    for m, y in zip(s.masks.numpy(), s.labels.tolist()):
        rows, cols = np.nonzero(m)
        cy, cx = rows.mean(), cols.mean()
        reach2 = ((rows - cy) ** 2 + (cols - cx) ** 2).max() + 0.5
        ratio[y].append(m.sum() / reach2)
        solidity[y].append(m.sum() / convex_hull_image(m).sum())
        areas[y].append(m.sum())
    r = {TEXTURE_CLASSES[k]: np.mean(v) for k, v in ratio.items()}
    sol = {TEXTURE_CLASSES[k]: np.mean(v) for k, v in solidity.items()}
    assert r["disc"] > max(r["square"], r["cross"]) + 0.5 and r["triangle"] < min(r["square"], r["cross"]) - 0.3
    assert sol["cross"] < 0.85 < min(sol["disc"], sol["square"], sol["triangle"])
    means = [np.mean(areas[k]) for k in range(4)]
    assert max(means) / min(means) < 1.15, f"target area depends on the class: {means}"


def test_every_shape_once_with_three_distractors() -> None:
    """With the default three distractors every image holds all four shapes: which shapes are present
    says nothing about the label. Checked through the number of connected objects."""
    from scipy import ndimage

    s = make_textures(60, seed=4)
    counts = [ndimage.label((m | d).numpy())[1] for m, d in zip(s.masks, s.distractor_masks)]
    assert np.mean(np.array(counts) == 4) > 0.9


def _colour_features(images: torch.Tensor, bins: int = 6) -> np.ndarray:
    """(N, bins**3 + 3) joint RGB histogram and mean colour: everything about colour, nothing about shape."""
    q = (images.clamp(0, 0.9999) * bins).long()
    code = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    hist = torch.stack([torch.bincount(c.flatten(), minlength=bins ** 3) for c in code]).float()
    hist = hist / hist.sum(1, keepdim=True)
    return torch.cat([hist, images.mean(dim=(2, 3))], dim=1).numpy()


def test_no_colour_shortcut() -> None:
    """A colour-histogram + mean-colour classifier stays at chance (1/4) on held-out images."""
    from sklearn.linear_model import LogisticRegression

    train = make_textures(1500, seed=10)
    test = make_textures(1000, seed=11)
    clf = LogisticRegression(max_iter=2000).fit(_colour_features(train.images), train.labels.numpy())
    acc = clf.score(_colour_features(test.images), test.labels.numpy())
    # chance 0.25; a binomial with n = 1000 has sd 0.014, so 0.31 is 4 sd above
    assert acc < 0.31, f"colour alone predicts the fur object's shape ({acc:.3f}): a shortcut"


def test_the_fur_is_needed_to_find_the_object() -> None:
    """Where the fur is (the mask) is not given away by brightness: the object's mean brightness is within
    the spread of the distractors', so finding it needs its texture and colour."""
    s = make_textures(300, seed=7)
    grey = s.images.mean(1)
    obj = torch.stack([g[m].mean() for g, m in zip(grey, s.masks)])
    dis = torch.stack([g[d].mean() for g, d in zip(grey, s.distractor_masks)])
    assert (obj > dis).float().mean().item() < 0.85 and (obj < dis).float().mean().item() < 0.85


def test_cat_on_grass_is_the_worked_example() -> None:
    s = cat_on_grass(3, seed=0)
    assert s.images.shape == (3, 3, 48, 48) and not s.distractor_masks.any()
    assert all(TEXTURE_NAMES[b] == "grass" for b in s.backgrounds.tolist())
    bare = cat_on_grass(3, seed=0, with_target=False)
    assert not bare.masks.any()
    outside = ~s.masks[:, None].expand_as(s.images)
    assert torch.equal(s.images[outside], bare.images[outside])


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, r"n=0 is not valid"),
    ({"n": 2.0}, r"n=2.0 is not valid"),
    ({"n": 2, "image_size": 16}, r"image_size=16 is not valid; use an integer from 32 to 96"),
    ({"n": 2, "seed": -1}, r"seed=-1"),
    ({"n": 2, "distractors": 4}, r"distractors=4 is not valid"),
    ({"n": 2, "backgrounds": "grass"}, r"backgrounds='grass' is not valid"),
    ({"n": 2, "backgrounds": ["grass", "fur"]}, r"holds \['fur'\], not a background texture"),
    ({"n": 2, "backgrounds": []}, r"backgrounds=\[\] is not valid"),
    ({"n": 2, "noise": -0.1}, r"noise=-0.1 is not valid"),
    ({"n": 2, "with_target": 1}, r"with_target=1 is not valid"),
    ({"n": 2, "rotate": "yes"}, r"rotate='yes' is not valid"),
    ({"n": 2, "distractor_textures": ["fur"]}, r"distractor_textures=\['fur'\] is not valid"),
    ({"n": 2, "distractor_textures": []}, r"distractor_textures=\[\] is not valid"),
])
def test_bad_arguments_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_textures(**kwargs)


def test_texture_source() -> None:
    for name in TEXTURE_NAMES:
        a = texture_source(name)
        assert a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.float32
        assert 0 <= a.min() and a.max() <= 1 and min(a.shape[:2]) >= 50
    with pytest.raises(ValueError, match=r"name='cat' is not a texture"):
        texture_source("cat")


def test_builds_without_network() -> None:
    """Everything comes from the images inside the scikit-image package: it builds with sockets disabled."""
    code = ("import socket\n"
            "def no(*a, **k):\n    raise OSError('network disabled')\n"
            "socket.socket.connect = no\nsocket.create_connection = no\n"
            "from course_pkg.textures import make_textures, TEXTURE_NAMES, texture_source\n"
            "[texture_source(t) for t in TEXTURE_NAMES]\n"
            "print(make_textures(3).images.shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "torch.Size([3, 3, 48, 48])" in out.stdout
