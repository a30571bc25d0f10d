"""Channel/spatial attention drawings (headless) and the pointing game."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_pkg.viz import (
    image_to_numpy,
    plot_cbam_maps,
    plot_channel_weights,
    plot_map_overlay,
    plot_pointing_game,
    pointing_game,
    upsample_maps,
)


def _render(fig: Figure) -> None:
    fig.canvas.draw()  # draws with the Agg canvas: fails loudly on a broken figure


def test_pointing_game_counts_hits_and_chance() -> None:
    masks = torch.zeros(4, 8, 8, dtype=torch.bool)
    masks[:, :4, :4] = True                     # the object covers a quarter of each image
    maps = torch.zeros(4, 8, 8)
    maps[0, 1, 1] = 1                           # peak on the object
    maps[1, 6, 6] = 1                           # peak off the object
    maps[2, 3, 3] = 1                           # on the object's corner pixel
    maps[3, 4, 4] = 1                           # one pixel off diagonally
    # maps at the masks' resolution: every pixel is an equally likely peak, chance = (dilated) area
    r = pointing_game(maps, masks, tolerance=0)
    assert r == {"score": 0.5, "hits": 2, "n": 4, "chance": 0.25, "area": 0.25, "tolerance": 0}
    # with one pixel of tolerance the near miss counts; chance grows with the dilated mask (5x5 of 64)
    r1 = pointing_game(maps, masks, tolerance=1)
    assert r1["hits"] == 3 and r1["chance"] == pytest.approx(25 / 64) and r1["tolerance"] == 1


def test_one_tolerance_by_default() -> None:
    from course_pkg.pointing_game import POINTING_TOLERANCE

    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, :4, :4] = True
    maps = torch.zeros(1, 8, 8)
    maps[0, 4, 4] = 1                           # one pixel off: a hit only with tolerance >= 1
    assert POINTING_TOLERANCE == 1
    assert pointing_game(maps, masks)["tolerance"] == POINTING_TOLERANCE
    assert pointing_game(maps, masks)["hits"] == 1


def test_pointing_game_upsamples_low_resolution_maps() -> None:
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 8:, 8:] = True      # bottom-right object
    masks[1, :8, :8] = True      # top-left object
    maps = torch.tensor([[[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])   # both peak bottom-right
    r = pointing_game(maps, masks, tolerance=0)
    assert r["hits"] == 1
    # a random 2x2 map peaks in one of its four cells, each the corner of its quadrant: chance 1/4
    assert r["chance"] == pytest.approx(0.25, abs=0.01)


def _centred_masks(n: int, size: int, lo: int, hi: int) -> torch.Tensor:
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[:, lo:hi, lo:hi] = True
    return masks


@pytest.mark.parametrize("map_size, tolerance", [((12, 12), 0), ((12, 12), 1), ((6, 6), 1), ((48, 48), 1)])
def test_random_maps_score_at_chance(map_size: tuple[int, int], tolerance: int) -> None:
    """Random maps, upsampled and scored like real maps, score the stated chance within its 99% interval."""
    n = 3000
    masks = _centred_masks(n, 48, 14, 30)       # a centred object covering 256 / 2304 = 11% of the image
    g = torch.Generator().manual_seed(1)
    r = pointing_game(torch.rand(n, *map_size, generator=g), masks, tolerance=tolerance)
    half = 2.576 * (r["chance"] * (1 - r["chance"]) / n) ** 0.5
    assert abs(r["score"] - r["chance"]) < half, (r, half)


def test_coarse_random_maps_peak_on_the_border_so_chance_is_below_the_area() -> None:
    """The finding of issue 12: bilinear upsampling puts a third of a coarse random map's peaks on the
    image border, so a central object's chance is well below its area (the old, wrong chance)."""
    from course_pkg.pointing_game import random_peak_distribution

    p = random_peak_distribution((12, 12), (48, 48))
    assert p.shape == (48, 48) and p.sum().item() == pytest.approx(1.0)
    border = p.sum() - p[1:-1, 1:-1].sum()
    assert border > 0.3                         # the border is 8% of the pixels
    masks = _centred_masks(2, 48, 14, 30)
    r = pointing_game(torch.rand(2, 12, 12), masks, tolerance=0)
    assert r["chance"] < 0.8 * r["area"]
    # at full resolution there is nothing to correct
    full = random_peak_distribution((48, 48), (48, 48))
    assert torch.allclose(full, torch.full((48, 48), 1 / 2304, dtype=full.dtype))


def test_pointing_game_errors() -> None:
    masks = torch.ones(2, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"maps must be \(N, h, w\), got shape \(4, 4\)"):
        pointing_game(torch.rand(4, 4), masks)
    with pytest.raises(ValueError, match=r"masks must be \(N, H, W\)"):
        pointing_game(torch.rand(2, 4, 4), masks[0])
    with pytest.raises(ValueError, match=r"maps has 3 maps but masks has 2 masks"):
        pointing_game(torch.rand(3, 4, 4), masks)
    with pytest.raises(ValueError, match=r"masks \[1\] are empty"):
        pointing_game(torch.rand(2, 4, 4), torch.stack([masks[0], torch.zeros(4, 4, dtype=torch.bool)]))
    with pytest.raises(ValueError, match=r"tolerance must be a non-negative integer"):
        pointing_game(torch.rand(2, 4, 4), masks, tolerance=-1)
    with pytest.raises(ValueError, match=r"NaN"):
        pointing_game(torch.full((2, 4, 4), float("nan")), masks)
    with pytest.raises(TypeError, match=r"maps must be a torch.Tensor or a numpy array, got list"):
        pointing_game([[[0.0]]], masks[:1])


def test_chance_helpers_validate_and_agree() -> None:
    from course_pkg.pointing_game import (
        centre_map,
        pointing_chance,
        random_peak_distribution,
        wilson_interval,
    )

    masks = _centred_masks(3, 48, 14, 30)
    assert pointing_chance(masks, (12, 12), tolerance=0) == pytest.approx(
        pointing_game(torch.rand(3, 12, 12), masks, tolerance=0)["chance"])
    c = centre_map(12, 12)
    assert c.shape == (12, 12) and c.argmax() // 12 in (5, 6)
    assert pointing_game(c.expand(3, 12, 12), masks)["score"] == 1.0   # a centred object: the prior wins
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi
    with pytest.raises(ValueError, match=r"map_size=\(0, 12\)"):
        random_peak_distribution((0, 12), (48, 48))
    with pytest.raises(ValueError, match=r"sigma=-1"):
        centre_map(12, 12, sigma=-1)
    with pytest.raises(ValueError, match=r"hits=5 and n=3"):
        wilson_interval(5, 3)


def test_upsample_and_image_conversion() -> None:
    up = upsample_maps(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), (4, 4))
    assert up.shape == (4, 4) and up[:, -1].min() > up[:, 0].max()
    assert upsample_maps(np.zeros((3, 2, 2)), (5, 6)).shape == (3, 5, 6)
    assert image_to_numpy(torch.rand(3, 5, 7)).shape == (5, 7, 3)
    assert image_to_numpy(np.full((5, 7, 3), 255, dtype=np.uint8)).max() == 1.0
    assert image_to_numpy(torch.rand(1, 5, 7)).shape == (5, 7)
    with pytest.raises(ValueError, match="image must have shape"):
        image_to_numpy(torch.rand(2, 3, 4, 5))


def test_plot_channel_weights_one_and_several_series() -> None:
    fig = plot_channel_weights(torch.rand(16), title="SE", highlight=[1, 2])
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 16
    _render(fig)
    fig = plot_channel_weights(torch.rand(3, 64), labels=["a", "b", "c"], sort=True)
    assert len(fig.axes[0].patches) == 3 * 64 and fig.axes[0].get_legend() is not None
    _render(fig)
    with pytest.raises(ValueError, match="labels has 2 entries but weights has 3 series"):
        plot_channel_weights(torch.rand(3, 8), labels=["a", "b"])
    with pytest.raises(ValueError, match=r"weights must be \(C,\) or \(K, C\)"):
        plot_channel_weights(torch.rand(2, 3, 4))


def test_plot_map_overlay_and_cbam_maps() -> None:
    img = torch.rand(3, 32, 32)
    fig = plot_map_overlay(img, torch.rand(8, 8), mask=torch.rand(32, 32) > 0.5, mark_peak=True)
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # input, overlay, colourbar
    _render(fig)
    assert len(plot_map_overlay(img, torch.rand(8, 8), side_by_side=False).axes) == 2
    with pytest.raises(ValueError, match=r"attention_map must be \(h, w\)"):
        plot_map_overlay(img, torch.rand(1, 8, 8))
    fig = plot_cbam_maps(torch.rand(2, 3, 32, 32), torch.rand(2, 16), torch.rand(2, 8, 8),
                         masks=torch.rand(2, 32, 32) > 0.5, titles=["x", "y"])
    assert len(fig.axes) == 6
    _render(fig)
    with pytest.raises(ValueError, match=r"channel_weights must be \(N, C\) with N=2"):
        plot_cbam_maps(torch.rand(2, 3, 32, 32), torch.rand(3, 16), torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match=r"spatial_maps must be \(N, h, w\) with N=2"):
        plot_cbam_maps(torch.rand(2, 3, 32, 32), torch.rand(2, 16), torch.rand(8, 8))


def test_plot_pointing_game() -> None:
    masks = torch.zeros(10, 8, 8, dtype=torch.bool)
    masks[:, :4, :4] = True
    r = pointing_game(torch.rand(10, 8, 8), masks)
    fig = plot_pointing_game(r)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 2
    _render(fig)
    fig = plot_pointing_game({"cbam": r, "random": r})
    assert len(fig.axes[0].patches) == 4
    _render(fig)
    with pytest.raises(ValueError, match="is not a pointing_game"):
        plot_pointing_game({"x": {"score": 1.0}})


def test_handmade_features_are_a_relu_conv_layer_with_named_channels() -> None:
    from course_pkg.viz import handmade_features

    img = torch.zeros(3, 40, 60)
    img[:, :, 30:] = 1.0                                   # a vertical step edge, white on the right
    f, names = handmade_features(img)
    assert f.shape == (16, 40, 60) and len(names) == 16 and len(set(names)) == 16
    assert (f >= 0).all()                                  # after the ReLU
    # a vertical edge excites the 0-degree detectors near the edge, of one sign only, and no 90-degree one
    col = f[:, 20, 27:33].amax(dim=1)
    assert col[names.index("fine 0°-")] > 0.1 and col[names.index("fine 0°+")] < 1e-6
    assert col[names.index("fine 90°+")] < 1e-6 and col[names.index("fine 90°-")] < 1e-6
    # far from the edge, the texture channels are silent; the white side is bright, the black side dark
    assert f[4:12, :, :10].abs().max() < 1e-6
    assert f[names.index("bright"), 20, 50] > 0.3 and f[names.index("dark"), 20, 5] > 0.3
    with pytest.raises(ValueError, match=r"image must be a \(3, H, W\) RGB tensor"):
        handmade_features(torch.rand(1, 40, 60))
    with pytest.raises(ValueError, match="kernel_size must be an odd integer >= 7, got 8"):
        handmade_features(img, kernel_size=8)


def test_plot_feature_maps_and_channel_names() -> None:
    from course_pkg.viz import plot_feature_maps

    fig = plot_feature_maps(torch.rand(5, 6, 9), names=list("abcde"), ncols=3)
    assert sum(ax.get_visible() and ax.axison for ax in fig.axes) == 5
    _render(fig)
    with pytest.raises(ValueError, match="names has 2 entries but features has 5 channels"):
        plot_feature_maps(torch.rand(5, 6, 9), names=["a", "b"])
    with pytest.raises(ValueError, match=r"features must be \(C, H, W\)"):
        plot_feature_maps(torch.rand(6, 9))
    fig = plot_channel_weights(torch.rand(2, 4) * 5, channel_names=list("wxyz"), ylabel="mean response")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("wxyz")
    assert fig.axes[0].get_ylim()[1] > 1                   # not clipped to the weight range
    with pytest.raises(ValueError, match="channel_names has 3 entries but weights has 4 channels"):
        plot_channel_weights(torch.rand(4), channel_names=list("abc"))
