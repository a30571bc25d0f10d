"""The four exercises that ask the learner to use attention (issue 12, item 8): interpret a map by its
entropy (ch03), ablate SE's gates (ch04), swap CBAM's order (ch05), train attention pooling (ch06).

``test_exercises.py`` already proves for them what it proves for every exercise (the reference passes,
the stub is not attempted, each recorded mistake fails with its message) and ``test_grade.py`` that the
grader's verdicts equal ``check``'s. Here: the lessons the chapters draw from them hold on the cases, and
answers judged by properties alone pass when right and fail when wrong, whatever their exact values.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from course_pkg import exercises
from course_pkg.exercises import Case, Exercise
from course_pkg.exercises.core import CheckFailure

ENTROPY = exercises.get("ch03.attention_entropy")
ABLATION = exercises.get("ch04.se_ablation")
ORDER = exercises.get("ch05.cbam_order_gap")
TRAIN = exercises.get("ch06.train_attention_pool")


def _case(ex: Exercise, name: str) -> Case:
    return next(c for c in ex.cases if c.name == name)


# -- ch03: the entropy of a map ---------------------------------------------------------------------------
def test_entropy_of_a_random_map_is_log_n_minus_a_constant() -> None:
    """What the chapter asks the learner to explain: a map of uniform random values has an entropy about
    ln 2 - 1/2 = 0.193 nats below log(H * W), whatever its size (its weights are at most twice the mean)."""
    g = torch.Generator().manual_seed(0)
    for h in (16, 32, 64):
        maps = torch.rand(8, h, h, generator=g)
        gap = math.log(h * h) - ENTROPY.reference(maps)
        assert abs(gap.mean().item() - (math.log(2) - 0.5)) < 0.015 and (gap > 0.1).all(), (h, gap)


def test_entropy_bounds_and_invariances() -> None:
    maps = torch.rand(4, 5, 6)
    h = ENTROPY.reference(maps)
    assert h.shape == (4,) and (h >= 0).all() and (h <= math.log(30)).all()
    torch.testing.assert_close(ENTROPY.reference(maps * 7.0), h)
    torch.testing.assert_close(ENTROPY.reference(maps.flip(-1)), h)
    spot = torch.zeros(1, 3, 3)
    spot[0, 2, 0] = 0.4
    assert ENTROPY.reference(spot).item() == 0.0
    assert math.isclose(ENTROPY.reference(torch.ones(1, 3, 3)).item(), math.log(9), rel_tol=1e-6)


def test_entropy_in_bits_is_told_to_use_nats() -> None:
    text = ENTROPY.test(lambda m: ENTROPY.reference(m) / math.log(2)).summary()
    assert "log2(16)" in text and "natural logarithm" in text, text


# -- ch04: ablating SE's gates ----------------------------------------------------------------------------
def test_closing_the_noisy_channel_is_what_makes_the_classifier_right() -> None:
    acc, ablated = ABLATION.reference(*_case(ABLATION, "SE closes a noisy channel").args())
    assert acc == 1.0 and ablated < 0.8, (acc, ablated)
    acc, ablated = ABLATION.reference(*_case(ABLATION, "gates wide open").args())
    assert acc == ablated


def test_accuracy_from_probabilities_is_not_a_count_of_images() -> None:
    def mean_probability(x, y, p):  # type: ignore[no-untyped-def]
        z = x.mean(dim=(2, 3))
        g = torch.sigmoid(torch.relu(z @ p["w1"].T + p["b1"]) @ p["w2"].T + p["b2"])
        def acc(gates):  # type: ignore[no-untyped-def]
            logits = (z * gates) @ p["head_w"].T + p["head_b"]
            return logits.softmax(1)[torch.arange(len(y)), y].mean().item()
        return acc(g), acc(torch.ones_like(g))
    text = ABLATION.test(mean_probability).summary()
    assert "not a whole number of images" in text, text


# -- ch05: CBAM's order ------------------------------------------------------------------------------------
def test_channel_first_finds_the_target_spatial_first_the_distractor() -> None:
    cf, sf, gap = ORDER.reference(*_case(ORDER, "a bright distractor in another channel").args())
    assert (cf, sf) == (1.0, 0.0) and gap > 0.05


def test_equal_gates_cannot_move_the_peak() -> None:
    cf, sf, gap = ORDER.reference(*_case(ORDER, "equal channel gates").args())
    assert cf == sf and gap > 0  # the outputs differ, the peaks do not


def test_pointing_with_a_tie_breaking_rule_of_its_own_still_passes() -> None:
    """The scores are judged as fractions of images; an answer that finds the peak another way (unravel
    the index) gets the same scores."""
    def unravel(x, w1, w2, cw, cb, masks):  # type: ignore[no-untyped-def]
        def gates(t):  # type: ignore[no-untyped-def]
            mlp = lambda v: F.relu(v @ w1.T) @ w2.T  # noqa: E731
            return torch.sigmoid(mlp(t.mean((2, 3))) + mlp(t.amax((2, 3))))[:, :, None, None]
        def spatial(t):  # type: ignore[no-untyped-def]
            pooled = torch.stack([t.mean(1), t.amax(1)], 1)
            return torch.sigmoid(F.conv2d(pooled, cw, cb, padding="same"))
        def score(m):  # type: ignore[no-untyped-def]
            hits = [bool(masks[b][torch.unravel_index(m[b, 0].argmax(), m.shape[2:])]) for b in range(len(m))]
            return sum(hits) / len(hits)
        y = x * gates(x)
        z = x * spatial(x)
        out_cf, out_sf = y * spatial(y), z * gates(z)
        return score(spatial(y)), score(spatial(x)), float((out_cf - out_sf).norm() / out_cf.norm())
    assert ORDER.test(unravel).passed


# -- ch06: training ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", TRAIN.cases, ids=[c.name for c in TRAIN.cases])
def test_training_moves_the_attention_to_the_marked_token(case: Case) -> None:
    tokens, labels, init, steps, lr = case.args()
    torch.manual_seed(case.seed)
    weights, losses = TRAIN.reference(tokens, labels, init, steps, lr)
    marked = tokens[..., 0].argmax(-1)
    assert weights[torch.arange(len(marked)), marked].mean() > 0.9
    assert losses[-1] < 0.05 < losses[0]
    assert torch.equal(init["query"], torch.zeros_like(init["query"]))  # the caller's tensors are left alone


def test_training_is_judged_by_properties_not_by_equality_with_the_reference() -> None:
    """compare_values=False: an answer whose values differ from the reference's (here: losses kept in
    float64, a different but right run) passes, because every property holds."""
    assert TRAIN.compare_values is False

    def float64_losses(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
        weights, losses = TRAIN.reference(tokens, labels, init, steps, lr)
        return weights.double(), losses.double() * (1 + 1e-6)
    assert TRAIN.test(float64_losses).passed


def test_adam_instead_of_sgd_is_told_about_the_sgd_step() -> None:
    def adam(tokens, labels, init, steps, lr):  # type: ignore[no-untyped-def]
        params = [init[k].clone().requires_grad_() for k in ("query", "head_w", "head_b")]
        opt = torch.optim.Adam(params, lr=0.05)
        losses = []
        for _ in range(steps):
            q, w, b = params
            pooled = (torch.softmax(tokens @ q, -1)[..., None] * tokens).sum(1)
            loss = F.cross_entropy(pooled @ w.T + b, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            return torch.softmax(tokens @ params[0], -1), torch.tensor(losses)
    text = TRAIN.test(adam).summary()
    assert "one SGD step of size lr = 1" in text, text


def test_compare_values_false_still_checks_the_structure() -> None:
    ex = Exercise("ch99.loose", "loose", lambda x: x * 2, [Case("x", lambda: (torch.ones(3),))], hints=["h"],
                  compare_values=False)
    assert ex.test(lambda x: x * 3).passed                      # other values: no property says no
    assert "shape" in ex.test(lambda x: torch.ones(4)).summary()  # the structure is still compared

    def positive(out: object, args: tuple) -> None:
        if isinstance(out, torch.Tensor) and (out <= 0).any():
            raise CheckFailure("must be positive")
    ex = Exercise("ch99.loose2", "loose", lambda x: x * 2, [Case("x", lambda: (torch.ones(3),))], hints=["h"],
                  properties=[positive], compare_values=False)
    assert "must be positive" in ex.test(lambda x: -x).summary()
    strict = Exercise("ch99.strict", "strict", lambda x: x * 2, [Case("x", lambda: (torch.ones(3),))], hints=["h"])
    assert not strict.test(lambda x: x * 3).passed              # the default still compares values
