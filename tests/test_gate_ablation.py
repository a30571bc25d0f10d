"""course_pkg.gate_ablation and gate_stats: each ablation replaces exactly what it says."""

from __future__ import annotations

import pytest
import torch

from course_pkg.attention_maps import record_attention
from course_pkg.cbam import CBAM
from course_pkg.gate_ablation import ablate_gates, gate_means
from course_pkg.gate_stats import map_saturation, variance_explained
from course_pkg.resnet import resnet_small
from course_pkg.squeeze_excite import SqueezeExcitation


@pytest.fixture()
def se() -> SqueezeExcitation:
    torch.manual_seed(0)
    return SqueezeExcitation(8, reduction=2).eval()


def _weights(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad(), record_attention(module) as rec:
        module(x)
    return rec[""][:, :, None, None]


def test_ones_passes_the_input_through(se) -> None:
    x = torch.randn(3, 8, 5, 5)
    with torch.no_grad(), ablate_gates(se, "channel", "ones"):
        assert torch.equal(se(x), x)


def test_image_mean_keeps_each_images_scale(se) -> None:
    x = torch.randn(3, 8, 5, 5)
    w = _weights(se, x)                                   # (3, 8, 1, 1)
    with torch.no_grad(), ablate_gates(se, "channel", "image_mean"):
        out = se(x)
    torch.testing.assert_close(out, x * w.mean(dim=1, keepdim=True))


def test_static_uses_the_reference_mean_for_every_image(se) -> None:
    ref = torch.randn(20, 8, 5, 5)
    means = gate_means(se, ref, "channel", batch_size=7)          # batches of 7: 7 + 7 + 6
    torch.testing.assert_close(means[""], _weights(se, ref).mean(0))
    x = torch.randn(3, 8, 5, 5)
    with torch.no_grad(), ablate_gates(se, "channel", "static", means):
        out = se(x)
    torch.testing.assert_close(out, x * means[""])
    one = x[:1]                                # the mean over one image is that image's own gate
    with torch.no_grad(), ablate_gates(se, "channel", "static", gate_means(se, one, "channel")):
        torch.testing.assert_close(se(one), one * _weights(se, one))


def test_the_gates_come_back_also_after_an_error(se) -> None:
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        before = se(x)
        with pytest.raises(RuntimeError, match="boom"):
            with ablate_gates(se, "channel", "ones"):
                raise RuntimeError("boom")
        assert torch.equal(se(x), before)


def test_spatial_gates_of_cbam_only() -> None:
    torch.manual_seed(0)
    cbam = CBAM(8, reduction=2).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        with ablate_gates(cbam, "spatial", "ones"):
            only_channel = cbam(x)
        torch.testing.assert_close(only_channel, cbam.channel(x))
        means = gate_means(cbam, x, "spatial")
        assert means["spatial"].shape == (1, 6, 6)
    with pytest.raises(ValueError, match="no spatial gate"):
        with ablate_gates(resnet_small(num_classes=2, attention="se"), "spatial", "ones"):
            pass
    with pytest.raises(ValueError, match="no channel gate"):
        gate_means(resnet_small(num_classes=2), torch.randn(2, 3, 32, 32), "channel")


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "token", "mode": "ones"}, "kind='token'"),
    ({"kind": "channel", "mode": "zeros"}, "mode='zeros'"),
    ({"kind": "channel", "mode": "static"}, "needs reference"),
    ({"kind": "channel", "mode": "ones", "reference": {}}, "static' only"),
    ({"kind": "channel", "mode": "static", "reference": {"other": torch.ones(8, 1, 1)}}, "no mean gate")])
def test_bad_arguments_are_named(se, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        with ablate_gates(se, **kwargs):
            pass


def test_variance_explained() -> None:
    g = torch.Generator().manual_seed(0)
    groups = torch.randint(0, 4, (1000,), generator=g)
    switch = torch.eye(4)[groups]                                  # a gate that is the class, one-hot
    assert variance_explained(switch, groups) == pytest.approx(1.0)
    noise = torch.rand(1000, 6, generator=g)
    assert variance_explained(noise, groups) < 0.02                # about (4 - 1) / 1000 by chance
    half = switch + torch.rand(1000, 4, generator=g) * 0.0         # same with columns kept
    assert variance_explained(torch.cat([half, torch.zeros(1000, 2)], 1), groups) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="groups"):
        variance_explained(noise, groups.float())
    with pytest.raises(ValueError, match="do not vary"):
        variance_explained(torch.ones(10, 3), torch.zeros(10, dtype=torch.long))


def test_map_saturation() -> None:
    maps = torch.full((2, 4, 4), 0.95)
    maps[:, 0, 0] = 0.2                                            # one low cell per map
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, :2, :2] = True                                        # the object covers cell (0, 0)
    s = map_saturation(maps, masks)
    assert s["share_above"] == pytest.approx(15 / 16)
    assert s["mean_on"] == pytest.approx(0.2) and s["mean_off"] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="multiple"):
        map_saturation(maps, torch.zeros(2, 7, 7, dtype=torch.bool))
