"""course_pkg.weights and course_pkg.pretrained: conversions live in one home, pretrained preprocessing in another
(parity tests of each converter live with its model: test_vit.py, test_resnet.py, test_cbam.py)."""

from __future__ import annotations

import pytest
import torch

from course_pkg import cbam, pretrained, resnet, vit


def test_the_model_files_hold_models_only() -> None:
    """Conversions live in weights, downloads in pretrained, rollout in attention_maps: no re-exports (issue 22)."""
    for module, names in ((cbam, ("convert_timm_state_dict", "convert_official_state_dict")),
                          (resnet, ("convert_timm_state_dict",)),
                          (vit, ("from_timm", "from_torchvision", "load_pretrained_timm",
                                 "PretrainedUnavailableError", "attention_rollout", "cls_rollout_map"))):
        assert not [n for n in names if hasattr(module, n)], module.__name__


def test_preprocess_follows_the_pretrained_cfg() -> None:
    cfg = {"input_size": (3, 224, 224), "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.5), "crop_pct": 0.875,
           "interpolation": "bicubic"}
    image = torch.full((3, 300, 400), 0.6)
    out = pretrained.preprocess(image, cfg)
    assert out.shape == (1, 3, 224, 224)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.5, 0.8, 0.6]))   # (0.6 - mean) / std
    ramp = torch.linspace(0, 1, 256).expand(3, 256, 256)             # 256 = 224 / 0.875: resize is a no-op
    torch.testing.assert_close(pretrained.preprocess(ramp, {**cfg, "mean": (0, 0, 0), "std": (1, 1, 1)})[0],
                               ramp[:, 16:240, 16:240])               # the centre crop
    assert pretrained.preprocessing({})["mean"] == (0.485, 0.456, 0.406)
    with pytest.raises(ValueError, match="image must be"):
        pretrained.preprocess(torch.rand(1, 8, 8), cfg)
