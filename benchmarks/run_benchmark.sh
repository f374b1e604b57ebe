#!/usr/bin/env bash
# `make benchmark`: the ATST paper suite when real checkpoints and task folders are given,
# otherwise the built-in demo suite (generated offline), ending in results/<suite>/.
#
#   ATST_HEAR_CHECKPOINT_FRAME=atstframe_base.ckpt ATST_HEAR_CHECKPOINT_CLIP=base.ckpt \
#   ATST_HEAR_TASKS=tasks [ATST_HEAR_CHECKPOINT_C2F=c2f.ckpt] make benchmark
#
# Runs resume: units already finished in runs/<suite>/ are reused (delete it to recompute).
set -euo pipefail
cd "$(dirname "$0")/.."
ATST=${VENV:-.venv}/bin/atst-hear
JOBS=${JOBS:-2}
start=$(date +%s)

if [[ -n "${ATST_HEAR_CHECKPOINT_FRAME:-}" && -n "${ATST_HEAR_CHECKPOINT_CLIP:-}" && -n "${ATST_HEAR_TASKS:-}" ]]; then
    suite=paper
    args=(--suite paper --tasks-dir "$ATST_HEAR_TASKS"
          --checkpoint "atst_frame=$ATST_HEAR_CHECKPOINT_FRAME"
          --checkpoint "atst_clip=$ATST_HEAR_CHECKPOINT_CLIP")
    if [[ -n "${ATST_HEAR_CHECKPOINT_C2F:-}" ]]; then
        args+=(--checkpoint "atst_c2f=$ATST_HEAR_CHECKPOINT_C2F")
    else
        args+=(--models atst-frame,atst-clip)
    fi
    echo "benchmark: real checkpoints and tasks given, running the paper suite (atst_hear/resources/suites/paper.yaml)"
else
    suite=demo
    tasks=${DEMO_TASKS:-demo-tasks}
    pretrained=${PRETRAIN_DEMO:-runs/pretrain-demo}/atst_frame.ckpt
    echo "benchmark: no real checkpoints/tasks given (ATST_HEAR_CHECKPOINT_FRAME, _CLIP, ATST_HEAR_TASKS);"
    echo "           running the built-in demo suite, which measures the pipeline, not the models"
    "$ATST" demo-tasks "$tasks"
    args=(--suite demo --tasks-dir "$tasks")
    if [[ -f "$pretrained" ]]; then
        args+=(--checkpoint "pretrained=$pretrained")
    else
        echo "           (no $pretrained: run 'make pretrain-demo' to add the pre-trained tiny model)"
        args+=(--models tiny-frame-random,tiny-clip-random,logmel)
    fi
fi

"$ATST" bench "${args[@]}" --out "runs/$suite" --jobs "$JOBS"
mkdir -p "results/$suite"
rm -rf "results/$suite/plots"
cp -r "runs/$suite/summary.md" "runs/$suite/leaderboard.md" "runs/$suite/summary.json" \
    "runs/$suite/scores.csv" "runs/$suite/run.json" \
    "runs/$suite/status.json" "runs/$suite/plots" "results/$suite/"
echo "benchmark: results/$suite/summary.md ($(( $(date +%s) - start )) s; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
