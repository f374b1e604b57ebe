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
    from ..tasks.validation import validate_task_folder

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
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="run only shard I (0-based) of N: every N-th unit from the I-th; start the N shards "
        "of one command anywhere (any scheduler) on one shared --out; the last to finish "
        "writes the report",
    )
    cluster = parser.add_argument_group("cluster (docs/cluster.md; needs atst-hear[cluster])")
    cluster.add_argument(
        "--launcher",
        choices=("local", "slurm", "submitit-local"),
        default="local",
        help="local (default): this machine, --jobs processes; slurm: one submitit job array "
        "over the pending units, one GPU each, and wait for it; submitit-local: the same jobs "
        "as local processes, to test a setup",
    )
    cluster.add_argument("--partition", help="SLURM partition")
    cluster.add_argument("--timeout-min", type=int, help="time limit per job (default 240)")
    cluster.add_argument("--max-parallel", type=int, help="array jobs running at once")
    cluster.add_argument("--gpus-per-job", type=int, help="GPUs per job (default 1)")
    cluster.add_argument("--cpus-per-job", type=int, help="CPUs per job (default 8)")
    cluster.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch option, e.g. account=abc (repeatable)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the report")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(run=run_bench)


def _launcher_options(args: argparse.Namespace) -> dict:
    options = {
        name: getattr(args, name)
        for name in ("partition", "timeout_min", "max_parallel", "gpus_per_job", "cpus_per_job")
        if getattr(args, name) is not None
    }
    slurm = {}
    for value in args.slurm_option:
        key, sep, setting = value.partition("=")
        if not sep or not key:
            raise ValueError(f"--slurm-option expects KEY=VALUE, got {value!r}")
        slurm[key] = setting
    if slurm:
        options["slurm"] = slurm
    return options


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
        shard=args.shard,
        launcher=args.launcher,
        launcher_options=_launcher_options(args),
    )
    summary = result.summary
    if result.report:
        print(f"report: {result.report['summary']}")
    elif not summary.all_shards_done:
        print(f"shard {args.shard} done; the last shard to finish writes the report")
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
