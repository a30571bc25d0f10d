#!/usr/bin/env bash
# The one prepared GPU check, for a session that is lent a GPU machine (see the closing notes for figures).
# Here first: `bash scripts/fetch_gpu_wheels.sh` (the Jupyter stack the GPU machine lacks, into .whl/).
# Then, through the device tool, in one call with carry [".whl"] and timeout_s ~ 540:
#     bash scripts/gpu_check.sh
# It runs (1) every `gpu`-marked test, including tests/test_chapters_gpu.py, which executes every chapter on
# CUDA and on the CPU and compares their printed numbers, then (2) the GPU benchmark. Logs and the CUDA runs
# of the chapters go to $OUT (the device tool brings that folder back).
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
export COURSE_KEEP_GPU_RUNS="$OUT/runs"
timeout 420 python3 -m pytest tests -m gpu -q -rA -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
tests_rc=${PIPESTATUS[0]}
timeout 180 python3 benchmarks/bench_gpu.py 2>&1 | tee "$OUT/bench_gpu.log"
bench_rc=${PIPESTATUS[0]}
echo "gpu tests rc=$tests_rc, benchmark rc=$bench_rc" | tee -a "$OUT/gpu.txt"
exit $(( tests_rc != 0 || bench_rc != 0 ))
