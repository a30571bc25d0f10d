"""Chapter 6 exercises: the Vision Transformer, piece by piece.

1. ``count_patches``: the token arithmetic (patches, flattened patch length, sequence length with [CLS]).
2. ``patchify``: cut images into non-overlapping patches and flatten each one.
3. ``embed_patches``: patch embedding, [CLS] token and position embeddings, the ViT's input sequence.
4. ``EncoderBlock``: one pre-norm encoder layer (an ``nn.Module``) with the submodules ``norm1``, ``attn``
   (an ``nn.ModuleDict`` with ``qkv`` and ``proj``), ``norm2`` and ``mlp`` (with ``fc1`` and ``fc2``): the
   parameter names of timm's ViT blocks.
5. ``train_attention_pool``: train a tiny attention-pooling classifier with SGD on toy data where the right
   attention is known, and return what it learned; checked by properties of the training run.

How answers are run: ``.check`` runs the answer in the notebook, and the batch grader runs all your exercise
cells together, in order, in one namespace (with ``math``, ``torch``, ``nn`` and ``F``), without the chapter's
other cells and without ``course_pkg``. So an answer may call your earlier answers (your ``patchify`` in
``embed_patches``), but not the chapter's other variables or ``course_pkg`` (write the attention inline).

``count_patches`` takes Python ints (``patch_size`` dividing ``img_size``; the cases never pass floats) and
must return three Python ints: ``196.0`` is not accepted for ``196`` (use ``//``, not ``/``).

The planted wrong answers that the checks recognise (``Mistake``) are in :mod:`course_pkg.exercises.mistakes.ch06`,
apart from those that fit in a lambda.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .core import Case, CheckFailure, Exercise, Mistake, Shortcut
from .mistakes import ch06 as wrong
from .registry import register
from .solutions import ch06 as ref


# -- properties checked before the comparison, for clearer feedback -------------------------------------
def _three_ints(out: object, args: tuple) -> None:
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise CheckFailure("return a tuple of three integers: (num_patches, patch_dim, seq_len), got "
                           f"{type(out).__name__} {out!r}"[:200])
    floats = [i for i, v in enumerate(out) if isinstance(v, float)]
    if floats:
        items = ", ".join(f"output[{i}] = {out[i]!r}" for i in floats)
        raise CheckFailure(f"{items}: {'a float' if len(floats) == 1 else 'floats'}, but each count must be an "
                           "integer (int): use integer division // rather than /, which always gives a float.")


def _patch_count(out: object, args: tuple) -> None:
    images, p = args
    if isinstance(out, torch.Tensor) and out.dim() == 3:
        n = (images.shape[-2] // p) * (images.shape[-1] // p)
        if out.shape[1] != n and out.shape[2] == n:
            raise CheckFailure(f"the patches should be along dim 1 (shape (B, N, C*P*P) with N = {n}), but your "
                               f"output has shape {tuple(out.shape)}: transpose it.")


def _cls_first(out: object, args: tuple) -> None:
    images, w, b, cls, pos = args
    if not (isinstance(out, torch.Tensor) and out.shape == (images.shape[0], pos.shape[1], w.shape[0])):
        return  # a wrong shape or type: the comparison says so
    def close(t: torch.Tensor, ref: torch.Tensor) -> bool:
        return bool(torch.allclose(t.double(), ref.double().expand_as(t), atol=1e-4))
    if close(out[:, 0], cls[0, 0] + pos[0, 0]):
        return
    if close(out[:, -1], cls[0, 0] + pos[0, -1]) or close(out[:, -1], cls[0, 0]):
        raise CheckFailure("the [CLS] token should come first (token 0), not last: prepend it with "
                           "torch.cat([cls, patches], dim=1).")
    if close(out[:, 0], cls[0, 0]):
        raise CheckFailure("token 0 is the bare [CLS] token: add pos_embed to every token, [CLS] included "
                           "(pos_embed has 1 + N rows, one per position).")
    raise CheckFailure("token 0 should be the [CLS] token plus position embedding 0 "
                       "(cls_token[0, 0] + pos_embed[0, 0]).")


# -- the exercises ---------------------------------------------------------------------------------------
count_patches = register(Exercise(
    id="ch06.count_patches",
    title="Counting tokens: patches, patch length, sequence length",
    reference=ref.count_patches,
    cases=[
        Case("ViT-Base on ImageNet", lambda: (224, 16),
             "224 // 16 = 14 patches per side, 14 x 14 = 196 patches; three Python ints come back"),
        Case("bigger patches", lambda: (224, 32), "224 / 32 = 7 per side; each patch holds 32 * 32 * 3 numbers"),
        Case("small grey image", lambda: (48, 4, 1), "one channel: a 4 x 4 patch has 16 numbers"),
        Case("patch = whole image", lambda: (32, 32), "one patch, plus [CLS]: a sequence of 2 tokens"),
        Case("two channels", lambda: (32, 8, 2), "two channels: an 8 x 8 patch holds 8 * 8 * 2 = 128 numbers"),
    ],
    hints=[
        "Stride = patch size, so there are img_size // patch_size patches along each side, and the grid is square.",
        "A flattened patch holds every pixel of the patch in every channel: patch_size * patch_size * in_chans.",
        "The encoder sees one more token than there are patches: the [CLS] token. "
        "Return (num_patches, patch_dim, num_patches + 1).",
    ],
    shape_hints=[_three_ints],
    mistakes=[
        Mistake(lambda s, p, c=3: ((s / p) ** 2, p * p * c, (s / p) ** 2 + 1), "integer division //",
                "divides with / and returns floats"),
        Mistake(lambda s, p, c=3: (s // p, p * p * c, s // p + 1), "output[0] is 14 but 196 is expected",
                "counts patches along one side only",
                "img_size // patch_size is the number of patches per side; the grid is square, so there are "
                "(img_size // patch_size) ** 2 patches."),
        Mistake(lambda s, p, c=3: ((s // p) ** 2, p * p, (s // p) ** 2 + 1), "output[1]", "forgets the channels",
                "a flattened patch holds patch_size * patch_size pixels in each of the in_chans channels: "
                "patch_size * patch_size * in_chans."),
        Mistake(lambda s, p, c=3: ((s // p) ** 2, p * p * c, (s // p) ** 2), "output[2]", "forgets the [CLS] token"),
        Mistake(lambda s, p, c=3: (s // p) ** 2, "tuple of three integers", "returns only the patch count"),
        Mistake(lambda s, p, c=1: ((s // p) ** 2, p * p * c, (s // p) ** 2 + 1), "output[1]",
                "in_chans defaults to 1",
                "in_chans defaults to 3 (RGB images): def count_patches(img_size, patch_size, in_chans=3)."),
    ],
))


patchify = register(Exercise(
    id="ch06.patchify",
    title="Patchify: an image becomes a sequence of flattened patches",
    reference=ref.patchify,
    cases=[
        Case("a 4 x 4 grey image, 2 x 2 patches", lambda: (torch.arange(16.0).reshape(1, 1, 4, 4), 2),
             "pixel values 0..15 show where each pixel went: patch 0 must be [0, 1, 4, 5]"),
        Case("two RGB images", lambda: (torch.randn(2, 3, 8, 8), 4),
             "each patch is flattened channel first: all of channel 0, then channel 1, then channel 2"),
        Case("patch size 3", lambda: (torch.randn(1, 3, 6, 6), 3), "any patch size that divides the image"),
        Case("a non-square image", lambda: (torch.randn(1, 2, 4, 8), 2),
             "patches are ordered row by row: left to right, then top to bottom"),
    ],
    hints=[
        "Split each spatial axis in two with reshape: H -> (H // P, P) and W -> (W // P, P), giving "
        "(B, C, H//P, P, W//P, P).",
        "Then move the two grid axes to the front with permute(0, 2, 4, 1, 3, 5): (B, H//P, W//P, C, P, P).",
        "Finally reshape to (B, (H//P) * (W//P), C * P * P). A reshape alone, without the permute, mixes "
        "pixels from different patches.",
    ],
    shape_hints=[_patch_count],
    mistakes=[
        Mistake(lambda x, p: x.reshape(x.shape[0], -1, x.shape[1] * p * p), "values differ",
                "reshape without permute: mixes pixels of different patches"),
        Mistake(lambda x, p: x.reshape(x.shape[0], x.shape[1], x.shape[2] // p, p, x.shape[3] // p, p)
                .permute(0, 2, 4, 3, 5, 1).reshape(x.shape[0], -1, x.shape[1] * p * p), "values differ",
                "flattens channel last (p1 p2 c) instead of channel first"),
        Mistake(lambda x, p: ref.patchify(x, p).transpose(1, 2), "patches should be along dim 1",
                "returns (B, C*P*P, N)"),
        Mistake(wrong.patchify_permuted(0, 4, 2, 1, 3, 5), "values differ", "orders the patches column by column",
                "the patches are ordered row by row (left to right, then top to bottom): keep the grid axes in "
                "the order (H // P, W // P), permute(0, 2, 4, 1, 3, 5)."),
        Mistake(wrong.patchify_permuted(0, 2, 4, 1, 5, 3), "values differ", "flattens each patch column by column",
                "inside a patch the pixels are flattened row by row too, channel first: (C, P, P) in the order "
                "channel, row, column, so permute(0, 2, 4, 1, 3, 5)."),
        Mistake(wrong.patchify_square, "raised", "assumes a square image",
                "the image need not be square: split the width with W // P, W = images.shape[-1]."),
        Mistake(lambda x, p: ref.patchify(x, p).reshape(x.shape[0], x.shape[2] // p, x.shape[3] // p, -1),
                "expected shape", "keeps the grid of patches",
                "flatten the grid into one sequence axis: (B, N, C*P*P) with N = (H // P) * (W // P)."),
    ],
    shortcuts=[Shortcut(("unfold",), "the exercise asks for reshape and permute, not F.unfold. Your answer is "
                        "judged by its outputs and passes, but write the reshapes yourself to see where each pixel "
                        "goes.", modules=("torch.nn.functional",))],
))


def _embed_case(b: int, c: int, size: int, p: int, d: int):
    n = (size // p) ** 2
    return lambda: (torch.randn(b, c, size, size), torch.randn(d, c, p, p) * 0.2, torch.randn(d),
                    torch.randn(1, 1, d), torch.randn(1, 1 + n, d))


embed_patches = register(Exercise(
    id="ch06.embed_patches",
    title="The ViT's input: patch embedding, [CLS] and positions",
    reference=ref.embed_patches,
    cases=[
        Case("one grey 4 x 4 image", _embed_case(1, 1, 4, 2, 3), "4 patches of 2 x 2 -> 4 tokens of width 3, plus [CLS]"),
        Case("a batch of RGB images", _embed_case(2, 3, 8, 4, 8), "every image gets the same [CLS] token"),
        Case("more patches", _embed_case(2, 3, 12, 3, 6), "16 patches: the positions tell them apart"),
    ],
    hints=[
        "First the patch embedding: F.conv2d(images, proj_weight, proj_bias, stride=P) with P = "
        "proj_weight.shape[-1] (or patchify and multiply by proj_weight.reshape(D, -1).T, then add the bias).",
        "Turn (B, D, gh, gw) into a sequence (B, N, D) with .flatten(2).transpose(1, 2).",
        "Prepend the [CLS] token, expanded to the batch: torch.cat([cls_token.expand(B, -1, -1), x], dim=1); "
        "then add pos_embed to all 1 + N tokens.",
    ],
    properties=[_cls_first],
    mistakes=[
        Mistake(wrong.embed_without_positions, "add pos_embed to every token", "forgets the position embeddings"),
        Mistake(wrong.embed_cls_last, "should come first", "appends [CLS] at the end"),
        Mistake(wrong.embed_positions_before_cls, "[CLS] included", "adds positions to the patches only"),
        Mistake(lambda x, w, b, c, pos: ref.embed_patches(x, w, torch.zeros_like(b), c, pos), "values differ",
                "forgets the projection's bias"),
        Mistake(wrong.embed_cls_not_expanded, "raised", "does not expand [CLS] to the batch",
                "expand the [CLS] token to the batch before concatenating: cls_token.expand(B, -1, -1)."),
        Mistake(wrong.embed_stride_one, "raised", "convolves with stride 1",
                "the patch embedding is a convolution with stride = patch size (F.conv2d(..., stride=P)); with "
                "stride 1 the patches overlap and there are too many tokens."),
        Mistake(wrong.embed_no_transpose, "raised", "keeps (B, D, N) without the transpose",
                ".flatten(2) gives (B, D, N): transpose(1, 2) to get one token per row, (B, N, D)."),
    ],
))


# -- the encoder block ----------------------------------------------------------------------------------

EncoderBlock = register(Exercise(
    id="ch06.EncoderBlock",
    title="A Transformer encoder block (pre-norm)",
    reference=ref.EncoderBlock,
    kind="module",
    cases=[
        Case("2 heads, 5 tokens", lambda: ({"dim": 8, "num_heads": 2}, (torch.randn(1, 5, 8),)),
             "LayerNorm -> attention -> residual, then LayerNorm -> MLP -> residual"),
        Case("one head", lambda: ({"dim": 6, "num_heads": 1}, (torch.randn(2, 3, 6),)),
             "a single head attends with all channels"),
        Case("4 heads, mlp_ratio 2", lambda: ({"dim": 16, "num_heads": 4, "mlp_ratio": 2.0}, (torch.randn(2, 7, 16),)),
             "the MLP's hidden width is int(dim * mlp_ratio)"),
    ],
    hints=[
        "Pre-norm: each sub-layer sees a normalised copy of x, and its output is added back to x: "
        "x = x + attention(norm1(x)); then x = x + mlp(norm2(x)).",
        "Use the names the checker expects: self.norm1 and self.norm2 = nn.LayerNorm(dim, eps=1e-6); "
        "self.attn = nn.ModuleDict({'qkv': nn.Linear(dim, 3 * dim), 'proj': nn.Linear(dim, dim)}); "
        "self.mlp = nn.ModuleDict({'fc1': nn.Linear(dim, hidden), 'fc2': nn.Linear(hidden, dim)}) with "
        "hidden = int(dim * mlp_ratio).",
        "The attention, as in chapter 2: qkv = self.attn['qkv'](x).reshape(B, N, 3, H, C // H); "
        "q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0); out = F.scaled_dot_product_attention(q, k, v); "
        "then out.transpose(1, 2).reshape(B, N, C) and self.attn['proj']. The MLP: fc1, F.gelu, fc2.",
    ],
    mistakes=[
        Mistake(wrong.PostNormBlock, "forward output values differ", "post-norm instead of pre-norm",
                "this is post-norm (LayerNorm after the residual sum); the ViT block is pre-norm: "
                "x = x + attention(norm1(x)), then x = x + mlp(norm2(x))."),
        Mistake(wrong.NoResidualBlock, "forward output values differ", "no residual around the attention",
                "the residual around the attention is missing: x = x + attention(norm1(x))."),
        Mistake(wrong.ReluBlock, "forward output values differ", "ReLU instead of GELU",
                "the MLP's activation is GELU (F.gelu), not ReLU."),
        Mistake(wrong.UnscaledBlock, "forward output values differ", "scores not scaled by 1/sqrt(head_dim)",
                "the attention scores are not scaled: divide q @ k^T by sqrt(head_dim), head_dim = dim // "
                "num_heads (F.scaled_dot_product_attention does it for you)."),
        Mistake(wrong.TanhGeluBlock, "forward output values differ", "the tanh approximation of GELU",
                "the MLP uses the exact GELU (F.gelu(x), nn.GELU()), not its tanh approximation "
                "(approximate='tanh'), which differs by up to about 1e-3."),
        Mistake(wrong.NoMlpResidualBlock, "forward output values differ", "no residual around the MLP",
                "the residual around the MLP is missing: return x + mlp(norm2(x))."),
        Mistake(wrong.RenamedBlock, "missing parameters", "other submodule names"),
        Mistake(wrong.DefaultEpsBlock, "forward output values differ", "LayerNorm with PyTorch's default eps 1e-5",
                "both LayerNorms need eps=1e-6, as in timm's ViT (nn.LayerNorm(dim, eps=1e-6)); PyTorch's "
                "default 1e-5 changes the outputs slightly."),
    ],
))


# -- train_attention_pool: a training run, judged by what any right run shows ---------------------------
def _marked_tokens(b: int, n: int, d: int, k: int = 2):  # type: ignore[no-untyped-def]
    """Toy data: in each sequence one token is marked (feature 0 = 2, all others 0) and its feature 1 says the
    class (+1 or -1); the other tokens' feature 1 is a random +-1. Only the marked token tells the class."""
    def make() -> tuple:
        labels = torch.randint(0, k, (b,))
        where = torch.randint(0, n, (b,))
        tokens = torch.randn(b, n, d) * 0.5
        tokens[:, :, 0] = 0.0
        tokens[:, :, 1] = torch.randint(0, 2, (b, n)).float() * 2 - 1
        rows = torch.arange(b)
        tokens[rows, where, 0] = 2.0
        tokens[rows, where, 1] = labels.float() * 2 - 1
        init = {"query": torch.zeros(d), "head_w": torch.randn(k, d) * 0.5, "head_b": torch.zeros(k)}
        return tokens, labels, init, 40, 1.0
    return make


def _sgd_run(tokens: torch.Tensor, labels: torch.Tensor, init: dict, lr: float, steps: int,
             accumulate: bool = False) -> tuple[list[float], torch.Tensor]:
    """The checker's own run, written independently of the reference, in float64: the loss of every
    step (before its update) and the trained query ``(D,)``."""
    params = [init["query"].double().clone().requires_grad_(), init["head_w"].double().clone().requires_grad_(),
              init["head_b"].double().clone().requires_grad_()]
    t = tokens.double()
    losses, total = [], [torch.zeros_like(p) for p in params]
    for _ in range(steps):
        q, w, b = params
        pooled = torch.einsum("bn,bnd->bd", torch.softmax(torch.einsum("bnd,d->bn", t, q), dim=1), t)
        loss = F.cross_entropy(F.linear(pooled, w, b), labels)
        grads = torch.autograd.grad(loss, params)
        total = [tt + g for tt, g in zip(total, grads)] if accumulate else list(grads)
        with torch.no_grad():
            params = [(p - lr * g).requires_grad_() for p, g in zip(params, total)]
        losses.append(loss.item())
    return losses, params[0].detach()


def _sgd_losses(tokens: torch.Tensor, labels: torch.Tensor, init: dict, lr: float, steps: int,
                accumulate: bool = False) -> list[float]:
    """The checker's own first ``steps`` losses of the run (see :func:`_sgd_run`)."""
    return _sgd_run(tokens, labels, init, lr, steps, accumulate)[0]


def _shape_of_losses(out: object, args: tuple) -> None:
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[1], (list, tuple)):
        raise CheckFailure("output[1] is a Python list of losses; return it as a tensor: torch.tensor(losses).")


def _training_properties(out: object, args: tuple) -> None:
    tokens, labels, init, steps, lr = args
    weights, losses = out
    b, n, _ = tokens.shape
    if not (torch.isfinite(weights).all() and torch.isfinite(losses).all()):
        raise CheckFailure("the weights or the losses contain NaN or inf: the training diverged.")
    sums = weights.sum(dim=-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise CheckFailure(f"each row of the attention weights should sum to one over the {n} tokens of its "
                           f"sequence, but the sums are {[round(v, 4) for v in sums[:4].tolist()]}: take the "
                           "softmax of tokens @ query over the tokens (dim=-1), not over the batch.")
    # The whole run is recomputed from the same data, initial parameters and learning rate: every
    # recorded loss and the returned weights must be those of that run (a made-up curve or weights read
    # off the marked token do not pass). The first three steps get the most specific advice.
    run, query = _sgd_run(tokens, labels, init, lr, steps)
    if losses.dim() != 1 or len(losses) != steps:
        raise CheckFailure(f"the losses have shape {tuple(losses.shape)} for {steps} steps: record one loss per "
                           "step.")
    first = run[:3]
    got = [float(v) for v in losses[:3]]
    if not math.isclose(got[0], first[0], rel_tol=1e-4):
        raise CheckFailure(f"the first loss is {got[0]:.5g}, but the loss of the initial parameters is "
                           f"{first[0]:.5g}: record each step's loss before its update, and compute it as "
                           "F.cross_entropy(pooled @ head_w.T + head_b, labels) with pooled = the attention-weighted "
                           "sum of the tokens.")
    if not math.isclose(got[1], first[1], rel_tol=1e-4):
        raise CheckFailure(f"the second loss is {got[1]:.5g}, but one SGD step of size lr = {lr:g} from the initial "
                           f"parameters gives {first[1]:.5g}: update every parameter (query, head_w, head_b) by "
                           "-lr * its gradient, once per step (torch.optim.SGD(params, lr=lr), then "
                           "optimizer.step()).")
    if not math.isclose(got[2], first[2], rel_tol=1e-4):
        stale = _sgd_losses(tokens, labels, init, lr, 3, accumulate=True)[2]
        why = (" That is what you get when the gradients add up from step to step: call optimizer.zero_grad() "
               "before each loss.backward()." if math.isclose(got[2], stale, rel_tol=1e-4) else "")
        raise CheckFailure(f"the first two losses are right but the third is {got[2]:.5g} instead of "
                           f"{first[2]:.5g}: the second update is wrong.{why}")
    for i, (g, want) in enumerate(zip(losses.tolist(), run)):
        if not math.isclose(g, want, rel_tol=1e-3, abs_tol=1e-6):
            raise CheckFailure(f"the loss of step {i} is {g:.5g}, but {i} SGD steps from the initial parameters "
                               f"give {want:.5g}: every step's loss must come from the training run itself.")
    if not losses[-1] < 0.5 * losses[0]:
        raise CheckFailure(f"the loss went from {float(losses[0]):.4g} to {float(losses[-1]):.4g} in {steps} "
                           "steps: it should fall below half its start.")
    marked = tokens[..., 0].argmax(dim=-1)
    mass = weights[torch.arange(b), marked].mean().item()
    if mass < 0.5:
        raise CheckFailure(f"the returned attention puts on average {mass:.3f} of its weight on the marked token "
                           f"(uniform attention gives 1/{n} = {1 / n:.3f}), but the trained query puts more than "
                           "half of it there: return the weights of the trained query, computed after the loop.")
    trained = torch.softmax(tokens.double() @ query, dim=-1)
    if weights.shape != trained.shape or not torch.allclose(weights.double(), trained, atol=1e-3):
        raise CheckFailure("the returned weights are not softmax(tokens @ query) of the query the "
                           f"{steps} SGD steps trained: compute them from the trained query, after the loop.")


train_attention_pool = register(Exercise(
    id="ch06.train_attention_pool",
    title="Train attention to find the token that matters",
    reference=ref.train_attention_pool,
    cases=[
        Case("6 tokens, 3 features", _marked_tokens(96, 6, 3),
             "the query starts at zero (uniform attention); training should move the weight to the marked token"),
        Case("8 tokens, 4 features", _marked_tokens(128, 8, 4), "the same task with more distractors", seed=2),
    ],
    hints=[
        "Copy the initial tensors and make them trainable: query = init['query'].clone().requires_grad_() (the same "
        "for head_w and head_b), then optimizer = torch.optim.SGD([query, head_w, head_b], lr=lr).",
        "Each step: weights = torch.softmax(tokens @ query, dim=-1) (B, N); pooled = (weights[..., None] * tokens)"
        ".sum(1) (B, D); loss = F.cross_entropy(pooled @ head_w.T + head_b, labels); then optimizer.zero_grad(), "
        "loss.backward(), optimizer.step(), and keep loss.item().",
        "After the loop, under torch.no_grad(), recompute weights = torch.softmax(tokens @ query, dim=-1) and return "
        "(weights, torch.tensor(losses)).",
    ],
    shape_hints=[_shape_of_losses],
    properties=[_training_properties],
    compare_values=False,
    mistakes=[
        Mistake(wrong.train_no_zero_grad, "optimizer.zero_grad()", "forgets optimizer.zero_grad()"),
        Mistake(wrong.train_weights_before, "computed after the loop", "returns the weights from before training"),
        Mistake(wrong.train_softmax_over_batch, "over the tokens", "softmax over the batch instead of the tokens"),
        Mistake(wrong.train_no_step, "one SGD step", "never calls optimizer.step()"),
        Mistake(lambda *a: (ref.train_attention_pool(*a)[0], ref.train_attention_pool(*a)[1].tolist()),
                "torch.tensor(losses)", "returns the losses as a list"),
    ],
))
