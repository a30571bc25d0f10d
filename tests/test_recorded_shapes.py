"""The shape documented for each kind of attention map (``attention_maps.KINDS``) is the shape recorded.

``KINDS`` is what the chapters and docstrings quote (``"channel": "(B, C)"``...). Here every kind is
recorded from a model whose sizes are all different, and each recorded map's shape is read back through
the documented letters, so a tap that reshapes differently or a wrong line in ``KINDS`` fails.
"""

from __future__ import annotations

import pytest
import torch

from course_pkg.attention_maps import record_attention
from course_pkg.attention_tap import KINDS, AttentionTap
from course_pkg.resnet import resnet_small
from course_pkg.vit import VisionTransformer

B = 2


def _letters(kind: str) -> list[str]:
    return [s.strip() for s in KINDS[kind].strip("()").split(",")]


def test_every_kind_is_recorded_with_its_documented_shape() -> None:
    # CBAM-ResNet on 12 x 20 images: stages of 8 and 16 channels, the second at 6 x 10
    cnn = resnet_small(num_classes=3, attention="cbam", widths=(8, 16), blocks=(1, 1)).eval()
    # ViT on 16 x 24 images, patches of 4: N = 1 + 4 * 6 = 25 tokens, 3 heads
    vit = VisionTransformer(img_size=(16, 24), patch_size=4, num_classes=3, embed_dim=24, depth=1,
                            num_heads=3).eval()
    seen: dict[str, tuple[int, ...]] = {}
    with torch.no_grad():
        with record_attention(cnn) as maps:
            cnn(torch.randn(B, 3, 12, 20))
        sizes = {"B": B, "C": 16, "H": 6, "W": 10}
        for name in ("layer2.0.attn.channel", "layer2.0.attn.spatial"):
            kind = maps.kinds[name]
            assert tuple(maps[name].shape) == tuple(sizes[s] for s in _letters(kind)), (name, KINDS[kind])
            seen[kind] = tuple(maps[name].shape)
        with record_attention(vit) as maps:
            vit(torch.randn(B, 3, 16, 24))
        sizes = {"B": B, "heads": 3, "N": 25}
        kind = maps.kinds["blocks.0.attn"]
        assert tuple(maps["blocks.0.attn"].shape) == tuple(sizes[s] for s in _letters(kind)), KINDS[kind]
        seen[kind] = tuple(maps["blocks.0.attn"].shape)
    assert set(seen) == set(KINDS), "every documented kind is made by some course model"


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"kind='pixel' is not known; use one of \['channel', 'spatial', 'token'\]"):
        AttentionTap("pixel")
