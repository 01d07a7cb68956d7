#!/usr/bin/env bash
# GPU check of the converted paper-preset SA-HMR in one command (< 8 minutes on one GPU): CUDA vs CPU
# parity of the converted seed-0 checkpoint (<= 1e-4), latency and peak memory per frame at batch 1,
# throughput at batch 16. Writes ${OUT:-reports/bench}/converted_cuda.json.
#   bash benchmarks/gpu_check_converted.sh            (from the repository root, with the kit installed,
#                                                       or with torch + timm importable and PYTHONPATH=.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
out=${OUT:-reports/bench}
mkdir -p "$out"
PYTHONPATH=. PYTHONUNBUFFERED=1 timeout 470 "$PY" benchmarks/bench_converted.py --device cuda --repeats 10 --out "$out/converted_cuda.json"
