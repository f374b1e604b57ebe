"""Peak memory of embedding long audio: is it flat in the audio's length?

Each length runs in a fresh subprocess (peak RSS is per process): base-size ATST-Frame with
random weights (``random_init="base"``), one clip of uniform noise in [-0.1, 0.1] at 16 kHz,
scene embeddings through the HEAR API, CPU, fp32. The waveform itself (4 bytes a sample, 230 MB
for an hour) is the caller's and is reported separately; everything else should not grow with
the length. Goal: the 60-minute peak within 300 MB of the 2-minute one.

Run: ``python benchmarks/bench_memory.py`` (about 5-10 min on 2 cores) -> ``results/bench_memory.json``.
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

MINUTES = (2, 20, 60)
GOAL_MB = 300.0
MB = 1024 * 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * resource.getpagesize() / MB


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def child(minutes: float, threads: int, kind: str) -> dict:
    """Embed ``minutes`` of audio in this process and return its memory figures."""
    import torch

    from atst_hear.hear import frame

    torch.set_num_threads(threads)
    model = frame.load_model(random_init="base", seed=0)
    frame.get_scene_embeddings(torch.zeros(1, 16000), model)  # allocator warm-up
    loaded_mb = peak_rss_mb()
    n_samples = int(minutes * 60 * 16000)
    audio = torch.empty(1, n_samples).uniform_(
        -0.1, 0.1, generator=torch.Generator().manual_seed(0)
    )
    before_mb = current_rss_mb()
    started = time.perf_counter()
    if kind == "scene":
        output = frame.get_scene_embeddings(audio, model)
    else:
        output, _ = frame.get_timestamp_embeddings(audio, model)
    return {
        "minutes": minutes,
        "kind": kind,
        "output_shape": list(output.shape),
        "output_mb": round(output.numel() * 4 / MB, 1),
        "waveform_mb": round(audio.numel() * 4 / MB, 1),
        "peak_rss_after_model_mb": round(loaded_mb, 1),
        "rss_before_embedding_mb": round(before_mb, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=list(MINUTES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kind", choices=("scene", "timestamp"), default="scene")
    parser.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        help="bytes; sets glibc's MALLOC_MMAP_THRESHOLD_ in the children (a fixed threshold "
        "keeps freed front-end and activation buffers from fragmenting the heap)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench_memory.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.minutes[0], args.threads, args.kind)))
        return

    import torch

    from atst_hear import __version__
    from atst_hear.fileio import write_json_atomic

    runs = []
    for minutes in args.minutes:
        command = [sys.executable, __file__, "--child", "--minutes", str(minutes)]
        command += ["--threads", str(args.threads), "--kind", args.kind]
        env = dict(os.environ)
        if args.malloc_mmap_threshold is not None:
            env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
        done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(runs[-1]))
    shortest, longest = runs[0], runs[-1]
    growth = longest["peak_rss_mb"] - shortest["peak_rss_mb"]
    waveform_growth = longest["waveform_mb"] - shortest["waveform_mb"]
    result = {
        "benchmark": "peak RSS embedding long audio (ATST-Frame base, random init, CPU, fp32)",
        "atst_hear": __version__,
        "torch": torch.__version__,
        "machine": platform.platform(),
        # the 2 cores are shared: a load above 2 slows every figure here
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "threads": args.threads,
        "malloc_mmap_threshold": args.malloc_mmap_threshold,  # None: glibc's default
        "runs": runs,
        "growth_mb": round(growth, 1),
        "growth_beyond_waveform_mb": round(growth - waveform_growth, 1),
        "goal": f"{longest['minutes']:g}-min peak within {GOAL_MB:g} MB of the "
        f"{shortest['minutes']:g}-min peak",
        "goal_met": growth <= GOAL_MB,
    }
    write_json_atomic(args.out, result)
    print(
        f"peak RSS grows {growth:.0f} MB from {shortest['minutes']:g} to "
        f"{longest['minutes']:g} min ({waveform_growth:.0f} MB of it the waveform); "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
