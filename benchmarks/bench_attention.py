"""Benchmark course_pkg's MultiHeadSelfAttention against torch.nn.MultiheadAttention and timm's Attention.

Prints, from one run on this machine:

1. Time at ViT-B shapes (B=8, N=197, dim=768, 12 heads): forward (eval, no grad: inference) and
   forward+backward (train mode, dropout 0), as ratios ``reference time / ours`` (>= 1: ours is at least
   as fast). The three layers carry the same weights (checked), runs are interleaved in a rotating order
   so that load on the machine hits all of them alike, and each figure is the median of several repeats
   after a warm-up.
2. Peak memory of one forward at a long sequence (default N=4096) through the fused path
   (``F.scaled_dot_product_attention``) and the explicit path (``return_attention=True``, which builds the
   ``(B, H, N, N)`` weights). On CUDA: ``torch.cuda.max_memory_allocated`` around the call. On CPU: each path
   runs in a fresh child process and the figure is the growth of the process's peak resident set size during
   the call (Linux: ``VmHWM`` from ``/proc/self/status``, reset through ``/proc/self/clear_refs`` just before
   the call; elsewhere ``ru_maxrss``), measured after the inputs exist and a short warm-up. It is a real
   measurement of the memory the process touched, not a sum of tensor sizes. (tracemalloc would not see
   torch's allocations; ``ru_maxrss`` alone is not used on Linux because it survives ``exec``, so a child
   would inherit its parent's peak.)

Run (from the repository root)::

    python benchmarks/bench_attention.py            # full run, a couple of minutes on a 2-core CPU
    python benchmarks/bench_attention.py --quick    # a few seconds: fewer repeats, N=2048 for memory
    python benchmarks/bench_attention.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from course_pkg.attention import MultiHeadSelfAttention  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved_times  # noqa: E402


def build_layers(dim: int, heads: int, device: torch.device) -> dict[str, nn.Module]:
    """Ours, nn.MultiheadAttention (batch_first) and timm's Attention, all with the same weights."""
    from timm.layers import Attention as TimmAttention

    ours = MultiHeadSelfAttention(dim, heads, qkv_bias=True)
    timm_attn = TimmAttention(dim, num_heads=heads, qkv_bias=True)
    timm_attn.load_state_dict(ours.state_dict(), strict=True)
    mha = nn.MultiheadAttention(dim, heads, bias=True, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(ours.qkv.weight)  # same [q; k; v] packing
        mha.in_proj_bias.copy_(ours.qkv.bias)
        mha.out_proj.weight.copy_(ours.proj.weight)
        mha.out_proj.bias.copy_(ours.proj.bias)
    return {"ours": ours.to(device), "nn.MultiheadAttention": mha.to(device), "timm Attention": timm_attn.to(device)}


def call(name: str, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if name == "nn.MultiheadAttention":
        return layer(x, x, x, need_weights=False)[0]  # without need_weights=False it builds the weights
    return layer(x)


def interleaved_medians(fns: dict[str, Callable[[], None]], repeats: int, inner: int, warmup: int,
                        device: torch.device) -> dict[str, float]:
    """Median seconds per call of each function over interleaved rounds."""
    times = interleaved_times(fns, repeats, warmup, device, inner=inner)
    return {n: statistics.median(t) for n, t in times.items()}


def bench_time(batch: int, n: int, dim: int, heads: int, repeats: int, inner: int, warmup: int,
               device: torch.device) -> None:
    torch.manual_seed(0)
    layers = build_layers(dim, heads, device)
    x = torch.randn(batch, n, dim, device=device)

    # the three compute the same function (a benchmark of different things would be meaningless)
    with torch.no_grad():
        outs = {name: call(name, m.eval(), x) for name, m in layers.items()}
    for name, out in outs.items():
        torch.testing.assert_close(out, outs["ours"], rtol=1e-4, atol=1e-4, msg=f"{name} differs from ours")

    def forward(name: str, m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                call(name, m, x)
        return run

    xg = x.clone().requires_grad_(True)

    def forward_backward(name: str, m: nn.Module) -> Callable[[], None]:
        def run() -> None:
            m.zero_grad(set_to_none=True)
            call(name, m, xg).sum().backward()
        return run

    print(f"\nTime at ViT-B shapes: B={batch}, N={n}, dim={dim}, heads={heads}, {device}, "
          f"{torch.get_num_threads()} threads; median of {repeats} interleaved repeats x {inner} calls")
    print(f"{'':24s}{'forward (eval)':>18s}{'fwd+bwd (train)':>18s}")
    for m in layers.values():
        m.eval()
    fwd = interleaved_medians({k: forward(k, m) for k, m in layers.items()}, repeats, inner, warmup, device)
    for m in layers.values():
        m.train()
    fb = interleaved_medians({k: forward_backward(k, m) for k, m in layers.items()}, repeats, inner, warmup, device)
    for name in layers:
        print(f"{name:24s}{fwd[name] * 1e3:15.2f} ms{fb[name] * 1e3:15.2f} ms")
    print("ratio = reference time / ours (>= 1: ours at least as fast)")
    for name in layers:
        if name != "ours":
            print(f"  vs {name:22s} forward {fwd[name] / fwd['ours']:5.2f}   fwd+bwd {fb[name] / fb['ours']:5.2f}")


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux: VmHWM; elsewhere: ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource  # ru_maxrss survives exec on Linux, hence VmHWM first

    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _reset_peak_rss() -> None:
    """Reset the peak-RSS mark to the current RSS (Linux >= 4.0); a no-op where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _memory_child(path: str, n: int, dim: int, heads: int) -> None:
    """Run one forward in this (fresh) process and print the growth of the peak RSS, as JSON."""
    torch.manual_seed(0)
    m = MultiHeadSelfAttention(dim, heads).eval()
    x = torch.randn(1, n, dim)
    with torch.no_grad():
        m(x[:, :64], return_attention=path == "explicit")  # warm-up on a short sequence (kernels, thread pool)
        _reset_peak_rss()
        before = _peak_rss_bytes()
        out = m(x, return_attention=path == "explicit")
        after = _peak_rss_bytes()
    del out
    print(json.dumps({"path": path, "peak_growth_bytes": after - before}))


def bench_memory(n: int, dim: int, heads: int, device: torch.device) -> None:
    nn_matrix = 1 * heads * n * n * 4  # one float32 (B=1, H, N, N) tensor
    print(f"\nPeak memory of one forward (no grad) at B=1, N={n}, dim={dim}, heads={heads}, {device}; "
          f"one (1, {heads}, {n}, {n}) float32 matrix = {nn_matrix / 2**20:.0f} MiB")
    peaks: dict[str, float] = {}
    if device.type == "cuda":
        torch.manual_seed(0)
        m = MultiHeadSelfAttention(dim, heads).to(device).eval()
        x = torch.randn(1, n, dim, device=device)
        for path in ("fused", "explicit"):
            with torch.no_grad():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                out = m(x, return_attention=path == "explicit")
                torch.cuda.synchronize()
                peaks[path] = torch.cuda.max_memory_allocated() - base
                del out
        method = "torch.cuda.max_memory_allocated() minus the memory allocated before the call"
    else:
        for path in ("fused", "explicit"):
            proc = subprocess.run([sys.executable, __file__, "--_memory-child", path, "--mem-n", str(n),
                                   "--mem-dim", str(dim), "--mem-heads", str(heads)],
                                  capture_output=True, text=True, check=True)
            peaks[path] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_growth_bytes"]
        method = ("growth of the peak resident set size (Linux VmHWM, reset just before the call) during the "
                  "call, each path in a fresh process")
    print(f"measured as: {method}")
    for path in ("fused", "explicit"):
        print(f"  {path:9s} {peaks[path] / 2**20:9.1f} MiB  ({peaks[path] / nn_matrix:5.2f} x one N x N matrix)")
    if peaks["fused"] > 0:
        print(f"  explicit / fused = {peaks['explicit'] / peaks['fused']:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short run: 3 repeats, memory at N=2048")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--mem-n", type=int, default=None, help="sequence length for the memory test (default 4096)")
    p.add_argument("--mem-dim", type=int, default=256)
    p.add_argument("--mem-heads", type=int, default=4)
    p.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child, args.mem_n, args.mem_dim, args.mem_heads)
        return
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    repeats = args.repeats or (3 if args.quick else 9)
    inner = 1 if args.quick else 3
    print(f"torch {torch.__version__}, timm {__import__('timm').__version__}, device {device}")
    bench_time(8, 197, 768, 12, repeats=repeats, inner=inner, warmup=1 if args.quick else 2, device=device)
    mem_n = args.mem_n or (2048 if args.quick else 4096)
    bench_memory(mem_n, args.mem_dim, args.mem_heads, device)


if __name__ == "__main__":
    main()
