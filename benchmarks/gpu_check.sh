#!/usr/bin/env bash
# GPU check of training in one command (< 8 minutes on one GPU), three parts, each under its own timeout:
#   1. paper-preset training steps/s and peak GPU memory, fp32 and bf16 autocast (RCNet, SAHMR):
#        ${OUT}/train_step_cuda_paper.json
#   2. cpu-preset convergence on the GPU (RCNet, bf16-mixed, a few thousand steps, the kit's Lightning loop):
#        ${OUT}/convergence_cuda/rcnet.json, summary.json
#   3. CPU-vs-GPU agreement of one validation forward (same weights, same batch; per-metric max |diff|):
#        ${OUT}/train_agreement_cuda.json
# Needs the kit installed (`make install`) and the synthetic benchmark (DATA, default datasets/synth, from
# `make repro` or `sahmr synth`); stage-2 parts use the default pipeline's runs/rcnet/final.ckpt when it exists
# (otherwise a random RCNet of the preset: timings do not depend on weights).
#   bash benchmarks/gpu_check.sh                     (from the repository root)
#   OUT=/tmp/gpu DATA=datasets/synth STEPS="250 500 1000 2000" bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
out=${OUT:-reports/bench}
data=${DATA:-datasets/synth}
steps=${STEPS:-250 500 1000 2000 4000}
mkdir -p "$out"
[ -d "$data" ] || { echo "gpu_check: no dataset at $data (run \`make repro\` or \`sahmr synth\`, or set DATA=...)" >&2; exit 2; }
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check: CUDA is not available to torch")'
export PYTHONUNBUFFERED=1
status=0
# 1. ~2 min: 2 tasks x 2 variants x (build + 2 warm-up + 10 timed steps)
timeout 180 "$PY" benchmarks/bench_train.py --device cuda --preset paper --tasks rcnet sahmr --variants fp32 bf16 \
  --steps 10 --warmup 2 --rounds 1 --data "$data" --out "$out/train_step_cuda_paper.json" || status=$?
# 2. ~4 min: the cpu preset through the same loop as `sahmr train`, on one GPU with bf16 autocast
timeout 270 "$PY" benchmarks/convergence.py --tasks rcnet --steps $steps --data "$data" \
  --work "${WORK:-build/gpu_check}" --out "$out/convergence_cuda" --bench none \
  -S accelerator=gpu -S devices=1 -S precision=bf16-mixed -S num_workers=6 -S deterministic=warn || status=$?
# 3. < 1 min
timeout 60 "$PY" benchmarks/bench_train.py --device cuda --agreement --tasks rcnet sahmr --data "$data" \
  --out "$out/train_agreement_cuda.json" || status=$?
exit $status
