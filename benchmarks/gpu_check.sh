#!/usr/bin/env bash
# The prepared GPU check (docs/cluster.md, "GPU check"): one run of under 8 minutes on one GPU
# that writes results/gpu_check.json (fp32 GPU vs CPU parity, the bf16 bound, embedding and
# hear-mlp speed against the reference code paths, a short pre-training run).
#
#   benchmarks/gpu_check.sh                        # on a machine with a CUDA GPU
#   GPU_CHECK_SMOKE=1 OUT=/tmp/gpu_check.json benchmarks/gpu_check.sh   # CPU, tiny, seconds
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${VENV:-.venv}/bin/python
if [[ "${GPU_CHECK_SMOKE:-0}" == 1 ]]; then
    # smoke numbers mean nothing: they never go to results/
    OUT=${OUT:-runs/gpu-check-smoke/gpu_check.json}
else
    OUT=${OUT:-results/gpu_check.json}
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
fi
exec "$PYTHON" benchmarks/gpu_check.py --out "$OUT" "$@"
