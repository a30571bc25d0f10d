"""Every course model compiles with ``torch.compile(model, fullgraph=True)`` and computes what it computes eagerly.

``fullgraph=True`` makes any graph break an error, so a model that passes here is captured as one graph: its
input checks look only at static shapes, dtypes and Python values (which dynamo turns into guards), never at a
tensor's data. Each test also asks ``torch._dynamo.explain`` for the number of graphs and breaks, so that a
failure names the reason. The backends are ``eager`` (dynamo's capture, then the captured graph runs op by op)
and, for the backward pass, ``aot_eager`` (also traces the backward with AOTAutograd): both test the capture
without the minutes of compiling kernels that ``inductor`` takes on a CPU. ``benchmarks/bench_gpu.py`` compiles
with ``inductor`` on a GPU.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
import torch
import torch._dynamo as dynamo
from torch import nn

from course_pkg.attention import MultiHeadSelfAttention, causal_mask
from course_pkg.attention_maps import record_attention, taps
from course_pkg.cbam import CBAM, ChannelAttention, SpatialAttention
from course_pkg.cnn import simple_cnn
from course_pkg.resnet import BasicBlock, Bottleneck, ResNet, resnet_small
from course_pkg.squeeze_excite import SqueezeExcitation
from course_pkg.vit import VisionTransformer

VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=10)


@pytest.fixture(autouse=True)
def fresh_dynamo() -> None:
    """Forget earlier compilations, so that no test runs into dynamo's limit on recompilations."""
    dynamo.reset()


def _tokens(b: int = 2, n: int = 5, c: int = 16) -> torch.Tensor:
    return torch.randn(b, n, c)


def _float_mask() -> torch.Tensor:
    """A (B, 1, N, N) additive mask that forbids some pairs (-inf) and biases others."""
    mask = torch.randn(2, 1, 5, 5)
    mask[:, :, 1, 3] = float("-inf")
    return mask


def _mask_with_a_blind_query() -> torch.Tensor:
    """A bool (N, N) causal mask in which query 2 may see no key at all (refused outside torch.compile)."""
    mask = causal_mask(5)
    mask[2] = False
    return mask


# name -> (builder, inputs, keyword arguments)
CASES: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple[torch.Tensor, ...]], dict[str, Any]]] = {
    "attention": (lambda: MultiHeadSelfAttention(16, 4), lambda: (_tokens(),), {}),
    "attention bool mask": (lambda: MultiHeadSelfAttention(16, 4), lambda: (_tokens(),),
                            {"mask": causal_mask(5)}),
    "attention float mask": (lambda: MultiHeadSelfAttention(16, 4), lambda: (_tokens(),), {"mask": _float_mask()}),
    "attention return_attention": (lambda: MultiHeadSelfAttention(16, 4), lambda: (_tokens(),),
                                   {"return_attention": True}),
    "attention return_attention mask": (lambda: MultiHeadSelfAttention(16, 4), lambda: (_tokens(),),
                                        {"return_attention": True, "mask": causal_mask(5)}),
    "squeeze-excitation": (lambda: SqueezeExcitation(8, reduction=2), lambda: (torch.randn(2, 8, 6, 6),), {}),
    "channel attention": (lambda: ChannelAttention(8, reduction=2), lambda: (torch.randn(2, 8, 6, 6),), {}),
    "spatial attention": (lambda: SpatialAttention(), lambda: (torch.randn(2, 8, 6, 6),), {}),
    "cbam": (lambda: CBAM(8, reduction=2), lambda: (torch.randn(2, 8, 6, 6),), {}),
    "resnet_small": (lambda: resnet_small(), lambda: (torch.randn(2, 3, 32, 32),), {}),
    "resnet_small se": (lambda: resnet_small(attention="se", widths=(8, 16), blocks=(1, 1)),
                        lambda: (torch.randn(2, 3, 32, 32),), {}),
    "resnet_small cbam": (lambda: resnet_small(attention="cbam", widths=(8, 16), blocks=(1, 1)),
                          lambda: (torch.randn(2, 3, 32, 32),), {}),
    # the ImageNet stem (7x7 convolution, max pool) of resnet18/34/50, and Bottleneck blocks with SE and CBAM,
    # at a width that keeps the test fast
    "resnet basic imagenet stem": (lambda: ResNet(BasicBlock, (1, 1), widths=(8, 16), num_classes=10),
                                   lambda: (torch.randn(2, 3, 32, 32),), {}),
    "resnet bottleneck se": (lambda: ResNet(Bottleneck, (1, 1), widths=(8, 16), num_classes=10, attention="se",
                                            reduction=4), lambda: (torch.randn(2, 3, 32, 32),), {}),
    "resnet bottleneck cbam": (lambda: ResNet(Bottleneck, (1, 1), widths=(8, 16), num_classes=10,
                                              attention="cbam", reduction=4),
                               lambda: (torch.randn(2, 3, 32, 32),), {}),
    "vit": (lambda: VisionTransformer(**VIT), lambda: (torch.randn(2, 3, 32, 32),), {}),
    "vit avg pool": (lambda: VisionTransformer(**VIT, global_pool="avg"), lambda: (torch.randn(2, 3, 32, 32),),
                     {}),
    "vit return_attention": (lambda: VisionTransformer(**VIT), lambda: (torch.randn(2, 3, 32, 32),),
                             {"return_attention": True}),
    "simple_cnn": (lambda: simple_cnn(), lambda: (torch.randn(2, 3, 16, 16),), {}),
}


def _assert_one_graph(model: nn.Module, args: tuple[torch.Tensor, ...], kwargs: dict[str, Any]) -> None:
    explanation = dynamo.explain(model)(*args, **kwargs)
    reasons = [str(r.reason) for r in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, (
        f"{explanation.graph_count} graphs, {explanation.graph_break_count} breaks: {reasons}")


def _has_attention(model: nn.Module) -> bool:
    return bool(taps(model))


@pytest.mark.parametrize("case", list(CASES))
def test_compiles_as_one_graph_and_matches_eager(case: str) -> None:
    build, inputs, kwargs = CASES[case]
    torch.manual_seed(0)
    model = build().eval()
    args = inputs()
    with torch.no_grad():
        expected = model(*args, **kwargs)
        _assert_one_graph(model, args, kwargs)
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        got = compiled(*args, **kwargs)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)  # the same ops on the same data


@pytest.mark.parametrize("case", [c for c in CASES if "attention" in c or c in (
    "squeeze-excitation", "cbam", "resnet_small se", "resnet_small cbam", "resnet bottleneck se",
    "resnet bottleneck cbam", "vit")])
def test_recorded_maps_are_the_same_when_compiled(case: str) -> None:
    """record_attention (the one way to see attention) gives the compiled model's maps, equal to eager's."""
    build, inputs, kwargs = CASES[case]
    torch.manual_seed(0)
    model = build().eval()
    assert _has_attention(model)
    args = inputs()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        with record_attention(model) as eager_maps:
            model(*args, **kwargs)
        with record_attention(model) as compiled_maps:
            compiled(*args, **kwargs)
    assert eager_maps and compiled_maps.keys() == eager_maps.keys()
    for name in eager_maps:
        torch.testing.assert_close(compiled_maps[name], eager_maps[name], rtol=0, atol=0, msg=name)


def test_blind_query_gives_zero_output_when_compiled() -> None:
    """Eager refuses a query that may see no key (issue 21); under torch.compile, where the checks that
    read a mask's values are skipped, its tokens come out as the projection of zeros (``proj.bias``), not
    NaN."""
    torch.manual_seed(0)
    layer = MultiHeadSelfAttention(16, 4).eval()
    with pytest.raises(ValueError, match="every key"):
        layer(_tokens(), mask=_mask_with_a_blind_query())
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    with torch.no_grad():
        out, weights = compiled(_tokens(), mask=_mask_with_a_blind_query(), return_attention=True)
        fused = compiled(_tokens(), mask=_mask_with_a_blind_query())
    assert torch.all(weights[:, :, 2] == 0)
    torch.testing.assert_close(out[:, 2], layer.proj.bias.expand(2, 16))
    torch.testing.assert_close(fused[:, 2], layer.proj.bias.expand(2, 16))


@pytest.mark.parametrize("case", ["attention bool mask", "vit", "cbam"])
def test_another_batch_size_needs_no_break(case: str) -> None:
    """A second batch size makes dynamo recompile with a symbolic batch: the checks must still be static."""
    build, inputs, kwargs = CASES[case]
    torch.manual_seed(0)
    model = build().eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        for batch in (2, 3, 4):
            x = inputs()[0]
            x = torch.cat([x] * 2)[:batch]
            torch.testing.assert_close(compiled(x, **kwargs), model(x, **kwargs), rtol=0, atol=0)


@pytest.mark.parametrize("case", ["vit", "resnet_small cbam", "attention float mask",
                                  "simple_cnn"])
def test_training_step_compiles_with_backward(case: str) -> None:
    """Train mode (BatchNorm updates its statistics), forward and backward traced by AOTAutograd."""
    build, inputs, kwargs = CASES[case]
    torch.manual_seed(0)
    eager = build().train()
    twin = copy.deepcopy(eager)
    compiled = torch.compile(twin, fullgraph=True, backend="aot_eager")
    x = inputs()[0]
    expected = eager(x, **kwargs)
    got = compiled(x, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    expected.square().sum().backward()
    got.square().sum().backward()
    for (name, p), q in zip(eager.named_parameters(), twin.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
    for (name, b), c in zip(eager.named_buffers(), twin.buffers()):
        torch.testing.assert_close(c, b, rtol=1e-5, atol=1e-6, msg=name)  # BatchNorm's running statistics


@pytest.mark.parametrize("model, bad, message", [
    (MultiHeadSelfAttention(16, 4), torch.randn(2, 5, 15), "last dimension 15"),
    (MultiHeadSelfAttention(16, 4), torch.randn(5, 16), "expected 3"),
    (SqueezeExcitation(8, reduction=2), torch.randn(2, 7, 6, 6), "input has 7 channels"),
    (CBAM(8, reduction=2), torch.randn(2, 7, 6, 6), "input has 7 channels"),
    (VisionTransformer(**VIT), torch.randn(2, 3, 40, 40), "does not match the model's img_size"),
    (resnet_small(), torch.randn(2, 1, 32, 32), "in_chans=3"),
    (simple_cnn(), torch.randn(2, 1, 16, 16), "SimpleCNN was built for in_chans=3"),
])
def test_compiled_models_still_explain_bad_input(model: nn.Module, bad: torch.Tensor, message: str) -> None:
    """The input checks keep working once compiled. With the default ``fullgraph=False`` dynamo runs the
    failing check eagerly and the ValueError comes out as it is; with ``fullgraph=True`` dynamo wraps it in
    its own error, whose text carries ours."""
    model.eval()
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        torch.compile(model, backend="eager")(bad)
    dynamo.reset()
    with torch.no_grad(), pytest.raises(Exception, match=message):
        torch.compile(model, fullgraph=True, backend="eager")(bad)


def test_bad_mask_still_explained_when_compiled() -> None:
    layer = MultiHeadSelfAttention(16, 4).eval()
    compiled = torch.compile(layer, backend="eager")
    with torch.no_grad():
        with pytest.raises(ValueError, match="does not broadcast"):
            compiled(_tokens(), mask=torch.ones(4, 5, dtype=torch.bool))
        with pytest.raises(ValueError, match="use a bool mask"):
            compiled(_tokens(), mask=torch.ones(5, 5, dtype=torch.long))
