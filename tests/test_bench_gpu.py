"""benchmarks/bench_gpu.py: the ``--quick`` CPU run works end to end and its figures hang together.

The timings themselves are not tested (no timed tests): the test checks that every table is there, that
every ratio is the quotient of the two medians it names, that every share of the GEMM rate follows from the
FLOP counts, and that the script refuses what it cannot do with a clear message.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_gpu.py"
EAGER = ["ours", "timm"]
# the --quick run takes 20-35 s of CPU time on the 2-core machine (most of it dynamo capturing the models)
SLOW = pytest.mark.slow
COMPILED = ["ours compiled", "timm compiled"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    out = tmp_path_factory.mktemp("bench") / "figures.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout, json.loads(out.read_text())


@SLOW
def test_quick_run_prints_every_table(quick_run: tuple[str, dict]) -> None:
    stdout, figures = quick_run
    assert "ViT logits in fp32: timm and torchvision within" in stdout
    assert "ViT (quick sizes) inference (inference_mode): batch 4, 32 px" in stdout
    assert "ViT (quick sizes) training step (AdamW): batch 4, 32 px" in stdout
    for n in ("17", "65", "129"):
        assert f"Self-attention forward + backward: N={n}," in stdout
    assert "Targets (issue 9)" in stdout
    assert figures["compile"] == ["eager", None]
    assert set(figures["vit-infer"]["rows"]) == {*EAGER, "torchvision", *COMPILED, "bf16 GEMM"}
    assert set(figures["vit-train"]["rows"]) == {*EAGER, "torchvision", *COMPILED, "bf16 GEMM"}
    for group in figures["attention"].values():
        assert set(group["rows"]) == {*EAGER, "nn.MultiheadAttention", *COMPILED, "bf16 GEMM"}


@SLOW
def test_flop_counts_agree_with_the_flop_counter(quick_run: tuple[str, dict]) -> None:
    stdout, _ = quick_run
    ratios = [line.rsplit("ratio", 1)[1].strip() for line in stdout.splitlines() if "FlopCounterMode" in line]
    assert len(ratios) == 5  # ViT inference, ViT training, three attention shapes
    assert all(float(r) == pytest.approx(1.0, abs=1e-4) for r in ratios), ratios


def _groups(figures: dict) -> list[dict]:
    return [figures["vit-infer"], figures["vit-train"], *figures["attention"].values()]


@SLOW
def test_ratios_are_quotients_of_the_medians(quick_run: tuple[str, dict]) -> None:
    _, figures = quick_run
    counterpart = {"timm": "ours", "torchvision": "ours", "nn.MultiheadAttention": "ours",
                   "timm compiled": "ours compiled"}
    for group in _groups(figures):
        rows = group["rows"]
        for name, row in rows.items():
            assert row["median_s"] > 0 and row["min_s"] <= row["median_s"]
            if name in counterpart:
                expected = row["median_s"] / rows[counterpart[name]]["median_s"]
                assert row["ref_over_ours"] == pytest.approx(expected, rel=1e-12), name
            else:
                assert "ref_over_ours" not in row, name


@SLOW
def test_shares_of_the_gemm_rate_follow_from_the_flops(quick_run: tuple[str, dict]) -> None:
    _, figures = quick_run
    for group in _groups(figures):
        rows = group["rows"]
        gemm = rows["bf16 GEMM"]
        assert gemm["gemm_share"] == pytest.approx(1.0)
        for name, row in rows.items():
            if name == "bf16 GEMM":
                continue
            assert row["tflops"] == pytest.approx(group["flops_per_call"] / row["median_s"] / 1e12, rel=1e-9)
            assert row["gemm_share"] == pytest.approx(row["tflops"] / gemm["tflops"], rel=1e-9)
            assert math.isfinite(row["gemm_share"]) and row["gemm_share"] > 0


def _load_script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", module)  # dataclasses look their module up there
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script prepends the checkout and benchmarks/
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, message", [
    (["--quick", "--sections", "vit,attention"], "unknown ['vit']"),
    (["--quick", "--repeats", "0"], "--repeats=0, --warmup=1, --target-ms=0.0: out of range"),
])
def test_bad_arguments_are_explained(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load_script(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["bench_gpu.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        bench.main()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_full_run_without_a_gpu_says_what_to_do(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load_script(monkeypatch)
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["bench_gpu.py"])
    with pytest.raises(SystemExit):
        bench.main()
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--quick" in err
