"""``atst-hear validate-task``, ``atst-hear bench`` and ``atst-hear report``."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    register_validate_task(subparsers)
    register_bench(subparsers)
    register_report(subparsers)


def register_validate_task(subparsers: argparse._SubParsersAction) -> None:
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


def _parse_checkpoints(values: list[str]) -> dict[str, str]:
    checkpoints = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint expects NAME=PATH, got {value!r}")
        checkpoints[name] = path
    return checkpoints


def _csv_list(text: str | None) -> list[str] | None:
    return None if text is None else [item.strip() for item in text.split(",") if item.strip()]


def register_bench(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark suite (models x tasks x protocols x seeds x folds), resumably",
    )
    parser.add_argument(
        "--suite",
        required=True,
        help="suite YAML file, or the name of a shipped suite (paper, hear, demo, ...)",
    )
    parser.add_argument("--out", required=True, help="output folder (re-use it to resume)")
    parser.add_argument("--tasks-dir", help="folder holding the suite's task folders")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="path of a checkpoint the suite names (repeatable)",
    )
    parser.add_argument("--models", help="comma-separated model names to run (default: all)")
    parser.add_argument("--tasks", help="comma-separated task names to run (default: all)")
    parser.add_argument("--protocols", help="comma-separated protocols to run (default: all)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the suite's)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a suite field before the run (repeatable; YAML values), e.g. "
        "--set seeds=[0] --set protocols.paper-linear.params.epochs=5 "
        "--set models.atst-frame.options.compat=official",
    )
    parser.add_argument("--jobs", type=int, default=1, help="units run in parallel processes")
    parser.add_argument(
        "--device",
        default="auto",
        help="torch device; auto (default) is cuda when available, else cpu",
    )
    parser.add_argument("--threads", type=int, help="torch threads per unit")
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    import sys

    from .api import run_benchmark
    from .overrides import parse_overrides

    seeds = _csv_list(args.seeds)
    try:
        seed_values = None if seeds is None else [int(s) for s in seeds]
    except ValueError:
        raise ValueError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    result = run_benchmark(
        args.suite,
        args.out,
        tasks_dir=args.tasks_dir,
        checkpoints=_parse_checkpoints(args.checkpoint),
        overrides=parse_overrides(args.overrides),
        models=_csv_list(args.models),
        tasks=_csv_list(args.tasks),
        protocols=_csv_list(args.protocols),
        seeds=seed_values,
        jobs=args.jobs,
        device=None if args.device == "auto" else args.device,
        threads=args.threads,
        progress=not args.quiet,
        report=not args.no_report,
        command=sys.argv,
    )
    summary = result.summary
    if result.report:
        print(f"report: {result.report['summary']}")
    print(
        f"{len(summary.done)} units run, {len(summary.reused)} reused, {len(summary.failed)} "
        f"failed (of {result.n_units}; {len(summary.skipped)} protocol/task pairs skipped)"
    )
    for unit, message in summary.failed.items():
        print(f"  FAILED {unit}: {message}")
    return 0 if summary.ok else 1


def register_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write scores.csv, summary.md and plots for a benchmark output folder"
    )
    parser.add_argument("out", metavar="DIR", help="benchmark output folder")
    parser.add_argument(
        "--reference",
        action="append",
        metavar="CSV",
        help="published-number tables (default: the suite's references)",
    )
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    from .report import write_report

    written = write_report(args.out, args.reference)
    for path in written.values():
        print(path)
    return 0
