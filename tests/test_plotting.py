"""course_pkg.plotting: heatmaps build headless and reject bad input clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from course_pkg.plotting import plot_attention, plot_attention_grid, to_numpy


def test_plot_attention_returns_a_figure_with_labels() -> None:
    w = torch.softmax(torch.randn(3, 4), dim=-1)
    fig = plot_attention(w, ["a", "b", "c"], ["w", "x", "y", "z"], title="weights")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert ax.get_title() == "weights"
    assert len(ax.texts) == 12  # annotated cells
    assert np.allclose(ax.images[0].get_array(), w.numpy())


def test_plot_attention_accepts_one_row_and_numpy() -> None:
    fig = plot_attention(np.array([0.2, 0.8]))
    assert fig.axes[0].images[0].get_array().shape == (1, 2)


def test_plot_attention_bad_input() -> None:
    with pytest.raises(ValueError, match="2-D matrix"):
        plot_attention(torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match="key_labels has 2 labels but the weights have 3 columns"):
        plot_attention(torch.rand(2, 3), key_labels=["a", "b"])


def test_plot_attention_grid() -> None:
    fig = plot_attention_grid(torch.rand(6, 5, 5), ncols=4, suptitle="heads")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:6] == [f"head {i}" for i in range(6)]
    with pytest.raises(ValueError, match=r"shape \(K, Nq, Nk\)"):
        plot_attention_grid(torch.rand(5, 5))
    with pytest.raises(ValueError, match="titles has 1 entries but there are 2"):
        plot_attention_grid(torch.rand(2, 3, 3), titles=["x"])


def test_to_numpy() -> None:
    assert to_numpy(torch.ones(2, requires_grad=True)).dtype == np.float64
    assert to_numpy([[1, 2]]).shape == (1, 2)


def test_display_image_maps_values_to_0_1_in_one_documented_way() -> None:
    import numpy as np
    import torch

    from course_pkg.plotting import display_image
    from course_pkg.viz import image_to_numpy
    from course_pkg.widgets import to_display_image

    assert image_to_numpy is display_image and to_display_image is display_image
    x = torch.rand(3, 4, 5)
    np.testing.assert_allclose(display_image(x), x.permute(1, 2, 0).double().numpy())      # [0, 1]: unchanged
    assert display_image(np.full((2, 2), 255, dtype=np.uint8)).max() == 1.0                 # uint8: / 255
    ringing = display_image(torch.tensor([[-0.02, 0.5], [0.5, 1.03]]))
    np.testing.assert_allclose(ringing, [[0.0, 0.5], [0.5, 1.0]])                           # small overshoot: clipped
    normalised = display_image(torch.tensor([[-2.0, 0.0], [0.0, 2.0]]))
    np.testing.assert_allclose(normalised, [[0.0, 0.5], [0.5, 1.0]])                        # far outside: min-max
