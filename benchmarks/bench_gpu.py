"""GPU benchmark: the course ViT-B/16 and self-attention against timm, torchvision and nn.MultiheadAttention.

Measured in one run, on one device, with interleaved timing (every round times every contender, in an order
that rotates from round to round, so a change in clocks or load hits them alike; each figure is the median
over the rounds; every timed block is bracketed by ``torch.cuda.synchronize()``):

1. **ViT-B/16 inference**: batch 256 at 224 px, bf16 autocast, ``torch.inference_mode``, eval mode;
   ours, timm's and torchvision's ViT-B/16, ours and timm's also ``torch.compile``d.
2. **ViT-B/16 training step**: batch 64, bf16 autocast, cross-entropy, ``backward``, one ``AdamW`` step
   (fused on CUDA); the same contenders.
3. **Multi-head self-attention forward + backward** (width 768, 12 heads, bf16 autocast, train mode) at
   N = 197 (batch 64), 1024 (batch 16) and 4096 (batch 4) tokens: ours, timm's ``Attention`` and
   ``nn.MultiheadAttention`` (``need_weights=False``); ours and timm's also compiled.
4. **A bf16 matrix product** (8192 x 8192 x 8192) timed in the same rounds as every group above: the
   rate the device reaches on the operation these models spend most of their FLOPs on. Each model's
   TFLOP/s (from an analytic FLOP count, checked in the run against ``torch.utils.flop_counter``) is
   reported as a share of it.

Every group of contenders holds the same weights, and the script checks in fp32 (TF32 off) that they
compute the same outputs before it times them. Ratios are ``reference time / ours`` (above 1: ours is
faster); a compiled reference is compared with our compiled model.

Run (from the repository root)::

    python benchmarks/bench_gpu.py                   # the full run on a CUDA GPU (compiles: several minutes)
    python benchmarks/bench_gpu.py --quick           # tiny sizes on the CPU: checks that the script works
    python benchmarks/bench_gpu.py --no-compile --sections attention
    python benchmarks/bench_gpu.py --json gpu.json   # also write every figure to a JSON file
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from course_pkg.vit import VisionTransformer  # noqa: E402
from course_pkg.weights import from_torchvision  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attention import build_layers  # noqa: E402
from bench_vit import vit_flops  # noqa: E402
from timing import interleaved_times, sync  # noqa: E402

SECTIONS = ("vit-infer", "vit-train", "attention")
GEMM = "bf16 GEMM"
BF16_TOL = 0.05  # compiled vs eager under bf16 autocast (8 mantissa bits), relative to the largest logit


@dataclass(frozen=True)
class Sizes:
    """Every size the benchmark uses; ``FULL`` is the GPU run, ``QUICK`` the CPU check."""

    img: int
    patch: int
    dim: int
    depth: int
    heads: int
    classes: int
    infer_batch: int
    train_batch: int
    attn_dim: int
    attn_heads: int
    attn_shapes: tuple[tuple[int, int], ...]  # (tokens N, batch B)
    gemm_n: int


FULL = Sizes(img=224, patch=16, dim=768, depth=12, heads=12, classes=1000, infer_batch=256, train_batch=64,
             attn_dim=768, attn_heads=12, attn_shapes=((197, 64), (1024, 16), (4096, 4)), gemm_n=8192)
QUICK = Sizes(img=32, patch=8, dim=64, depth=2, heads=4, classes=10, infer_batch=4, train_batch=4,
              attn_dim=64, attn_heads=4, attn_shapes=((17, 4), (65, 2), (129, 1)), gemm_n=256)


@dataclass
class Contender:
    """One thing to time: ``fn`` runs it once; ``counterpart`` names the row of ours it is compared with."""

    fn: Callable[[], None]
    flops: float
    counterpart: Optional[str] = None


# ------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------
def time_one(fn: Callable[[], None], device: torch.device) -> float:
    """Seconds of one synchronised call."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def make_gemm(n: int, device: torch.device, seconds: float) -> tuple[Callable[[], None], float]:
    """A bf16 ``n x n @ n x n`` product repeated ``k`` times per call, ``k`` so that a call lasts about
    ``seconds`` (at least once); returns the callable and its FLOPs, ``2 n^3 k``."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    c = torch.empty(n, n, device=device, dtype=torch.bfloat16)

    def once() -> None:
        torch.mm(a, b, out=c)

    for _ in range(3):
        once()
    single = min(time_one(once, device) for _ in range(3))
    k = max(1, round(seconds / single))

    def run() -> None:
        for _ in range(k):
            torch.mm(a, b, out=c)

    return run, 2.0 * n ** 3 * k


def measure(contenders: dict[str, Contender], gemm_n: int, args: argparse.Namespace, device: torch.device
            ) -> tuple[dict[str, list[float]], int]:
    """Seconds per call of every contender and of a bf16 GEMM (added as ``GEMM``), one entry per round.

    After ``args.warmup`` untimed calls of each, every round times ``inner`` back-to-back calls of each
    contender, in an order that rotates from round to round. ``inner`` makes the fastest contender's block
    last about ``args.target_s`` (on the CPU check: 1), and one GEMM call lasts about as long as the
    fastest contender's (at most ``args.target_s``; on the CPU check one product), so that no block is short
    enough for the timer's overhead to matter.
    """
    for _ in range(args.warmup):
        for c in contenders.values():
            c.fn()
    fastest = min(time_one(c.fn, device) for c in contenders.values())
    gemm, gemm_flops = make_gemm(gemm_n, device, min(fastest, args.target_s))
    contenders[GEMM] = Contender(gemm, gemm_flops)
    gemm()
    inner = max(1, math.ceil(args.target_s / fastest))
    fns = {name: c.fn for name, c in contenders.items()}
    return interleaved_times(fns, args.repeats, warmup=0, device=device, inner=inner), inner


def report(title: str, contenders: dict[str, Contender], times: dict[str, list[float]], items: int,
           item_name: str) -> dict[str, dict[str, float]]:
    """Print one table; return its figures by contender."""
    gemm_rate = contenders[GEMM].flops / statistics.median(times[GEMM])
    print(f"\n{title}")
    print(f"{'contender':<26}{'median ms':>11}{'min ms':>10}{item_name + '/s':>12}{'TFLOP/s':>10}"
          f"{'% of GEMM':>11}{'ref/ours':>10}  compared with")
    rows: dict[str, dict[str, float]] = {}
    for name, c in contenders.items():
        t = statistics.median(times[name])
        rate = c.flops / t
        row = {"median_s": t, "min_s": min(times[name]), "tflops": rate / 1e12, "gemm_share": rate / gemm_rate}
        ratio, against = "-", ""
        if c.counterpart is not None:
            row["ref_over_ours"] = t / statistics.median(times[c.counterpart])
            ratio, against = f"{row['ref_over_ours']:.3f}", c.counterpart
        per_s = "" if name == GEMM else f"{items / t:12.1f}"
        print(f"{name:<26}{1e3 * t:11.2f}{1e3 * min(times[name]):10.2f}{per_s:>12}{rate / 1e12:10.4g}"
              f"{100 * rate / gemm_rate:10.1f}%{ratio:>10}  {against}")
        rows[name] = row
    return rows


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
def build_vits(s: Sizes, device: torch.device) -> dict[str, nn.Module]:
    """Ours, timm's and torchvision's ViT with the same weights (torchvision's init, converted)."""
    from timm.models.vision_transformer import VisionTransformer as TimmViT
    from torchvision.models.vision_transformer import VisionTransformer as TorchvisionViT

    torch.manual_seed(0)
    tv = TorchvisionViT(image_size=s.img, patch_size=s.patch, num_layers=s.depth, num_heads=s.heads,
                        hidden_dim=s.dim, mlp_dim=4 * s.dim, num_classes=s.classes)
    with torch.no_grad():  # torchvision starts the head at zero; give it weights so the logits can be compared
        tv.heads.head.weight.normal_(0, 0.02)
    ours = from_torchvision(tv)
    timm_vit = TimmViT(img_size=s.img, patch_size=s.patch, embed_dim=s.dim, depth=s.depth, num_heads=s.heads,
                       num_classes=s.classes)
    timm_vit.load_state_dict(ours.state_dict(), strict=True)  # ours uses timm's keys
    return {"ours": ours.to(device), "timm": timm_vit.to(device), "torchvision": tv.to(device)}


class _NoTF32:
    """Context manager: fp32 matmuls and convolutions in full fp32 (no TF32) while checking outputs."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def check_same(outs: dict[str, torch.Tensor], what: str, tol: float = 1e-4) -> float:
    """Raise unless every output equals ours up to ``tol`` relative to ours' largest value; return the
    largest relative difference."""
    ref = outs["ours"].float()
    scale = ref.abs().max().item()
    worst = 0.0
    for name, out in outs.items():
        diff = (out.float() - ref).abs().max().item() / scale
        if not math.isfinite(diff) or diff > tol:
            raise RuntimeError(f"{what}: {name} differs from ours by {diff:.2e} of the output's scale (> {tol}); "
                               "the benchmark would compare different functions")
        worst = max(worst, diff)
    return worst


def compile_model(m: nn.Module, backend: str, mode: Optional[str], fullgraph: bool) -> nn.Module:
    kwargs: dict[str, Any] = dict(backend=backend, dynamic=False, fullgraph=fullgraph)
    if mode is not None and backend == "inductor":
        kwargs["mode"] = mode
    return torch.compile(m, **kwargs)  # type: ignore[return-value]


def first_call(name: str, fn: Callable[[], None], device: torch.device) -> None:
    """Run ``fn`` once (this compiles a compiled contender) and say how long it took."""
    seconds = time_one(fn, device)
    print(f"  first call of {name}: {seconds:.1f} s")


def attention_flops(b: int, n: int, c: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of one self-attention forward: qkv, q k^T, weights @ v, proj."""
    return float(2 * b * n * c * 3 * c + 2 * 2 * b * n * n * c + 2 * b * n * c * c)


def counted(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


# ------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------
def vit_section(kind: str, s: Sizes, args: argparse.Namespace, device: torch.device,
                models: dict[str, nn.Module]) -> dict[str, Any]:
    """``kind`` is ``"infer"`` or ``"train"``."""
    train = kind == "train"
    batch = s.train_batch if train else s.infer_batch
    ours = models["ours"]
    assert isinstance(ours, VisionTransformer)
    fwd = vit_flops(ours, batch)
    patch = batch * 2 * ours.num_patches * ours.embed_dim * ours.patch_embed.in_chans \
        * ours.patch_size[0] * ours.patch_size[1]
    # training: forward F, weight gradients F, input gradients F minus the patch projection (no image grad)
    flops = 3 * fwd - patch if train else fwd

    one = torch.randn(1, 3, s.img, s.img, device=device)
    if train:
        ours.train()
        got = counted(lambda: F.cross_entropy(ours(one, return_attention=True)[0],
                                              torch.zeros(1, dtype=torch.long, device=device)).backward())
        ours.zero_grad(set_to_none=True)
    else:
        ours.eval()
        with torch.inference_mode():
            got = counted(lambda: ours(one, return_attention=True))
    print(f"\nViT {kind}: {flops / batch / 1e9:.4g} GFLOP per image analytic; FlopCounterMode on the explicit "
          f"attention path, batch 1: ratio {got / (flops / batch):.4f}")

    x = torch.randn(batch, 3, s.img, s.img, device=device)
    y = torch.randint(0, s.classes, (batch,), device=device)
    amp = dict(device_type=device.type, dtype=torch.bfloat16)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-5, fused=device.type == "cuda")
                  for name, m in models.items()} if train else {}

    def infer_fn(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode(), torch.autocast(**amp):
                m(x)
        return run

    def train_fn(m: nn.Module, opt: torch.optim.Optimizer) -> Callable[[], None]:
        def run() -> None:
            opt.zero_grad(set_to_none=True)
            with torch.autocast(**amp):
                loss = F.cross_entropy(m(x), y)
            loss.backward()
            opt.step()
        return run

    contenders: dict[str, Contender] = {}
    compiled: dict[str, nn.Module] = {}
    for name in ("ours", "timm", "torchvision"):
        models[name].train(train)
    for name in ("ours", "timm", "torchvision"):
        m = models[name]
        fn = train_fn(m, optimizers[name]) if train else infer_fn(m)
        contenders[name] = Contender(fn, flops, None if name == "ours" else "ours")
        if not args.no_compile and name != "torchvision":
            cm = compile_model(m, args.compile_backend, args.compile_mode, fullgraph=True)
            compiled[f"{name} compiled"] = cm
            cfn = train_fn(cm, optimizers[name]) if train else infer_fn(cm)
            contenders[f"{name} compiled"] = Contender(cfn, flops, None if name == "ours" else "ours compiled")
    order = ["ours", "timm", "torchvision", "ours compiled", "timm compiled"]
    contenders = {k: contenders[k] for k in order if k in contenders}

    for name in ("ours", "timm"):  # compiled against eager logits, as timed (this call compiles)
        if f"{name} compiled" in compiled:
            grad_mode = torch.enable_grad() if train else torch.inference_mode()
            with grad_mode, torch.autocast(**amp):
                ref = models[name](x).detach().float()  # detached: free the autograd graph at once
                t0 = time.perf_counter()
                got = compiled[f"{name} compiled"](x).detach().float()
                sync(device)
            diff = (got - ref).abs().max().item() / ref.abs().max().item()
            del ref, got
            print(f"  {name} compiled: first forward {time.perf_counter() - t0:.1f} s; logits within {diff:.1e} "
                  "of eager's (relative to the largest, both bf16 autocast)")
            if not diff < BF16_TOL:
                raise RuntimeError(f"compiled {name} differs from eager by {diff:.2e} of the logits' scale "
                                   f"(> {BF16_TOL}); the compiled model computes something else")
    for name, c in contenders.items():  # compiled training: the backward compiles here
        first_call(name, c.fn, device)
    times, inner = measure(contenders, s.gemm_n, args, device)
    what = "training step (AdamW)" if train else "inference (inference_mode)"
    label = "ViT-B/16" if s == FULL else "ViT (quick sizes)"
    title = (f"{label} {what}: batch {batch}, {s.img} px, patch {s.patch}, width {s.dim}, depth "
             f"{s.depth}, bf16 autocast, {device}; median of {args.repeats} interleaved rounds x {inner} calls")
    rows = report(title, contenders, times, batch, "img")
    return {"batch": batch, "flops_per_call": flops, "rows": rows}


MHA = "nn.MultiheadAttention"


def call_attention(name: str, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Self-attention of ``x`` (B, N, C) through any of the three layers (nn.MultiheadAttention takes q, k, v)."""
    return m(x, x, x, need_weights=False)[0] if name == MHA else m(x)


def attention_group(n: int, batch: int, s: Sizes, args: argparse.Namespace, device: torch.device
                    ) -> dict[str, Any]:
    """Forward + backward of the three layers (and ours and timm's compiled) at N = ``n`` tokens."""
    from timm.layers import Attention as TimmAttention

    amp = dict(device_type=device.type, dtype=torch.bfloat16)
    torch.manual_seed(0)
    layers = build_layers(s.attn_dim, s.attn_heads, device)  # same weights; train mode, dropout 0
    layers = {"ours": layers["ours"], "timm": layers["timm Attention"], MHA: layers[MHA]}
    assert isinstance(layers["timm"], TimmAttention)

    x = torch.randn(batch, n, s.attn_dim, device=device, requires_grad=True)
    with torch.no_grad(), _NoTF32():
        check_same({k: call_attention(k, m, x) for k, m in layers.items()}, f"attention N={n}")
    grad = torch.randn(batch, n, s.attn_dim, device=device, dtype=torch.bfloat16)

    flops = 3 * attention_flops(batch, n, s.attn_dim)  # backward: input and weight gradients, 2x forward
    one = torch.randn(1, n, s.attn_dim, device=device, requires_grad=True)
    got = counted(lambda: layers["ours"](one, return_attention=True)[0].sum().backward())
    layers["ours"].zero_grad(set_to_none=True)

    def fwd_bwd(name: str, m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            m.zero_grad(set_to_none=True)
            x.grad = None
            with torch.autocast(**amp):
                y = call_attention(name, m, x)
            y.backward(grad.to(y.dtype))
        return run

    contenders: dict[str, Contender] = {
        "ours": Contender(fwd_bwd("ours", layers["ours"]), flops),
        "timm": Contender(fwd_bwd("timm", layers["timm"]), flops, "ours"),
        MHA: Contender(fwd_bwd(MHA, layers[MHA]), flops, "ours"),
    }
    print(f"\nattention N={n}: {flops / 1e9:.4g} GFLOP per fwd+bwd analytic; FlopCounterMode on the "
          f"explicit path, batch 1: ratio {got / (flops / batch):.4f}")
    if not args.no_compile:
        for name in ("ours", "timm"):
            cm = compile_model(layers[name], args.compile_backend, args.compile_mode, fullgraph=True)
            contenders[f"{name} compiled"] = Contender(fwd_bwd(name, cm), flops,
                                                       None if name == "ours" else "ours compiled")
            with torch.autocast(**amp):  # compiled against eager output, as timed (this call compiles)
                ref = layers[name](x).detach().float()
                t0 = time.perf_counter()
                got_out = cm(x).detach().float()
                sync(device)
            diff = (got_out - ref).abs().max().item() / ref.abs().max().item()
            del ref, got_out
            print(f"  {name} compiled: first forward {time.perf_counter() - t0:.1f} s; output within {diff:.1e} "
                  "of eager's (relative to the largest, both bf16 autocast)")
            if not diff < BF16_TOL:
                raise RuntimeError(f"compiled {name} attention differs from eager by {diff:.2e} (> {BF16_TOL})")
    for name, c in contenders.items():  # compiled: the backward compiles here
        first_call(name, c.fn, device)
    times, inner = measure(contenders, s.gemm_n, args, device)
    title = (f"Self-attention forward + backward: N={n}, batch {batch}, width {s.attn_dim}, {s.attn_heads} "
             f"heads, bf16 autocast, train mode, {device}; median of {args.repeats} interleaved rounds x "
             f"{inner} calls")
    return {"batch": batch, "flops_per_call": flops, "rows": report(title, contenders, times, batch * n, "token")}


def attention_section(s: Sizes, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, batch in s.attn_shapes:
        out[str(n)] = attention_group(n, batch, s, args, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the group's tensors are gone; let the next one start clean
    return out


def summary(results: dict[str, Any]) -> None:
    """The issue's targets, read off the tables above."""
    print("\nTargets (issue 9), from the tables above:")
    train = results.get("vit-train", {}).get("rows", {})
    if "timm" in train:
        r = train["timm"]["ref_over_ours"]
        print(f"  training step, timm time / ours (eager): {r:.3f} -> no slower than timm: "
              f"{'yes' if r >= 1 else 'no'}")
    if "timm compiled" in train:
        print(f"  training step, compiled, timm / ours: {train['timm compiled']['ref_over_ours']:.3f}")
    infer = results.get("vit-infer", {}).get("rows", {})
    if "ours compiled" in infer:
        share = infer["ours compiled"]["gemm_share"]
        print(f"  compiled inference, share of the GEMM rate: {100 * share:.1f}% -> at least 50%: "
              f"{'yes' if share >= 0.5 else 'no'}")
    for n, group in results.get("attention", {}).items():
        rows = group["rows"]
        print(f"  attention N={n}: nn.MultiheadAttention / ours {rows['nn.MultiheadAttention']['ref_over_ours']:.3f}"
              f", timm / ours {rows['timm']['ref_over_ours']:.3f}")
    groups = {"ViT inference": infer, "ViT training step": train,
              **{f"attention N={n}": g["rows"] for n, g in results.get("attention", {}).items()}}
    for what, rows in groups.items():
        if "ours compiled" in rows:
            speedup = rows["ours"]["median_s"] / rows["ours compiled"]["median_s"]
            print(f"  {what}: our eager time / our compiled time {speedup:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny models and sizes, few rounds (on the CPU unless --device says otherwise)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda; cpu with --quick)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 10, quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="untimed calls of each contender (default 3, quick 1)")
    p.add_argument("--target-ms", type=float, default=None,
                   help="make each timed block last about this long by repeating calls (default 25, quick 0)")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile'd contenders")
    p.add_argument("--compile-backend", default=None, help="torch.compile backend (default inductor; quick eager)")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode for inductor, e.g. max-autotune")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()

    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = [x for x in sections if x not in SECTIONS]
    if unknown or not sections:
        p.error(f"--sections={args.sections!r}: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    if args.device is None:
        if not args.quick and not torch.cuda.is_available():
            p.error("no CUDA device here: the full benchmark is meant for a GPU (on a CPU it would run for hours). "
                    "Use --quick for the CPU check, or --device cpu to run the full sizes anyway")
        args.device = "cpu" if args.quick else "cuda"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available here")
    s = QUICK if args.quick else FULL
    args.repeats = args.repeats if args.repeats is not None else (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    target_ms = args.target_ms if args.target_ms is not None else (0.0 if args.quick else 25.0)
    args.target_s = target_ms / 1e3
    args.compile_backend = args.compile_backend or ("eager" if args.quick else "inductor")
    if args.repeats < 1 or args.warmup < 0 or target_ms < 0:
        p.error(f"--repeats={args.repeats}, --warmup={args.warmup}, --target-ms={target_ms}: out of range; use "
                "--repeats >= 1, --warmup >= 0, --target-ms >= 0")

    import timm
    import torchvision

    if device.type == "cuda":
        where = (f"{torch.cuda.get_device_name(device)} (compute capability "
                 f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))}), CUDA {torch.version.cuda}")
    else:
        where = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    mode = args.compile_mode or "default"
    compile_desc = "off" if args.no_compile else f"backend {args.compile_backend}, mode {mode}"
    print(f"{where}{load}; torch {torch.__version__}, timm {timm.__version__}, torchvision "
          f"{torchvision.__version__}; compile: {compile_desc}; sizes: {'quick' if args.quick else 'full'}")
    print("ratios: reference time / ours (above 1: ours is faster); TFLOP/s from analytic FLOP counts "
          "(2 per multiply-add, matrix products only); % of GEMM: that rate over the bf16 GEMM's, same rounds")

    results: dict[str, Any] = {"device": where, "sizes": asdict(s), "torch": torch.__version__,
                               "timm": timm.__version__, "torchvision": torchvision.__version__,
                               "compile": None if args.no_compile else [args.compile_backend, args.compile_mode]}
    if "vit-infer" in sections or "vit-train" in sections:
        models = build_vits(s, device)
        with torch.no_grad(), _NoTF32():
            for m in models.values():
                m.eval()
            xs = torch.randn(2, 3, s.img, s.img, device=device)
            worst = check_same({k: m(xs) for k, m in models.items()}, "ViT logits")
        print(f"ViT logits in fp32: timm and torchvision within {worst:.1e} of ours (relative to the largest)")
        for kind in ("infer", "train"):
            if f"vit-{kind}" in sections:
                results[f"vit-{kind}"] = vit_section(kind, s, args, device, models)
        del models
    if "attention" in sections:
        results["attention"] = attention_section(s, args, device)
    summary(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        print(f"\nfigures written to {args.json}")


if __name__ == "__main__":
    main()
