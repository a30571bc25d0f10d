#!/usr/bin/env bash
# The one prepared GPU check, for a session that is lent a GPU machine (see the closing notes for figures).
# Here first: `bash scripts/fetch_gpu_wheels.sh` (the Jupyter stack the GPU machine lacks, into .whl/).
# Then, through the device tool, with carry [".whl"], two calls of under 10 minutes each:
#     bash scripts/gpu_check.sh tests    # every `gpu`-marked test, including tests/test_chapters_gpu.py,
#                                        # which runs every chapter on CUDA and on the CPU and compares them
#     bash scripts/gpu_check.sh bench    # benchmarks/bench_gpu.py, ViT sections then attention
# (or `all` for both in one call, when the time allows). Logs, JSON figures and the chapters' CUDA runs go
# to $OUT (the device tool brings that folder back).
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD" PATH="/tmp/site/bin:$PATH"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
stage=${1:-all}
tests_rc=0 bench_rc=0
if [ "$stage" = tests ] || [ "$stage" = all ]; then
  export COURSE_KEEP_GPU_RUNS="$OUT/runs"
  timeout 480 python3 -m pytest tests -m gpu -q -rA -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
  tests_rc=${PIPESTATUS[0]}
fi
if [ "$stage" = bench ] || [ "$stage" = all ]; then
  timeout 300 python3 benchmarks/bench_gpu.py --sections vit-infer,vit-train --json "$OUT/bench_vit.json" \
    2>&1 | tee "$OUT/bench_vit.log"
  bench_rc=${PIPESTATUS[0]}
  timeout 240 python3 benchmarks/bench_gpu.py --sections attention --json "$OUT/bench_attention.json" \
    2>&1 | tee "$OUT/bench_attention.log"
  bench_rc=$(( bench_rc || PIPESTATUS[0] ))
fi
echo "stage=$stage gpu tests rc=$tests_rc, benchmark rc=$bench_rc" | tee -a "$OUT/gpu.txt"
exit $(( tests_rc != 0 || bench_rc != 0 ))
