"""Benchmark the overhead of SE and CBAM in a ResNet-50: parameters and inference time.

Prints, from one run on this machine:

1. Parameters of course_pkg's ResNet-50 plain, with SE (``attention="se"``) and with CBAM
   (``attention="cbam"``), of torchvision's ``resnet50`` (which the plain one must equal exactly) and, when
   timm is installed, of timm's ``seresnet50`` and of timm's ``resnet50`` with ``attn_layer="cbam"``.
2. Inference time (eval mode, ``torch.inference_mode``) of a batch (default 8 images of 224 x 224) through
   every network. The networks are called in a rotating order at every repeat, so that load on the machine
   hits them alike; each figure is the median over repeats after a warm-up. Reported: the overhead of SE and
   CBAM, ``time / time of our plain ResNet-50``; and each reference against its counterpart of ours,
   ``reference time / ours`` (>= 1: ours is at least as fast). Each pair carries the same weights, and the
   script checks that the pair computes the same logits before timing.

Run (from the repository root)::

    python benchmarks/bench_channel_attention.py              # a couple of minutes on a 2-core CPU
    python benchmarks/bench_channel_attention.py --quick      # batch 2, 3 repeats
    python benchmarks/bench_channel_attention.py --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from course_pkg.resnet import count_parameters, resnet50  # noqa: E402
from course_pkg.weights import convert_timm_resnet_state_dict as convert_timm_state_dict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_times  # noqa: E402

# reference -> the network of ours it is compared with
PAIRS = {"torchvision": "ours plain", "timm SE": "ours SE", "timm CBAM": "ours CBAM"}


def build_models(device: torch.device) -> dict[str, nn.Module]:
    """Our plain, SE and CBAM ResNet-50s and the references, in eval mode; each pair shares its weights."""
    import torchvision

    torch.manual_seed(0)
    models = {
        "ours plain": resnet50(),
        "ours SE": resnet50(attention="se"),
        "ours CBAM": resnet50(attention="cbam"),
        "torchvision": torchvision.models.resnet50(),
    }
    models["torchvision"].load_state_dict(models["ours plain"].state_dict(), strict=True)
    try:
        import timm
    except ImportError:
        print("timm is not installed: its SE and CBAM ResNet-50s are left out")
    else:
        models["timm SE"] = timm.create_model("seresnet50", pretrained=False)
        models["timm CBAM"] = timm.create_model("resnet50", pretrained=False, block_args={"attn_layer": "cbam"})
        for ref in ("timm SE", "timm CBAM"):  # same weights: ours -> timm keys (".attn." -> ".se.", CBAM conv)
            ours = models[PAIRS[ref]]
            mapped = convert_timm_state_dict(models[ref].state_dict())
            ours.load_state_dict(mapped, strict=True)
            models[ref].load_state_dict(dict(zip(models[ref].state_dict(), mapped.values())), strict=True)
    return {k: m.to(device).eval() for k, m in models.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--quick", action="store_true", help="batch 2, 3 repeats")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.repeats = 2, 3
    for name in ("batch", "size", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name}={getattr(args, name)} is not valid; use a positive integer")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    models = build_models(device)
    params = {k: count_parameters(m) for k, m in models.items()}
    base = params["ours plain"]
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; "
          f"batch {args.batch} x 3 x {args.size} x {args.size}, inference")
    print("\nparameters")
    for k, n in params.items():
        print(f"  {k:12s} {n:>12,}  ({n - base:+,}, {n / base - 1:+.2%} vs ours plain)")
    for ref, ours in PAIRS.items():
        if ref in params and params[ref] != params[ours]:
            raise SystemExit(f"{ours} and {ref} differ in parameter count: {params[ours]:,} vs {params[ref]:,}")

    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    diffs = {}
    with torch.inference_mode():
        for ref, ours in PAIRS.items():
            if ref in models:
                diffs[ref] = (models[ours](x) - models[ref](x)).abs().max().item()
                print(f"{ours} vs {ref}, same weights: max |difference| of the logits {diffs[ref]:.2e}")

    def runner(m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                m(x)
        return run

    times = interleaved_times({k: runner(m) for k, m in models.items()}, args.repeats, args.warmup, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\ninference time, median of {args.repeats} interleaved repeats (min-max in brackets)")
    for k, t in med.items():
        print(f"  {k:12s} {t * 1000:8.1f} ms  [{min(times[k]) * 1000:.0f}-{max(times[k]) * 1000:.0f}]  "
              f"x{t / med['ours plain']:.3f} vs ours plain")
    fastest = {k: min(v) for k, v in times.items()}
    print("fastest run (the least disturbed by other load): "
          + ", ".join(f"{k} x{t / fastest['ours plain']:.3f}" for k, t in fastest.items()))
    print(f"\nSE overhead:   parameters {params['ours SE'] / base - 1:+.2%}, time {med['ours SE'] / med['ours plain'] - 1:+.1%}")
    print(f"CBAM overhead: parameters {params['ours CBAM'] / base - 1:+.2%}, "
          f"time {med['ours CBAM'] / med['ours plain'] - 1:+.1%}")
    for ref, ours in PAIRS.items():
        if ref in med:
            print(f"{ref} / {ours} (time): {med[ref] / med[ours]:.3f}")
    result = {"device": str(device), "threads": torch.get_num_threads(), "batch": args.batch, "size": args.size,
              "repeats": args.repeats, "params": params, "median_s": med, "min_s": fastest, "times_s": times,
              "max_abs_diff": diffs}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
