#!/usr/bin/env bash
# ATST-Frame small pre-training on one GPU with the online probe on: steps/s, GPU memory and the
# learning curves, into results/gpu_pretrain/ (docs/pretraining.md, "Speed").
#
#   benchmarks/gpu_pretrain.sh                      # frame-small, 3000 steps, batch 256, bf16
#   STEPS=5000 DATA='/data/audioset/*.tar' benchmarks/gpu_pretrain.sh
#   GPU_PRETRAIN_TINY=1 benchmarks/gpu_pretrain.sh  # the same script on CPU in ~2 min (a check)
#
# Pre-training audio: DATA, by default the training splits of the generated demo suite, which no
# probe tests on (the probes score the demo tasks' test splits and folds). Probes: the six
# clip-level demo tasks, knn and paper-linear, at step 0 and every PROBE_EVERY steps.
# Writes OUT_DIR/summary.json (steps/s, peak GPU memory, wall time, final and step-0 probe
# scores), probe.csv, the plots and the recipe; the run itself stays in RUN_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ATST=${VENV:-.venv}/bin/atst-hear
PYTHON=${VENV:-.venv}/bin/python
TASKS=${DEMO_TASKS:-demo-tasks}

if [[ "${GPU_PRETRAIN_TINY:-0}" == 1 ]]; then
    # every step of the script with a tiny model on CPU; numbers mean nothing, so they stay
    # out of results/
    OUT_DIR=${OUT_DIR:-runs/gpu-pretrain-tiny/results}
    RUN_DIR=${RUN_DIR:-runs/gpu-pretrain-tiny/run}
    # 24 steps: ThroughputMonitor reports steps/s once it has 20
    steps=${STEPS:-24}
    every=${PROBE_EVERY:-12}
    probe_tasks=(demo_pitch demo_speakers)
    demo_args=(--scale 0.2 --tasks "${probe_tasks[@]}")
    train=(--flavour frame --arch tiny --accelerator cpu --devices 1 --precision 32-true
           --set batch_size=4 --set head_hidden=64 --set head_out=32 --set crop_seconds=0.5
           --set mixup_memory=16 --set num_workers=0 --set warmup_steps=1)
else
    OUT_DIR=${OUT_DIR:-results/gpu_pretrain}
    RUN_DIR=${RUN_DIR:-runs/gpu-pretrain}
    steps=${STEPS:-3000}
    every=${PROBE_EVERY:-500}
    probe_tasks=(demo_sounds demo_words demo_pitch demo_instruments demo_tags demo_speakers)
    demo_args=()
    # the demo clips last 1-1.25 s: 1 s crops instead of the recipe's 10 s of mostly padding;
    # a warm-up of 10 % of this short schedule
    train=(--flavour frame --arch small --accelerator gpu --devices 1 --precision bf16-mixed
           --set batch_size=256 --set crop_seconds=1.0 --set "warmup_steps=$((steps / 10))"
           --set "num_workers=${NUM_WORKERS:-8}")
fi

"$ATST" demo-tasks "$TASKS" "${demo_args[@]}"
data=${DATA:-$TASKS/*/16000/train}
probe=$(printf "$TASKS/%s," "${probe_tasks[@]}")
mkdir -p "$OUT_DIR"

memory_log="$OUT_DIR/gpu_memory_mib.csv"
sampler=""
if command -v nvidia-smi >/dev/null && [[ "${GPU_PRETRAIN_TINY:-0}" != 1 ]]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 >"$memory_log" &
    sampler=$!
    trap 'kill "$sampler" 2>/dev/null || true' EXIT
fi

start=$(date +%s)
"$ATST" pretrain "${train[@]}" --set "max_steps=$steps" --set "log_every=${LOG_EVERY:-10}" \
    --set "checkpoint_every=$every" --data "$data" --out "$RUN_DIR" --resume --quiet \
    --probe "${probe%,}" --probe-every "$every"
wall=$(( $(date +%s) - start ))
if [[ -n "$sampler" ]]; then kill "$sampler" 2>/dev/null || true; fi

cp "$RUN_DIR/probe.csv" "$RUN_DIR/recipe.yaml" "$OUT_DIR/"
mkdir -p "$OUT_DIR/plots"
cp "$RUN_DIR"/plots/*.png "$OUT_DIR/plots/"
"$PYTHON" - "$RUN_DIR" "$OUT_DIR" "$wall" "$memory_log" <<'EOF'
import json, sys
from pathlib import Path

import pandas as pd

run, out, wall, memory_log = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
logs = pd.concat(pd.read_csv(p) for p in sorted(run.glob("logs/csv/version_*/metrics.csv")))
rate = logs.get("train/device/batches_per_sec", pd.Series(dtype=float)).dropna()
probe = pd.read_csv(run / "probe.csv", dtype={"task": str})
scores = probe[probe.protocol != "diagnostic"]
first, last = scores.step.min(), scores.step.max()


def at(step):
    rows = scores[scores.step == step]
    return {f"{r.encoder}/{r.task}/{r.protocol}": r.value for r in rows.itertuples()}


memory = None
if memory_log.is_file() and memory_log.stat().st_size:
    memory = int(max(int(line) for line in memory_log.read_text().split() if line.isdigit()))
summary = {
    "steps": int(last),
    "wall_seconds_with_probes": wall,
    # ThroughputMonitor: steps/s over the last 20 steps, logged every log_every steps
    "steps_per_s_median": float(rate.median()) if len(rate) else None,
    "steps_per_s_last": float(rate.iloc[-1]) if len(rate) else None,
    "peak_gpu_memory_mib": memory,
    "probe_step0": at(first),
    f"probe_step{last}": at(last),
    "recipe": (run / "recipe.yaml").read_text(),
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps({k: v for k, v in summary.items() if k != "recipe"}, indent=2))
EOF
echo "gpu_pretrain: ${wall} s; results in $OUT_DIR"
