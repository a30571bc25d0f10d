"""Chapter 1 exercises: attention as a weighted average.

1. ``softmax_weights``: turn scores into weights that are positive and sum to one along the last dimension,
   stable for large scores and for rows of very different sizes (``[[1000, 999], [-1000, -1001]]``): each row
   is shifted by its own maximum.
2. ``weighted_average``: mix value vectors with given weights.
3. ``attention_pool``: the whole step, query -> scores -> weights -> weighted sum.
"""

from __future__ import annotations

import torch

from .core import Case, CheckFailure, Exercise, Mistake, Shortcut, check_rows_sum_to_one, swapped_pair_hint
from .registry import register
from .solutions import ch01 as ref


# -- properties checked before the comparison, for clearer feedback -------------------------------------
def _rows_sum_to_one(out: object, args: tuple) -> None:
    _check_rows(out)


def _weights_sum_to_one(out: object, args: tuple) -> None:
    if isinstance(out, (tuple, list)) and len(out) == 2:  # (output, weights); other shapes: the comparison says
        _check_rows(out[1])


def _check_rows(w: object) -> None:
    check_rows_sum_to_one(w, "the weights should sum to one along the last dimension",
                          "Divide by the sum of the exponentials over the last dimension (dim=-1).")
    if isinstance(w, torch.Tensor) and w.is_floating_point() and torch.isfinite(w).all():
        if (w < 0).any():
            raise CheckFailure("some weights are negative; weights from a softmax are always positive.")


def _sum_without_keepdim(s: torch.Tensor) -> torch.Tensor:
    e = torch.exp(s - s.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1)


def _weights_untransposed_sum(w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (w * v).sum(dim=0)


# -- the exercises ---------------------------------------------------------------------------------------
softmax_weights = register(Exercise(
    id="ch01.softmax_weights",
    title="Scores to weights with a softmax",
    reference=ref.softmax_weights,
    cases=[
        Case("three scores", lambda: (torch.tensor([1.0, 2.0, 3.0]),), "a single row of scores"),
        Case("equal scores", lambda: (torch.zeros(4),), "equal scores must give equal weights (1/4 each)"),
        Case("a batch of rows", lambda: (torch.randn(5, 7),), "the softmax runs along the last dimension, row by row"),
        Case("large scores", lambda: (torch.tensor([[1000.0, 999.0, 998.0], [-1000.0, 0.0, 1000.0]]),),
             "exp(1000) overflows to inf; subtract each row's maximum first (it does not change the result)"),
        Case("rows far apart", lambda: (torch.tensor([[1000.0, 999.0], [-1000.0, -1001.0]]),),
             "each row needs its own maximum: the second row is 2000 below the first, so shifting it by the "
             "largest score of the whole tensor makes exp() underflow to 0 and the row becomes 0 / 0 = NaN"),
    ],
    hints=[
        "A softmax exponentiates each score and divides by the sum of the exponentials of its row.",
        "Use torch.exp and .sum(dim=-1, keepdim=True) so the division broadcasts row by row.",
        "For large scores, subtract scores.max(dim=-1, keepdim=True).values before exponentiating: "
        "softmax(s) = softmax(s - c) for any constant c.",
    ],
    properties=[_rows_sum_to_one],
    mistakes=[
        Mistake(lambda s: torch.exp(s) / torch.exp(s).sum(dim=-1, keepdim=True), "NaN or inf",
                "no max-subtraction: overflows on large scores",
                "exp(1000) is inf in float32 and inf / inf is NaN. Subtract each row's maximum before "
                "exp(): scores - scores.max(dim=-1, keepdim=True).values (the softmax does not change)."),
        Mistake(lambda s: torch.exp(s - s.max()) / torch.exp(s - s.max()).sum(dim=-1, keepdim=True),
                "each row needs its own maximum", "subtracts the global maximum, not each row's",
                "you subtract the maximum of the whole tensor (s - s.max()); a row far below it underflows to "
                "0 / 0 = NaN. Subtract each row's own maximum: s.max(dim=-1, keepdim=True).values."),
        Mistake(lambda s: torch.exp(s) / torch.exp(s).sum(), "sum to one", "sums over the whole tensor",
                "the denominator sums the exponentials of the whole tensor; sum each row only: "
                ".sum(dim=-1, keepdim=True)."),
        Mistake(lambda s: s / s.sum(dim=-1, keepdim=True), "", "normalises the raw scores",
                "dividing the raw scores by their sum is not a softmax (scores may be negative or sum to 0); "
                "exponentiate first."),
        Mistake(_sum_without_keepdim, "", "sums without keepdim=True",
                "the row sums lose their last axis (.sum(dim=-1) has shape (rows,)), so the division lines "
                "them up with the columns: a batch of rows either fails to broadcast or is divided by the "
                "wrong sums. Keep the axis: .sum(dim=-1, keepdim=True)."),
    ],
    shortcuts=[Shortcut(("softmax", "log_softmax", "special_softmax", "_softmax"),
                        "the exercise asks you to build the softmax from torch.exp and a sum, without "
                        "torch.softmax (or F.softmax, Tensor.softmax, nn.Softmax). Your answer is judged by its "
                        "outputs and passes, but write the steps yourself to practise what the chapter teaches.")],
))

weighted_average = register(Exercise(
    id="ch01.weighted_average",
    title="A weighted average of value vectors",
    reference=ref.weighted_average,
    cases=[
        Case("uniform weights = plain mean", lambda: (torch.full((3,), 1 / 3), torch.arange(6.0).reshape(3, 2)),
             "with equal weights the weighted average is the plain average of the rows"),
        Case("one-hot weights pick a row", lambda: (torch.tensor([0.0, 1.0, 0.0]), torch.randn(3, 4)),
             "a weight of 1 on one item returns exactly that item's value vector"),
        Case("several queries", lambda: (torch.softmax(torch.randn(2, 5), dim=-1), torch.randn(5, 3)),
             "weights of shape (m, n) and values (n, d) give one mixed vector per query: (m, d)"),
    ],
    hints=[
        "Each output is sum_i weight_i * value_i: multiply every value row by its weight, then add the rows up.",
        "That sum is exactly a matrix product: weights @ values.",
    ],
    mistakes=[
        Mistake(lambda w, v: v.mean(dim=0), "", "ignores the weights",
                "the output ignores the weights (it is the plain mean of the values): mix the value rows with "
                "the given weights, weights @ values."),
        Mistake(lambda w, v: (w[..., None] * v), "shape", "forgets to sum over the items",
                "each value row is multiplied by its weight, but the rows are never added up: sum over the items "
                "(dim=-2), or write the whole thing as weights @ values."),
        Mistake(lambda w, v: v @ w, "raised", "values @ weights",
                "the product is weights @ values: weights (m, n) times values (n, d) gives (m, d); values @ "
                "weights multiplies the wrong axes."),
        Mistake(lambda w, v: (w[..., None] * v).sum(dim=-1), "shape", "sums over the features",
                "after weighting each value row you sum over the features (dim=-1); sum over the items instead "
                "(dim=-2), or simply use weights @ values."),
        Mistake(_weights_untransposed_sum, "raised", "multiplies weights * values without an item axis",
                "weights * values lines the weights up with the last axis of values (the features), not with the "
                "items: give the weights an axis, weights[:, None] * values, and sum over the items, or use "
                "weights @ values."),
        Mistake(lambda w, v: torch.softmax(w, dim=-1) @ v, "", "applies a softmax to the weights",
                "the weights are already weights (positive, summing to one): use them as they are, weights @ "
                "values, without a softmax."),
    ],
))

attention_pool = register(Exercise(
    id="ch01.attention_pool",
    title="Attention pooling: query, keys, values",
    reference=ref.attention_pool,
    cases=[
        Case("one query", lambda: (torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
                                   torch.tensor([[10.0], [20.0], [30.0]])), "scores are dot products query . key"),
        Case("several queries", lambda: (torch.randn(4, 8), torch.randn(6, 8), torch.randn(6, 3)),
             "queries (m, d), keys (n, d), values (n, dv) -> output (m, dv) and weights (m, n)"),
        Case("sharp match", lambda: (5 * torch.eye(3), 5 * torch.eye(3), torch.arange(9.0).reshape(3, 3)),
             "a query that matches one key strongly should copy mostly that key's value"),
    ],
    hints=[
        "Three steps: scores = query @ keys.T, weights = softmax of the scores along the last dimension, "
        "output = weights @ values.",
        "Return a tuple (output, weights); the weights have one row per query and one column per key.",
        "You may reuse your softmax_weights from the first exercise, or torch.softmax(scores, dim=-1).",
    ],
    shape_hints=[swapped_pair_hint(ref.attention_pool)],
    properties=[_weights_sum_to_one],
    mistakes=[
        Mistake(lambda q, k, v: (q @ k.T @ v, q @ k.T), "", "forgets the softmax",
                "the raw scores q @ k.T are not weights; turn each row into weights with a softmax first."),
        Mistake(lambda q, k, v: (torch.softmax(q @ k.T, -1), torch.softmax(q @ k.T, -1) @ v), "order is (output, "
                "weights)", "returns (weights, output)"),
        Mistake(lambda q, k, v: (torch.softmax(q @ k.T, 0) @ v, torch.softmax(q @ k.T, 0)), "sum to one",
                "softmax over the queries instead of the keys",
                "the softmax runs over the queries (dim=0): each query's weights must sum to one over the keys, "
                "so take it along the last dimension (dim=-1)."),
        Mistake(lambda q, k, v: torch.softmax(q @ k.T, -1) @ v, "tuple", "returns only the output",
                "return a tuple (output, weights), not the output alone."),
        Mistake(lambda q, k, v: (torch.softmax(q @ k.T / q.shape[-1] ** 0.5, -1) @ v,
                                 torch.softmax(q @ k.T / q.shape[-1] ** 0.5, -1)), "values differ",
                "divides the scores by sqrt(d)",
                "this chapter's attention pool has no 1/sqrt(d) scale (chapter 2 adds it): the scores are the raw "
                "dot products, query @ keys.T."),
        Mistake(lambda q, k, v: (torch.softmax(q @ k.T, -1) @ k, torch.softmax(q @ k.T, -1)), "",
                "mixes the keys instead of the values",
                "the output mixes the keys; the keys only score, the values are what is mixed: weights @ values."),
    ],
))
