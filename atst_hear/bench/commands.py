"""``atst-hear validate-task``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-task",
        help="check HEAR task folders (metadata, vocabulary, split files, audio, event times)",
    )
    parser.add_argument("task_dirs", nargs="+", metavar="DIR")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--skip-audio", action="store_true", help="do not open the wav files")
    parser.set_defaults(run=run_validate_task)


def run_validate_task(args: argparse.Namespace) -> int:
    from .taskfolder import validate_task_folder

    failed = 0
    for task_dir in args.task_dirs:
        problems = validate_task_folder(
            task_dir, sample_rate=args.sample_rate, check_audio=not args.skip_audio
        )
        errors = [p for p in problems if p.severity == "error"]
        for problem in problems:
            print(problem)
        status = "INVALID" if errors else "ok"
        print(
            f"{task_dir}: {status} ({len(errors)} errors, {len(problems) - len(errors)} warnings)"
        )
        failed += bool(errors)
    return 1 if failed else 0
