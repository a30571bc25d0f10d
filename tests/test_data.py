"""course_pkg.data (the clutter generator, digits, CIFAR-10's offline behaviour), course_pkg.datasets and
course_pkg.photos."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from course_pkg.data import CLUTTER_CLASSES, load_cifar10, load_digits, make_clutter
from course_pkg.datasets import ClutterDataset, ImageDataset
from course_pkg.photos import PHOTOS, denormalize_imagenet, load_photo

# ------------------------------------------------------------------------------------------------
# make_clutter
# ------------------------------------------------------------------------------------------------


def test_clutter_shapes_dtypes_and_ranges() -> None:
    images, labels, masks, names = make_clutter(40, image_size=32, num_classes=4, seed=0)
    assert images.shape == (40, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (40,) and labels.dtype == torch.long
    assert masks.shape == (40, 32, 32) and masks.dtype == torch.bool
    assert names == CLUTTER_CLASSES[:4]
    assert 0 <= images.min() and images.max() <= 1
    assert set(labels.tolist()) <= set(range(4))
    assert masks.flatten(1).any(dim=1).all(), "every image holds a visible target"


def test_clutter_is_deterministic_by_seed_and_independent_of_chunking() -> None:
    a = make_clutter(30, image_size=24, seed=5)
    b = make_clutter(30, image_size=24, seed=5, chunk_size=7)
    for x, y in zip(a[:3], b[:3]):
        assert torch.equal(x, y)
    c = make_clutter(30, image_size=24, seed=6)
    assert not torch.equal(a.images, c.images)
    assert not torch.equal(a.masks, c.masks)


def test_masks_are_exactly_the_target_object() -> None:
    """Without distractors and noise, the image is the background colour outside the mask and the
    object's colour inside it: the mask covers the object, the whole object and nothing else."""
    images, labels, masks, _ = make_clutter(60, image_size=48, seed=1, distractors=0, noise=0.0)
    for img, m in zip(images, masks):
        inside, outside = img[:, m], img[:, ~m]                          # (3, n_in), (3, n_out)
        assert inside.numel() > 0 and outside.numel() > 0
        assert torch.all(inside == inside[:, :1]), "one colour on the object"
        assert torch.all(outside == outside[:, :1]), "one colour off the object"
        assert not torch.equal(inside[:, 0], outside[:, 0])


def _bbox(m: torch.Tensor) -> torch.Tensor:
    rows, cols = torch.nonzero(m.any(1)).flatten(), torch.nonzero(m.any(0)).flatten()
    return m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


@pytest.mark.parametrize("cls, fill", [("square", 1.0), ("disk", np.pi / 4), ("triangle", 0.5),
                                       ("cross", 0.556), ("ring", 0.548), ("diamond", 0.5)])
def test_mask_has_the_shape_of_its_class(cls: str, fill: float) -> None:
    ci = CLUTTER_CLASSES.index(cls)
    _, labels, masks, _ = make_clutter(300, image_size=64, seed=2, distractors=0, noise=0.0)
    boxes = [_bbox(m) for m in masks[labels == ci]]
    assert len(boxes) > 10
    ratios = torch.tensor([b.float().mean().item() for b in boxes])
    assert abs(ratios.mean().item() - fill) < 0.08, f"{cls}: mean fill {ratios.mean():.3f}, expected {fill:.3f}"
    for b in boxes:
        h, w = b.shape
        centre = b[h // 2, w // 2].item()
        widths = b.sum(1).float()                                      # object width per row
        if cls == "ring":
            assert not centre, "a ring has a hole"
        if cls in ("cross", "disk", "square", "diamond"):
            assert centre
        if cls == "cross":
            assert not b[0, 0] and not b[-1, -1], "a cross has empty corners"
        if cls == "triangle":
            assert widths[-1] > 2 * widths[0], "a triangle is narrow at the top, wide at the bottom"
        if cls == "diamond":
            assert widths[h // 2] > 2 * max(widths[0], widths[-1])


def test_target_area_does_not_depend_on_the_class() -> None:
    _, labels, masks, _ = make_clutter(1200, image_size=48, seed=3, distractors=0)
    area = masks.flatten(1).sum(1).float()
    means = torch.stack([area[labels == c].mean() for c in range(6)])
    assert (means.max() / means.min()).item() < 1.15, means


def _colour_histograms(images: torch.Tensor, bins: int = 6) -> np.ndarray:
    """(N, bins**3) normalised joint RGB histograms: everything about colour, nothing about shape."""
    q = (images.clamp(0, 0.9999) * bins).long()                          # (N, 3, H, W)
    code = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]                    # (N, H, W)
    hist = torch.stack([torch.bincount(c.flatten(), minlength=bins ** 3) for c in code]).float()
    return (hist / hist.sum(1, keepdim=True)).numpy()


def test_no_colour_shortcut_but_a_cnn_learns_the_shapes() -> None:
    """A colour-histogram classifier stays near chance (1/6) on the held-out set of the bundled CNN,
    while that CNN (trained by scripts/train_checkpoints.py) classifies the same images well."""
    from sklearn.linear_model import LogisticRegression

    from course_pkg.bundled import bundled_test_data, load_bundled
    from course_pkg.checkpoint_manifest import get_entry
    from course_pkg.train import evaluate

    name = "clutter_resnet_small_none"
    test = bundled_test_data(name)
    spec = dict(get_entry(name)["train_data"]["kwargs"], n=1000)
    train = make_clutter(**spec)
    clf = LogisticRegression(max_iter=1000).fit(_colour_histograms(train.images), train.labels.numpy())
    colour_acc = clf.score(_colour_histograms(test.images), test.labels.numpy())
    cnn_acc = evaluate(load_bundled(name, device="cpu"), test)
    assert colour_acc < 1 / 6 + 0.07, f"colour alone predicts the class ({colour_acc:.3f}): a shortcut"
    assert cnn_acc > 0.8, f"the CNN should learn the shapes, got {cnn_acc:.3f}"


def test_clutter_is_vectorised() -> None:
    """Drawing 1000 images makes a few thousand Python-level calls (tensor operations on whole batches),
    not one per pixel (2.3 million) or dozens per image: counted, not timed, so machine load cannot
    hide a regression."""
    import sys

    calls = [0]

    def count(frame, event, arg):  # type: ignore[no-untyped-def]
        if event in ("call", "c_call"):
            calls[0] += 1

    sys.setprofile(count)
    try:
        make_clutter(1000, image_size=48, seed=0)
    finally:
        sys.setprofile(None)
    assert calls[0] < 10_000, f"make_clutter(1000) made {calls[0]} Python calls: a per-image or per-pixel loop"


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n=0"),
    ({"n": 4, "image_size": 10}, "image_size=10"),
    ({"n": 4, "image_size": 48.0}, "image_size=48.0"),
    ({"n": 4, "num_classes": 7}, "num_classes=7.*square"),
    ({"n": 4, "num_classes": 1}, "num_classes=1"),
    ({"n": 4, "seed": -1}, "seed=-1"),
    ({"n": 4, "distractors": (5, 2)}, "distractors=\\(5, 2\\)"),
    ({"n": 4, "distractors": "many"}, "distractors='many'"),
    ({"n": 4, "noise": -0.1}, "noise=-0.1"),
])
def test_clutter_bad_arguments_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_clutter(**kwargs)


def test_datasets_wrap_tensors_with_transforms() -> None:
    ds = ClutterDataset(12, image_size=24, num_classes=3, seed=0, transform=lambda x: x.flip(-1))
    x, y = ds[3]
    ref = make_clutter(12, image_size=24, num_classes=3, seed=0)
    assert len(ds) == 12 and torch.equal(x, ref.images[3].flip(-1)) and y == ref.labels[3]
    assert ds.class_names == CLUTTER_CLASSES[:3]
    assert ds.spec == {"n": 12, "image_size": 24, "num_classes": 3, "seed": 0}
    with_mask = ClutterDataset(4, image_size=24, seed=0, return_mask=True)
    assert torch.equal(with_mask[1][2], make_clutter(4, image_size=24, seed=0).masks[1])
    with pytest.raises(ValueError, match="images must be a \\(N, C, H, W\\)"):
        ImageDataset(torch.zeros(3, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must be a \\(3,\\) tensor"):
        ImageDataset(torch.zeros(3, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="return_mask=True needs masks"):
        ImageDataset(torch.zeros(3, 1, 8, 8), torch.zeros(3, dtype=torch.long), return_mask=True)


# ------------------------------------------------------------------------------------------------
# digits and photos
# ------------------------------------------------------------------------------------------------


def test_digits_split_is_deterministic_and_disjoint() -> None:
    x_tr, y_tr = load_digits("train")
    x_te, y_te = load_digits("test")
    x_all, _ = load_digits("all")
    assert x_tr.shape[1:] == (1, 8, 8) and x_all.shape == (1797, 1, 8, 8)
    assert len(x_tr) + len(x_te) == 1797 and len(x_te) == 450
    assert 0 <= x_all.min() and x_all.max() <= 1 and y_tr.dtype == torch.long
    assert set(y_te.tolist()) == set(range(10)), "stratified: every digit in the test split"
    rows = {tuple(r.tolist()) for r in x_tr.flatten(1)}
    assert sum(tuple(r.tolist()) in rows for r in x_te.flatten(1)) < 5   # (a few images repeat in the set)
    assert torch.equal(load_digits("test")[0], x_te)
    assert not torch.equal(load_digits("test", seed=1)[0], x_te)
    with pytest.raises(ValueError, match="split='val'"):
        load_digits("val")
    with pytest.raises(ValueError, match="test_fraction=2.0"):
        load_digits("train", test_fraction=2.0)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails, as on a machine without a network."""
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_photos_are_bundled_with_scikit_image(no_network: None) -> None:
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    for name, (filename, _) in PHOTOS.items():
        assert (folder / filename).is_file(), f"{name}: {filename} is not shipped inside scikit-image"
        x = load_photo(name)
        assert x.dim() == 3 and x.shape[0] == 3 and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
    cat = load_photo("cat")
    assert cat.shape == (3, 300, 451)                                     # skimage.data.chelsea()
    assert torch.equal(cat, torch.from_numpy(skimage.data.chelsea()).permute(2, 0, 1).float() / 255)


def test_photo_resize_and_normalise() -> None:
    x = load_photo("astronaut", size=224)
    assert x.shape == (3, 224, 224)
    assert load_photo("coffee", size=(60, 90)).shape == (3, 60, 90)
    z = load_photo("astronaut", size=224, normalize=True)
    assert torch.allclose(denormalize_imagenet(z), x, atol=1e-6)
    assert abs(z.mean().item()) < 1.5 and z.min() < 0
    with pytest.raises(ValueError, match="name='dog'.*cat"):
        load_photo("dog")
    with pytest.raises(ValueError, match="size=0"):
        load_photo("cat", size=0)
    with pytest.raises(ValueError, match="size=\\(1, 2, 3\\)"):
        load_photo("cat", size=(1, 2, 3))


# ------------------------------------------------------------------------------------------------
# CIFAR-10 offline
# ------------------------------------------------------------------------------------------------


def test_cifar10_missing_without_download_fails_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_cifar10(tmp_path)
    assert time.perf_counter() - start < 5


def test_cifar10_download_without_network_fails_fast(tmp_path: Path, no_network: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda *a, **k: pytest.fail("must not try to download"))
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot download CIFAR-10.*no network"):
        load_cifar10(tmp_path, download=True, timeout=1.0)
    assert time.perf_counter() - start < 3


def test_cifar10_download_never_hangs_on_a_stalled_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name lookup that hangs (it ignores socket timeouts) still ends in a clear error after `timeout`."""
    def stalled(*args, **kwargs):
        time.sleep(5)
        raise OSError("name lookup timed out")

    monkeypatch.setattr(socket, "create_connection", stalled)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="did not answer within 0.5 s"):
        load_cifar10(tmp_path, download=True, timeout=0.5)
    assert time.perf_counter() - start < 3
    with pytest.raises(ValueError, match="timeout=0"):
        load_cifar10(tmp_path, download=True, timeout=0)


def test_cifar10_present_loads_without_downloading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    calls: list[dict] = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", lambda root, **k: calls.append({"root": root, **k}))
    (tmp_path / "cifar-10-batches-py").mkdir()
    load_cifar10(tmp_path, train=False, download=True)
    assert calls[0]["root"] == str(tmp_path) and calls[0]["download"] is False and calls[0]["train"] is False
