"""ViT-B/16 inference speed: the course ViT against timm and torchvision, measured in one run.

All three models hold the same weights (the course model and torchvision's are converted from timm's), run in
fp32 under ``torch.inference_mode`` on the CPU, and are timed in interleaved rounds (ours, timm, torchvision,
then a reference matrix product, round after round), so a change in machine load hits all of them alike.
Each figure is the median over the rounds. The script prints:

* the median time per batch and images per second of each model;
* the ratio reference time / our time (1.0 = as fast; > 1 = ours is faster);
* the achieved GFLOP/s, from an analytic FLOP count checked against ``torch.utils.flop_counter``;
* this machine's fp32 matrix-multiply rate (a large ``torch.mm``, timed in the same rounds), and the share
  of it each model reaches.

Usage::

    python benchmarks/bench_vit.py            # batch 8 at 224 px, 7 rounds
    python benchmarks/bench_vit.py --quick    # batch 2, 3 rounds: checks the script works
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from course_pkg.vit import VisionTransformer  # noqa: E402
from course_pkg.weights import from_timm  # noqa: E402


def vit_flops(model: VisionTransformer, batch: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of one forward pass: patch projection, every matmul, the head.

    Softmax, LayerNorm, GELU and the additions are left out (well under 1% for ViT-B/16).
    """
    d, n = model.embed_dim, model.num_patches + 1
    ph, pw = model.patch_size
    c = model.patch_embed.in_chans
    hidden = model.blocks[0].mlp.fc1.out_features
    patch = 2 * model.num_patches * d * c * ph * pw
    per_block = (2 * n * d * 3 * d      # qkv projection
                 + 2 * 2 * n * n * d    # q k^T and weights @ v, all heads together
                 + 2 * n * d * d        # output projection
                 + 2 * 2 * n * d * hidden)  # the two MLP layers
    head = 2 * d * model.num_classes
    return float(batch * (patch + len(model.blocks) * per_block + head))


def counted_flops(model: VisionTransformer, x: torch.Tensor) -> float:
    """FLOPs that ``FlopCounterMode`` counts on the explicit attention path (no CPU rule for fused SDPA)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, return_attention=True)
    return float(counter.get_total_flops())


def time_once(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 2, 3 rounds, a smaller matrix product")
    parser.add_argument("--batch", type=int, default=None, help="images per batch (default 8, quick 2)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 7, quick 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    batch = args.batch or (2 if args.quick else 8)
    rounds = args.rounds or (3 if args.quick else 7)
    mm_n = 1024 if args.quick else 2048
    if args.threads:
        torch.set_num_threads(args.threads)

    import timm
    import torchvision

    torch.manual_seed(0)
    reference = timm.create_model("vit_base_patch16_224", pretrained=False).eval()
    with torch.no_grad():  # timm starts the head at zero; give it weights so the logits can be compared
        reference.head.weight.normal_(0, 0.02)
    ours = from_timm(reference).eval()
    tv = torchvision.models.vit_b_16(weights=None).eval()
    tv_sd = {}
    for k, v in ours.state_dict().items():  # the STYLE.md key map, the other way round
        k = k.replace("cls_token", "class_token").replace("pos_embed", "encoder.pos_embedding")
        k = k.replace("patch_embed.proj.", "conv_proj.").replace("head.", "heads.head.")
        k = "encoder.ln." + k[5:] if k.startswith("norm.") else k
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            for a, b in (("norm1.", "ln_1."), ("norm2.", "ln_2."),
                         ("attn.qkv.weight", "self_attention.in_proj_weight"),
                         ("attn.qkv.bias", "self_attention.in_proj_bias"),
                         ("attn.proj.", "self_attention.out_proj."),
                         ("mlp.fc1.", "mlp.0."), ("mlp.fc2.", "mlp.3.")):
                rest = rest.replace(a, b)
            k = f"encoder.layers.encoder_layer_{i}.{rest}"
        tv_sd[k] = v
    tv.load_state_dict(tv_sd, strict=True)

    x = torch.randn(batch, 3, 224, 224)
    a, b = torch.randn(mm_n, mm_n), torch.randn(mm_n, mm_n)
    models = {"course_pkg": ours, "timm": reference, "torchvision": tv}
    with torch.inference_mode():
        outs = {name: m(x) for name, m in models.items()}  # also the warm-up
        for name in ("timm", "torchvision"):
            diff = (outs[name] - outs["course_pkg"]).abs().max().item()
            print(f"max |logits - {name}| = {diff:.2e}")
        torch.mm(a, b)
        times: dict[str, list[float]] = {name: [] for name in [*models, "mm"]}
        for _ in range(rounds):
            for name, m in models.items():
                times[name].append(time_once(lambda m=m: m(x)))
            times["mm"].append(time_once(lambda: torch.mm(a, b)))

    flops = vit_flops(ours, batch)
    counted = counted_flops(ours, x[:1]) * batch
    mm_rate = 2 * mm_n ** 3 / statistics.median(times["mm"]) / 1e9
    print(f"\nViT-B/16, batch {batch}, 224 px, fp32, CPU ({platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}), "
          f"torch {torch.__version__}, timm {timm.__version__}, torchvision {torchvision.__version__}; "
          f"median of {rounds} interleaved rounds")
    print(f"FLOPs per batch: {flops / 1e9:.1f} G analytic ({counted / 1e9:.1f} G by FlopCounterMode on the "
          f"explicit path, ratio {counted / flops:.4f})")
    print(f"fp32 matrix-multiply rate ({mm_n}x{mm_n} torch.mm): {mm_rate:.1f} GFLOP/s\n")
    ours_t = statistics.median(times["course_pkg"])
    print(f"{'model':<12} {'median ms':>10} {'min ms':>9} {'img/s':>8} {'GFLOP/s':>8} {'% of mm':>8} "
          f"{'ref/ours':>9}")
    for name in models:
        t = statistics.median(times[name])
        rate = flops / t / 1e9
        ratio = "" if name == "course_pkg" else f"{t / ours_t:9.3f}"
        print(f"{name:<12} {1e3 * t:10.1f} {1e3 * min(times[name]):9.1f} {batch / t:8.2f} {rate:8.1f} "
              f"{100 * rate / mm_rate:7.1f}% {ratio}")


if __name__ == "__main__":
    main()
