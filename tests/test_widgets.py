"""The chapter 6 explorers, headless: the numbers, the slider options, the Python callbacks, the client-side
links that make the sliders work on the static page, and the frames each state shows."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

ipywidgets = pytest.importorskip("ipywidgets")

from course_pkg import widgets as W  # noqa: E402
from course_pkg.vit import VisionTransformer  # noqa: E402

# ------------------------------------------------------------------------------------------------
# The token arithmetic
# ------------------------------------------------------------------------------------------------


def test_patch_numbers_vit_base() -> None:
    n = W.patch_numbers(224, 16)
    assert (n.grid, n.num_patches, n.patch_dim, n.seq_len) == (14, 196, 768, 197)
    assert n.attn_entries == 197 * 197
    assert n.relative_cost == 1.0


@pytest.mark.parametrize("img,p,grid,patches,dim,seq", [
    (224, 32, 7, 49, 3072, 50),
    (224, 8, 28, 784, 192, 785),
    (48, 4, 12, 144, 48, 145),
    (48, 48, 1, 1, 6912, 2),
])
def test_patch_numbers_table(img: int, p: int, grid: int, patches: int, dim: int, seq: int) -> None:
    n = W.patch_numbers(img, p)
    assert (n.grid, n.num_patches, n.patch_dim, n.seq_len, n.attn_entries) == (grid, patches, dim, seq, seq * seq)


def test_relative_cost_is_the_ratio_of_attention_matrices() -> None:
    assert W.patch_numbers(224, 8).relative_cost == pytest.approx(785 ** 2 / 197 ** 2)   # ~15.9x
    assert W.patch_numbers(224, 32).relative_cost == pytest.approx(50 ** 2 / 197 ** 2)   # ~1/15.5
    assert W.patch_numbers(48, 4).relative_cost == pytest.approx(145 ** 2 / 10 ** 2)
    assert W.patch_numbers(48, 8, reference_patch=8).relative_cost == 1.0


def test_patch_numbers_grey_and_html() -> None:
    n = W.patch_numbers(8, 2, in_chans=1, reference_patch=8)
    assert n.patch_dim == 4
    html = n.to_html()
    assert "<b>16</b> patches" in html and "<b>17</b> tokens" in html and "<b>289</b>" in html


def test_patch_numbers_bad_input() -> None:
    with pytest.raises(ValueError, match="img_size=30 is not divisible by patch_size=16.*divide it: "
                                         r"\[1, 2, 3, 5, 6, 10, 15, 30\]"):
        W.patch_numbers(30, 16)
    with pytest.raises(ValueError, match="patch_size=0 is not valid"):
        W.patch_numbers(32, 0)
    with pytest.raises(ValueError, match="img_size=48 is not divisible by reference_patch=32"):
        W.patch_numbers(48, 8, reference_patch=32)


def test_patch_size_options_are_the_divisors() -> None:
    assert W.patch_size_options(32) == [1, 2, 4, 8, 16, 32]
    assert W.patch_size_options(48, min_size=2, max_size=24) == [2, 3, 4, 6, 8, 12, 16, 24]
    assert W.patch_size_options(224, min_size=8, max_size=64) == [8, 14, 16, 28, 32, 56]
    for img in (24, 48, 96, 224):
        assert all(img % p == 0 for p in W.patch_size_options(img))
    with pytest.raises(ValueError, match="no patch size in \\[5, 7\\] divides img_size=32"):
        W.patch_size_options(32, min_size=5, max_size=7)


# ------------------------------------------------------------------------------------------------
# The patch-size explorer
# ------------------------------------------------------------------------------------------------
def _image(size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def _maps(g: int, seed: int) -> np.ndarray:
    m = np.random.default_rng(seed).random((g, g))
    return m / m.sum()


@pytest.fixture(scope="module")
def patch_explorer() -> W.PatchSizeExplorer:
    return W.PatchSizeExplorer(_image(32), rollouts={4: _maps(8, 0), 8: _maps(4, 1)}, accuracies={4: 0.9, 8: 0.8},
                               predictions={4: "predicts disk (right)"}, mask=np.ones((32, 32), bool))


def test_patch_slider_options_are_divisors(patch_explorer: W.PatchSizeExplorer) -> None:
    ex = patch_explorer
    assert ex.patch_sizes == [2, 4, 8, 16]                         # divisors of 32 from 2 to 32 / 2
    assert [v for _, v in ex.slider.options] == [2, 4, 8, 16]
    assert ex.slider.value == 16 and ex.stack.selected_index == 3  # starts at the 16 x 16 reference
    assert len(ex.stack.children) == 4


def test_patch_slider_callback_updates_numbers_and_frame(patch_explorer: W.PatchSizeExplorer) -> None:
    ex = patch_explorer
    seen = {}
    for p in ex.patch_sizes:
        ex.slider.value = p                                        # what a reader does in Jupyter
        i = ex.patch_sizes.index(p)
        assert ex.stack.selected_index == i                        # the Python callback moved the stack
        assert ex.current == W.patch_numbers(32, p)
        assert ex.current.num_patches == (32 // p) ** 2 and ex.current.seq_len == (32 // p) ** 2 + 1
        page = ex.stack.children[i]
        assert page.children[0].value == ex.frames[p] == ex.shown_frame
        assert f"<b>{(32 // p) ** 2:,}</b> patches" in page.children[1].value
        seen[p] = ex.shown_frame
    assert len(set(seen.values())) == len(seen)                     # every state shows a different picture


def test_patch_explorer_jslink_ties_slider_to_stack(patch_explorer: W.PatchSizeExplorer) -> None:
    link = patch_explorer.link
    assert isinstance(link, ipywidgets.widgets.widget_link.Link)                       # jslink, not the kernel-side link
    assert link.source == (patch_explorer.slider, "index")
    assert link.target == (patch_explorer.stack, "selected_index")
    # the link is a widget model of its own, so it is saved in the widget state the static page replays
    state = ipywidgets.Widget.get_manager_state(drop_defaults=True)["state"]
    model = state[link.model_id]
    assert model["model_name"] == "LinkModel"
    assert model["state"]["source"] == [f"IPY_MODEL_{patch_explorer.slider.model_id}", "index"]
    assert model["state"]["target"] == [f"IPY_MODEL_{patch_explorer.stack.model_id}", "selected_index"]


def test_patch_explorer_pages_say_where_there_is_a_model(patch_explorer: W.PatchSizeExplorer) -> None:
    ex = patch_explorer
    html = {p: ex.stack.children[i].children[1].value for i, p in enumerate(ex.patch_sizes)}
    assert "test accuracy 90.0%; predicts disk (right)" in html[4]
    assert "test accuracy 80.0%" in html[8]
    assert "no trained model" in html[2] and "no trained model" in html[16]
    png = ex.frames[4]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(io.BytesIO(png)).size[0] > 300


def test_patch_explorer_bad_input() -> None:
    with pytest.raises(ValueError, match=r"patch_sizes \[5\] do not divide the image side 32"):
        W.PatchSizeExplorer(_image(32), patch_sizes=[4, 5])
    with pytest.raises(ValueError, match=r"rollouts are given for patch sizes \[3\]"):
        W.PatchSizeExplorer(_image(24), patch_sizes=[4, 8], rollouts={3: _maps(8, 0)})
    with pytest.raises(ValueError, match="rollout has shape \\(3, 3\\) but 4x4 patches make a 6x6 grid"):
        W.PatchSizeExplorer(_image(24), patch_sizes=[4], rollouts={4: _maps(3, 0)})
    with pytest.raises(ValueError, match="must be square"):
        W.PatchSizeExplorer(torch.rand(3, 16, 32))
    with pytest.raises(ValueError, match="initial=3 is not one of the patch sizes"):
        W.PatchSizeExplorer(_image(16), patch_sizes=[2, 4], initial=3)


def test_patch_explorer_displays_as_its_widget(patch_explorer: W.PatchSizeExplorer) -> None:
    bundle = patch_explorer._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == patch_explorer.widget.model_id
    assert "course-patch-explorer" in patch_explorer.widget._dom_classes


# ------------------------------------------------------------------------------------------------
# The head-count explorer
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def head_explorer() -> W.HeadCountExplorer:
    maps = {n: np.stack([_maps(4, 10 * n + h) for h in range(n)]) for n in (1, 2, 4)}
    return W.HeadCountExplorer(_image(16), maps, embed_dim=32, accuracies={1: 0.7, 2: 0.8, 4: 0.9})


def test_head_explorer_options_and_head_dims(head_explorer: W.HeadCountExplorer) -> None:
    ex = head_explorer
    assert ex.head_counts == [1, 2, 4]
    assert [v for _, v in ex.slider.options] == [1, 2, 4]
    assert ex.head_dims == {1: 32, 2: 16, 4: 8}
    for i, n in enumerate(ex.head_counts):
        assert list(ex.selectors[n].options) == ["all"] + [str(h) for h in range(n)]
        assert len(ex.inner[n].children) == n + 1
        info = ex.stack.children[i].children[0].value
        assert f"D / H = <b>{32 // n}</b>" in info


def test_head_explorer_callbacks(head_explorer: W.HeadCountExplorer) -> None:
    ex = head_explorer
    shown = set()
    for n in ex.head_counts:
        ex.slider.value = n
        assert ex.num_heads == n and ex.stack.selected_index == ex.head_counts.index(n)
        for h in range(n + 1):
            ex.selectors[n].index = h
            assert ex.inner[n].selected_index == h
            assert ex.shown_frame == ex.frames[n][h] == ex.inner[n].children[h].value
            shown.add(ex.shown_frame)
    assert len(shown) == sum(n + 1 for n in ex.head_counts)        # every state is its own picture


def test_head_explorer_links_are_client_side(head_explorer: W.HeadCountExplorer) -> None:
    ex = head_explorer
    assert ex.link.source == (ex.slider, "index") and ex.link.target == (ex.stack, "selected_index")
    assert len(ex.links) == len(ex.head_counts)
    for link, n in zip(ex.links, ex.head_counts):
        assert link.source == (ex.selectors[n], "index") and link.target == (ex.inner[n], "selected_index")


def test_head_explorer_bad_input() -> None:
    with pytest.raises(ValueError, match=r"head_maps\[2\] has shape \(3, 4, 4\); expected \(2, g, g\)"):
        W.HeadCountExplorer(_image(16), {2: np.zeros((3, 4, 4))}, embed_dim=8)
    with pytest.raises(ValueError, match="embed_dim=10 is not divisible by num_heads=4"):
        W.HeadCountExplorer(_image(16), {4: np.zeros((4, 4, 4))}, embed_dim=10)
    with pytest.raises(ValueError, match="head_maps is empty"):
        W.HeadCountExplorer(_image(16), {}, embed_dim=8)
    with pytest.raises(ValueError, match="head=3 is out of range; this model has 2 heads"):
        W.render_head_frame(_image(16), np.zeros((2, 4, 4)), head=3)


# ------------------------------------------------------------------------------------------------
# From models (a tiny random ViT: the maps come out of the real forward pass)
# ------------------------------------------------------------------------------------------------
def _tiny_vit(patch: int, heads: int = 2) -> VisionTransformer:
    torch.manual_seed(patch * 10 + heads)
    return VisionTransformer(img_size=16, patch_size=patch, num_classes=3, embed_dim=16, depth=2,
                             num_heads=heads).eval()


def test_maps_from_a_model() -> None:
    x = _image(16)
    roll, pred = W.rollout_map(_tiny_vit(4), x)
    assert roll.shape == (4, 4) and roll.sum() == pytest.approx(1.0, abs=1e-5) and (roll >= 0).all()
    assert 0 <= pred < 3
    maps, _ = W.cls_attention_maps(_tiny_vit(4, heads=4), x)
    assert maps.shape == (4, 4, 4)
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="layer=5 is out of range; the model has 2 layers"):
        W.cls_attention_maps(_tiny_vit(4), x, layer=5)


def test_explorers_from_models() -> None:
    x = _image(16)
    pe = W.PatchSizeExplorer.from_models(x, {4: _tiny_vit(4), 8: _tiny_vit(8)}, {4: 0.5, 8: 0.4},
                                         class_names=["a", "b", "c"], label=1, reference_patch=8)
    assert pe.patch_sizes == [2, 4, 8]
    assert pe.captions[4].startswith("test accuracy 50.0%; predicts ")
    he = W.HeadCountExplorer.from_models(x, {1: _tiny_vit(4, 1), 2: _tiny_vit(4, 2)})
    assert he.head_dims == {1: 16, 2: 8}


def test_to_display_image_layouts() -> None:
    assert W.to_display_image(torch.rand(1, 5, 5)).shape == (5, 5)
    assert W.to_display_image(np.random.rand(5, 5, 3)).shape == (5, 5, 3)
    a = W.to_display_image(torch.randn(3, 4, 4) * 3)       # a normalised image is rescaled into [0, 1]
    assert a.min() == 0.0 and a.max() == 1.0
    with pytest.raises(ValueError, match=r"image must have shape .* got \(2, 5, 5\)"):
        W.to_display_image(torch.rand(2, 5, 5))


def test_from_bundled_reads_patch_sizes_heads_and_accuracies_from_the_manifest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import course_pkg.bundled as bundled
    import course_pkg.checkpoint_manifest as checkpoint_manifest

    models = {"clutter_vit_p4": _tiny_vit(4), "clutter_vit_p8": _tiny_vit(8),
              "clutter_vit_h1": _tiny_vit(4, 1), "clutter_vit_h2": _tiny_vit(4, 2)}
    fake = [{"name": "clutter_vit_p4", "kwargs": {"patch_size": 4, "num_heads": 2}, "test_accuracy": 0.75},
            {"name": "clutter_vit_p8", "kwargs": {"patch_size": 8, "num_heads": 2}, "test_accuracy": 0.5},
            {"name": "clutter_vit_h1", "kwargs": {"patch_size": 4, "num_heads": 1}, "test_accuracy": 0.25},
            {"name": "clutter_vit_h2", "kwargs": {"patch_size": 4, "num_heads": 2}, "test_accuracy": 0.625},
            {"name": "digits_vit", "kwargs": {"patch_size": 2, "num_heads": 4}, "test_accuracy": 0.9}]
    monkeypatch.setattr(checkpoint_manifest, "manifest", lambda directory=None: fake)
    monkeypatch.setattr(bundled, "load_bundled", lambda name, device=None: models[name])
    x = _image(16)
    pe = W.PatchSizeExplorer.from_bundled(x, reference_patch=8)
    assert pe.patch_sizes == [2, 4, 8]
    assert pe.captions[4].startswith("test accuracy 75.0%") and pe.captions[8].startswith("test accuracy 50.0%")
    assert pe.captions[2] == ""                                     # no model at 2 x 2
    he = W.HeadCountExplorer.from_bundled(x)
    assert he.head_counts == [1, 2] and he.head_dims == {1: 16, 2: 8}
    assert "test accuracy of this model: <b>62.5%</b>" in he.stack.children[1].children[0].value
    with pytest.raises(ValueError, match="no bundled model is named nope\\* with a 'patch_size' argument"):
        W.PatchSizeExplorer.from_bundled(x, prefix="nope")


# ------------------------------------------------------------------------------------------------
# One concept per module; the old import paths
# ------------------------------------------------------------------------------------------------
def test_three_modules_each_hold_one_concept() -> None:
    from course_pkg import explorer_frames as F
    from course_pkg import patch_arithmetic as A

    defined_in = {
        A: ["PatchNumbers", "patch_numbers", "patch_size_options"],
        F: ["rollout_map", "cls_attention_maps", "render_patch_frame", "render_head_frame"],
        W: ["PatchSizeExplorer", "HeadCountExplorer"],
    }
    for module, names in defined_in.items():
        for name in names:
            assert getattr(module, name).__module__ == module.__name__, (module.__name__, name)
    # the arithmetic draws nothing and builds no widget; the frames build no widget
    assert not any(hasattr(A, n) for n in ("torch", "Figure", "figure_png", "ipywidgets", "record_attention"))
    assert not any(hasattr(F, n) for n in ("ipywidgets", "_widgets", "_Explorer", "PatchSizeExplorer"))
    assert not any(hasattr(W, n) for n in ("record_attention", "cls_rollout_map", "Figure", "_forward_attention"))


def test_frames_and_arithmetic_import_without_ipywidgets_or_pyplot() -> None:
    import subprocess
    import sys

    code = ("import sys, course_pkg.patch_arithmetic\n"
            "assert 'matplotlib' not in sys.modules, 'patch_arithmetic pulls in matplotlib'\n"
            "import course_pkg.explorer_frames\n"
            "bad = {'ipywidgets', 'matplotlib.pyplot'} & set(sys.modules)\n"
            "assert not bad, f'explorer_frames pulls in {bad}'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_old_import_paths_still_work() -> None:
    from course_pkg import explorer_frames as F
    from course_pkg import patch_arithmetic as A
    from course_pkg.widgets import (  # all it exported before the split
        HeadCountExplorer,
        PatchNumbers,
        PatchSizeExplorer,
        cls_attention_maps,
        figure_to_png,
        patch_numbers,
        patch_size_options,
        render_head_frame,
        render_patch_frame,
        rollout_map,
        to_display_image,
    )

    assert patch_numbers is A.patch_numbers and PatchNumbers is A.PatchNumbers
    assert patch_size_options is A.patch_size_options
    assert rollout_map is F.rollout_map and cls_attention_maps is F.cls_attention_maps
    assert render_patch_frame is F.render_patch_frame and render_head_frame is F.render_head_frame
    assert figure_to_png is F.figure_to_png and to_display_image is F.to_display_image
    assert HeadCountExplorer.__module__ == PatchSizeExplorer.__module__ == "course_pkg.widgets"
    assert sorted(W.__all__) == sorted([
        "HeadCountExplorer", "PatchNumbers", "PatchSizeExplorer", "cls_attention_maps", "figure_to_png",
        "patch_numbers", "patch_size_options", "render_head_frame", "render_patch_frame", "rollout_map",
        "to_display_image"])
    for name in W.__all__:
        source = A if hasattr(A, name) else F if hasattr(F, name) else W
        assert getattr(W, name) is getattr(source, name), name


def test_maps_are_the_recorders_maps_rescaled() -> None:
    from course_pkg.attention_maps import cls_attention_map, cls_rollout_map, record_attention

    model, x = _tiny_vit(4, heads=2), _image(16)
    with torch.no_grad(), record_attention(model) as rec:
        logits = model(x[None])
    layers = list(rec.of_kind("token").values())
    roll = cls_rollout_map(layers, 4)[0]
    heads = cls_attention_map(layers[-1], 4)[0]
    got_roll, pred = W.rollout_map(model, x)
    got_heads, _ = W.cls_attention_maps(model, x)
    assert pred == int(logits.argmax())
    np.testing.assert_array_equal(got_roll, (roll / roll.sum()).numpy())
    np.testing.assert_array_equal(got_heads, (heads / heads.sum(dim=(-2, -1), keepdim=True)).numpy())
