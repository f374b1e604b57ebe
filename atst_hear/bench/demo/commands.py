"""``atst-hear demo-tasks``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-tasks",
        help="generate the synthetic demo suite: small HEAR task folders of every task shape",
        description=(
            "Write one small synthetic HEAR task folder per task shape of the real benchmark "
            "(k-fold sounds, words, pitch, instrument family, multilabel tags, speakers, sound "
            "event detection) and a manifest demo_suite.json. The same seed gives byte-identical "
            "files; finished tasks are kept when the command is run again."
        ),
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the task folders to")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the number of clips (default 1; tests use a smaller suite)",
    )
    parser.add_argument(
        "--tasks", nargs="+", metavar="NAME", help="generate only these tasks (default: all)"
    )
    parser.set_defaults(run=run_demo_tasks)


def run_demo_tasks(args: argparse.Namespace) -> int:
    import time

    from .suite import MANIFEST_FILE, generate_suite

    started = time.perf_counter()
    summaries = generate_suite(args.out_dir, seed=args.seed, scale=args.scale, tasks=args.tasks)
    for summary in summaries:
        status = "generated" if summary.generated else "up to date"
        print(
            f"{summary.name:18s} {summary.clips:4d} clips {summary.seconds:6.0f} s "
            f"{summary.bytes / 1e6:5.1f} MB  {status}"
        )
    total_mb = sum(s.bytes for s in summaries) / 1e6
    print(
        f"{len(summaries)} tasks, {total_mb:.1f} MB in {args.out_dir} "
        f"({time.perf_counter() - started:.0f} s); manifest {MANIFEST_FILE}"
    )
    return 0
