"""One test for each bug that a review planted and the other tests missed or caught only by accident.

Issue 22 planted 20 realistic bugs, one at a time, in scratch copies of the package. Seven went
unnoticed and three were caught only by tests meant for something else. Each test here aims at one
of them, says in its docstring which bug it stands for, and fails on that bug alone (the grader's
two are in ``test_planted_grader_bugs.py``):

* an SE hidden width rounded up instead of down (every width in the other tests divides evenly);
* a ``BasicBlock`` without a shortcut projection when only its width changes (stride 1);
* label smoothing silently dropped on its way to the loss;
* gradient clipping with a ``GradScaler`` but without unscaling first;
* an exercise case's kernel size changed, so that a hard-coded padding passes;
* the scheduler stepped before the optimiser (the first step then runs at the second step's rate);
* evaluation without ``model.eval()``;
* the digits scaled by 1/255 instead of 1/16.
"""

from __future__ import annotations

from typing import Any, Callable, Optional
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from helpers import randomise_
from torch import nn

from course_pkg.cbam import CBAM
from course_pkg.data import load_digits
from course_pkg.exercises import ch05
from course_pkg.exercises.solutions import ch05 as ref05
from course_pkg.resnet import BasicBlock, Bottleneck, make_attention
from course_pkg.squeeze_excite import SqueezeExcitation, hidden_width
from course_pkg.train import evaluate, fit
from course_pkg.train.optim import cosine_schedule
from course_pkg.train.step import train_step

# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
# (channels, reduction, channels // reduction): none divides evenly, so rounding up gives one more unit
NOT_DIVIDING = [(20, 8, 2), (7, 2, 3), (24, 16, 1), (100, 16, 6)]


@pytest.mark.parametrize("channels, reduction, hidden", NOT_DIVIDING)
def test_se_hidden_width_rounds_down_when_reduction_does_not_divide(channels: int, reduction: int,
                                                                    hidden: int) -> None:
    """Bug: the bottleneck width rounded up (``ceil(C / r)``) instead of the documented ``C // r``.

    The paper, torchvision's ``SqueezeExcitation(C, C // r)`` and the chapter's exercise all floor; a
    rounded-up width changes the parameter count and no checkpoint of the floor width loads."""
    assert hidden_width(channels, reduction) == hidden
    for module in (SqueezeExcitation(channels, reduction=reduction), CBAM(channels, reduction=reduction).channel,
                   make_attention("se", channels, reduction)):
        assert module.fc1.out_channels == hidden, type(module).__name__
        assert module.fc2.in_channels == hidden, type(module).__name__
    se = SqueezeExcitation(channels, reduction=reduction)
    assert sum(p.numel() for p in se.parameters()) == 2 * channels * hidden + hidden + channels


def test_basic_block_projects_the_shortcut_when_only_the_width_changes() -> None:
    """Bug: the shortcut gets a 1x1 projection only when ``stride != 1``, not when the width changes.

    At stride 1 with 8 -> 16 channels the identity has 8 channels and cannot be added to the branch's 16."""
    torch.manual_seed(0)
    block = BasicBlock(8, 16, stride=1).eval()
    assert isinstance(block.downsample, nn.Sequential), "8 -> 16 channels at stride 1 needs a projection"
    conv, bn = block.downsample
    assert (conv.in_channels, conv.out_channels, conv.stride) == (8, 16, (1, 1)) and bn.num_features == 16
    randomise_(block)
    x = torch.randn(2, 8, 6, 5)
    with torch.no_grad():
        branch = block.bn2(block.conv2(F.relu(block.bn1(block.conv1(x)))))
        expected = F.relu(branch + bn(conv(x)))
        torch.testing.assert_close(block(x), expected)
    # the same width at stride 1 keeps the identity; a bottleneck widening by 4 always projects
    assert BasicBlock(16, 16, stride=1).downsample is None
    assert Bottleneck(64, 16, stride=1).downsample is None
    assert isinstance(Bottleneck(32, 16, stride=1).downsample, nn.Sequential)


# ------------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------------
def _flat_linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def _batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, 3, (n,), generator=g)


def _grads(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def test_label_smoothing_reaches_the_loss() -> None:
    """Bug: ``label_smoothing`` accepted by ``train_step``, ``fit`` and the command line but never given to
    the cross-entropy. The loss ``train_step`` returns, the gradient it leaves and the loss ``fit`` records
    must be those of the smoothed cross-entropy."""
    x, y = _batch()
    for smoothing in (0.0, 0.3):
        model = _flat_linear()
        with torch.no_grad():
            expected = F.cross_entropy(model(x), y, label_smoothing=smoothing)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        loss, _ = train_step(model, x, y, opt, label_smoothing=smoothing)
        torch.testing.assert_close(loss, expected, msg=f"label_smoothing={smoothing}")
        twin = _flat_linear()
        F.cross_entropy(twin(x), y, label_smoothing=smoothing).backward()
        torch.testing.assert_close(_grads(model), _grads(twin))
    plain = F.cross_entropy(_flat_linear()(x), y)
    assert abs(expected.item() - plain.item()) > 0.05, "the smoothed loss must differ from the plain one"

    # fit: one epoch of one batch records the loss of the untouched model (the loss comes before the step)
    model = _flat_linear()
    with torch.no_grad():
        expected = F.cross_entropy(model(x), y, label_smoothing=0.3).item()
    history = fit(model, (x, y), epochs=1, batch_size=len(y), label_smoothing=0.3, device="cpu",
                  progress=False, amp="off")
    assert history.last["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_the_command_line_passes_label_smoothing_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same bug one level up: ``--label-smoothing`` parsed but not handed to ``fit``."""
    from course_pkg.cli import train as cli

    class Captured(Exception):
        pass

    seen: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(cli, "fit", spy)
    with pytest.raises(Captured):
        cli.main(["--model", "simple_cnn", "--dataset", "digits", "--epochs", "1", "--device", "cpu",
                  "--label-smoothing", "0.25", "--no-progress", "--quiet"])
    assert seen.get("label_smoothing") == 0.25


def test_amp_gradient_clipping_unscales_first() -> None:
    """Bug: with a ``GradScaler``, the gradients clipped while still multiplied by the loss scale.

    Clipping the scaled gradients to ``c`` and letting ``scaler.step`` unscale them afterwards leaves a norm
    of ``c / scale`` (here 1e-3 / 4096): the step is thousands of times too small. ``train_step`` documents
    that the gradients left in the parameters are the clipped true ones, so their norm must be ``c``."""
    x, y = _batch()
    model = _flat_linear()
    free_opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(model, x, y, free_opt)
    assert _grads(model).norm() > 0.1, "the clip must bind"

    clip = 1e-3
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    assert scaler.is_enabled()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    train_step(model, x, y, opt, scaler, grad_clip=clip)
    assert _grads(model).norm().item() == pytest.approx(clip, rel=1e-4)
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    assert step.norm().item() == pytest.approx(clip, rel=1e-4), "SGD with lr 1 moves by the clipped gradient"


class _Recorder(nn.Module):
    """Logits ``(w, -w, 0)`` for every image; records ``w`` and the mode at every call.

    With every label 0 the gradient of ``w`` keeps its sign, so AdamW (no weight decay) moves ``w`` by the
    step's learning rate at every step, up to the slow change of the gradient."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[float] = []
        self.modes: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(self.w.item())
        self.modes.append(self.training)
        row = torch.stack([self.w, -self.w, torch.zeros_like(self.w)])          # (3,)
        return row.expand(x.shape[0], 3)                                        # (B, 3)


def test_every_step_runs_at_its_scheduled_learning_rate() -> None:
    """Bug: ``scheduler.step()`` before ``optimizer.step()``: every step takes the next step's rate (and the
    last one 0). ``history["lr"]`` reads the rate at each epoch's start, so it cannot tell; the weights can:
    step ``t`` must move ``w`` by ``lr * factor(t)``."""
    model = _Recorder()
    images, labels = torch.zeros(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
    lr = 1e-3
    fit(model, (images, labels), epochs=2, batch_size=4, lr=lr, weight_decay=0.0, warmup_epochs=0.5,
        device="cpu", progress=False, amp="off")
    weights = model.seen + [model.w.item()]                                     # before each step, and after
    moves = [b - a for a, b in zip(weights, weights[1:])]
    factor = cosine_schedule(4, warmup_steps=1)                                 # 2 epochs x 2 steps, 1 warm-up
    expected = [lr * factor(t) for t in range(4)]                               # 1, 1, 0.75, 0.25 (x lr)
    assert expected[-1] > 0 and len(set(expected)) == 3
    assert moves == pytest.approx(expected, rel=0.02), (moves, expected)
    assert all(model.modes), "fit trains in train mode"


class _ModeDependent(nn.Module):
    """Right in eval mode, wrong in train mode: the label is written in pixel (0, 0) of each image."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        right = F.one_hot(x[:, 0, 0, 0].long(), 3).float() * 10.0              # (B, 3)
        return (-right if self.training else right) + 0.0 * self.w             # (B, 3)


def test_evaluation_runs_in_eval_mode() -> None:
    """Bug: ``evaluate`` (and ``fit``'s validation) scoring a model left in train mode, where dropout drops
    and BatchNorm uses the batch's statistics. This model is right only in eval mode."""
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    model = _ModeDependent().train()
    assert evaluate(model, (images, labels), batch_size=3) == 1.0
    assert model.training, "evaluate puts the model back in its mode"
    history = fit(model, (images, labels), (images, labels), epochs=2, batch_size=4, lr=1e-3, device="cpu",
                  progress=False, amp="off")
    assert history["train_acc"] == [0.0, 0.0], "training runs in train mode"
    assert history["val_acc"] == [1.0, 1.0], "validation runs in eval mode"


def test_a_dropout_model_scores_the_same_every_time() -> None:
    """The same bug on a real layer: with dropout active two evaluations of the same model would differ."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.9), nn.Linear(12, 3)).train()
    x, y = _batch(64)
    first = evaluate(model, (x, y))
    with torch.no_grad():
        want = (model.eval()(x).argmax(1) == y).float().mean().item()
    model.train()
    assert [evaluate(model, (x, y)) for _ in range(3)] == pytest.approx([first] * 3)
    assert first == pytest.approx(want)


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
def test_digits_are_scaled_from_0_16_to_0_1() -> None:
    """Bug: the digits divided by 255 (an 8-bit image's range) instead of 16 (scikit-learn's 0-16 counts).

    Every pixel is then below 0.07: a network still learns something, so accuracy tests pass."""
    from sklearn.datasets import load_digits as sk_digits

    images, labels = load_digits("all")
    raw = torch.as_tensor(sk_digits().images, dtype=torch.float32)              # (1797, 8, 8), 0..16
    torch.testing.assert_close(images[:, 0] * 16, raw, rtol=0, atol=1e-5)
    assert images.min().item() == 0.0 and images.max().item() == 1.0
    per_image_max = images.flatten(1).amax(1)
    assert per_image_max.median().item() == 1.0, "most digits have a fully inked pixel"
    train, _ = load_digits("train")
    assert train.max().item() == 1.0


# ------------------------------------------------------------------------------------------------
# Exercises
# ------------------------------------------------------------------------------------------------
def _conv_with_padding(padding: Optional[int]) -> Callable[..., torch.Tensor]:
    """``F.conv2d`` with its padding fixed (``None``: ``k // 2``, the right one)."""
    real = F.conv2d

    def conv(inp: torch.Tensor, weight: torch.Tensor, bias: Any = None, stride: Any = 1, *_: Any,
             **__: Any) -> torch.Tensor:
        return real(inp, weight, bias, stride, weight.shape[-1] // 2 if padding is None else padding)
    return conv


def _spatial_map_padded(padding: Optional[int]) -> Callable[..., torch.Tensor]:
    def spatial_map(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(_conv_with_padding(padding)(pooled, weight, bias))[:, 0]
    return spatial_map


def _cbam_block_padded(padding: Optional[int]) -> type:
    class CBAMBlock(ref05.CBAMBlock):
        def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
            super().__init__(channels, reduction, kernel_size)
            self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2 if padding is None else padding)
    return CBAMBlock


def _order_gap_padded(padding: Optional[int]) -> Callable[..., tuple]:
    def cbam_order_gap(*args: Any) -> tuple:
        with mock.patch.object(F, "conv2d", _conv_with_padding(padding)):
            return ref05.cbam_order_gap(*args)
    return cbam_order_gap


HARD_CODED_PADDING = {
    "spatial_map": (ch05.spatial_map, _spatial_map_padded),
    "CBAMBlock": (ch05.CBAMBlock, _cbam_block_padded),
    "cbam_order_gap": (ch05.cbam_order_gap, _order_gap_padded),
}


@pytest.mark.parametrize("name", list(HARD_CODED_PADDING))
def test_a_hard_coded_padding_fails_the_kernel_size_exercises(name: str) -> None:
    """Bug: a case's kernel size changed (3 -> 7) so that every case uses one size; an answer that writes
    ``padding=3`` (right for 7 only) or ``padding=1`` (right for 3 only) instead of ``k // 2`` then passes.
    The cases must mix kernel sizes so that both fail. The same stand-in with ``k // 2`` passes, so only
    the hard-coding is judged."""
    ex, make = HARD_CODED_PADDING[name]
    assert ex.test(make(None)).passed, ex.test(make(None)).summary()
    for padding in (1, 3):
        result = ex.test(make(padding))
        assert not result.passed, f"{ex.id} passes with padding={padding} hard-coded: {result.summary()}"
