"""The command line under torchrun: 2 CPU processes (Gloo) give the same model as 1 process.

Both runs use the same global batch (32 = 2 processes x 16 images). The model is ``simple_cnn``: GroupNorm
instead of BatchNorm (per-image statistics, so sharding the batch changes nothing) and no dropout, so the two
runs must agree up to float rounding (summing gradients in another order). A 1-process run with the
per-process batch (16) is the control: it must *not* agree, or the comparison would prove nothing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from course_pkg.checkpoint import load_checkpoint
from course_pkg.cli.train import main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with Gloo is not available")

ARGS = ["--model", "simple_cnn", "--kwargs", '{"width": 8}', "--dataset", "clutter", "--n-train", "256",
        "--n-val", "64", "--n-test", "64", "--image-size", "24", "--epochs", "2", "--lr", "0.003",
        "--device", "cpu", "--no-progress"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def test_two_cpu_processes_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")        # talk over loopback, whatever the machine's network
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "course_pkg.train", *ARGS, "--batch-size", "32",
           "--out", str(tmp_path / "ddp.pt")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ddp_time = time.perf_counter() - start
    # only rank 0 prints and saves
    assert proc.stdout.count("test accuracy") == 1 and proc.stdout.count("saved") == 1, proc.stdout
    assert "2 process(es) on cpu" in proc.stdout

    torch.set_num_threads(1)
    try:
        single = main([*ARGS, "--batch-size", "32", "--quiet", "--out", str(tmp_path / "one.pt")])
        control = main([*ARGS, "--batch-size", "16", "--quiet", "--out", str(tmp_path / "control.pt")])
    finally:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    ddp = load_checkpoint(tmp_path / "ddp.pt")
    one = load_checkpoint(tmp_path / "one.pt")
    assert ddp.meta["world_size"] == 2 and one.meta["world_size"] == 1

    diff = _max_diff(ddp.state_dict, one.state_dict)
    assert diff < 1e-4, f"2 processes and 1 process disagree by {diff:.2e}"
    for a, b in zip(ddp.meta["history"], single["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["train_acc"] == pytest.approx(b["train_acc"], abs=1e-9)
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-9)      # sharded evaluation, summed counts
    assert ddp.meta["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=1e-9)
    # the control: a different global batch gives a visibly different model
    assert _max_diff(load_checkpoint(tmp_path / "control.pt").state_dict, one.state_dict) > 100 * diff + 1e-3
    assert control["history"][-1]["train_loss"] != pytest.approx(single["history"][-1]["train_loss"], abs=1e-4)
    print(f"2-process run {ddp_time:.1f} s, max weight difference {diff:.1e}")
