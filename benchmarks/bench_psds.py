"""Time and peak memory of PSDS1 / PSDS2 on noisy frame scores, with both libraries.

The case of issue 14: 1,000 ten-second clips, 10 classes, frame scores every 40 ms (the ATST
token rate) that are a clean activity mask plus strong Gaussian noise, so every threshold
decodes hundreds of short events per clip (the worst case for psds_eval's pairwise tables).
Each score runs in a fresh subprocess (peak RSS is per process) under a 4 GB address-space
limit, on the raw scores and after the 7-frame median filter of the sed protocol.

Goal: each of psds1 / psds2 (psds_eval, 50 thresholds) and psds1 / psds2_sed_scores_eval within
10 s and 4 GB on 2 cores; where psds_eval cannot be run within its bounds, the result records
why instead of dying.

Run: ``python benchmarks/bench_psds.py`` -> ``results/bench_psds.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

SCORES = ("psds1", "psds2", "psds1_sed_scores_eval", "psds2_sed_scores_eval")
MEMORY_LIMIT_BYTES = 4 * 1024**3
TIME_GOAL_S = 10.0


def noisy_case(n_clips: int, n_classes: int = 10, seconds: float = 10.0, seed: int = 0):
    """``EventPredictions`` of the benchmark case (deterministic for a seed)."""
    import numpy as np

    from atst_hear.tasks.decoding import FrameScores
    from atst_hear.tasks.folder import Event
    from atst_hear.tasks.scores import EventPredictions

    rng = np.random.default_rng(seed)
    hop_ms = 40.0
    n_frames = int(seconds * 1000 / hop_ms)
    labels = [f"class{c}" for c in range(n_classes)]
    scores, stamps, reference, durations = {}, {}, {}, {}
    centres = hop_ms / 2 + hop_ms * np.arange(n_frames)
    for index in range(n_clips):
        name = f"clip{index:05d}.wav"
        mask = np.zeros((n_frames, n_classes))
        events = []
        for _ in range(rng.integers(1, 5)):
            label = int(rng.integers(n_classes))
            start = int(rng.integers(0, n_frames - 10))
            stop = int(min(n_frames, start + rng.integers(10, 150)))
            mask[start:stop, label] = 1.0
            events.append(Event(labels[label], start * hop_ms, stop * hop_ms))
        noisy = 0.6 * mask + 0.2 + rng.normal(0.0, 0.25, mask.shape)
        scores[name] = np.clip(noisy, 0.0, 1.0)
        stamps[name] = centres
        reference[name] = events
        durations[name] = seconds * 1000.0
    frame_scores = FrameScores(labels, hop_ms, scores, stamps)
    return EventPredictions({}, reference, labels, frame_scores, durations)


def child(score: str, n_clips: int, median_filter: int) -> dict:
    from atst_hear.tasks import psds
    from atst_hear.tasks.event_metrics import import_quietly

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    case = noisy_case(n_clips)
    frames = case.frame_scores.median_filtered(median_filter)
    params = psds.PSDS1 if score.startswith("psds1") else psds.PSDS2
    compute = (
        psds.psds_from_scores if score.endswith("sed_scores_eval") else psds.psds_eval_from_scores
    )
    import_quietly("psds_eval")  # import time (about 2 s) is not the score's
    import_quietly("sed_scores_eval.intersection_based")
    started = time.perf_counter()
    result = compute(frames, case.reference, case.durations_ms, params)
    value = None if result.value != result.value else round(result.value, 6)
    return {
        "score": score,
        "clips": n_clips,
        "median_filter": median_filter,
        "value": value,
        "not_computed_because": result.not_computed_because,
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--scores", nargs="+", default=list(SCORES), choices=SCORES)
    parser.add_argument(
        "--median-filters",
        type=int,
        nargs="+",
        default=[1, 7],
        help="frames; 1: the raw noisy scores, 7: smoothed as the sed protocol does",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench_psds.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.scores[0], args.clips, args.median_filters[0])))
        return

    from atst_hear import __version__
    from atst_hear.fileio import write_json_atomic

    runs = []
    for median_filter in args.median_filters:
        for score in args.scores:
            command = [sys.executable, __file__, "--child", "--clips", str(args.clips)]
            command += ["--scores", score, "--median-filters", str(median_filter)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                last = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
                runs.append({"score": score, "median_filter": median_filter, "crashed": last[0]})
            else:
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]))
    result = {
        "benchmark": "PSDS on noisy frame scores (10 classes, 10-s clips, 40-ms frames)",
        "atst_hear": __version__,
        "machine": platform.platform(),
        # the 2 cores are shared: a load above 2 slows every figure here
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "memory_limit_gb": MEMORY_LIMIT_BYTES / 1024**3,
        "time_goal_s": TIME_GOAL_S,
        "runs": runs,
        # within bounds: finished (a value, or a recorded reason) in time, no crash
        "goal_met": all("seconds" in r and r["seconds"] <= TIME_GOAL_S for r in runs),
    }
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
