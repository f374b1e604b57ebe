"""``atst-hear pretrain`` and ``atst-hear distill`` (see docs/pretraining.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true")


def register(subparsers: argparse._SubParsersAction) -> None:
    register_pretrain(subparsers)
    register_pretrain_report(subparsers)
    register_distill(subparsers)


def _add_hardware(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hardware (does not change the recipe)")
    group.add_argument("--accelerator", default="auto", help="auto, cpu or gpu (default: auto)")
    group.add_argument(
        "--devices", default="auto", help="devices per node: a count, or auto (default)"
    )
    group.add_argument("--num-nodes", type=int, default=1, help="nodes (default 1)")
    group.add_argument("--precision", choices=PRECISIONS, default="32-true")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last.ckpt"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe field (repeatable), e.g. --set batch_size=64",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _hardware(args: argparse.Namespace):
    from .training import Hardware

    devices = args.devices
    if devices != "auto":
        try:
            devices = int(devices)
        except ValueError:
            raise ValueError(f"--devices expects a count or 'auto', got {devices!r}") from None
    return Hardware(args.accelerator, devices, args.num_nodes, args.precision)


def register_pretrain(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pre-train ATST-Frame or ATST-Clip (teacher-student, official recipes)",
        description="Pre-trains on unlabelled audio and writes OUT/atst_<flavour>.ckpt in the "
        "official checkpoint layout. The recipe is atst_hear/resources/recipes/<flavour>-<arch>.yaml "
        "unless --recipe is given; its learning_rate is scaled by devices * batch_size / 256.",
    )
    # validated by the recipe (importing the model here would slow every atst-hear command)
    parser.add_argument("--flavour", help="frame or clip")
    parser.add_argument("--arch", help="tiny, small or base")
    parser.add_argument("--recipe", type=Path, help="recipe YAML (default: the shipped one)")
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="SOURCE",
        help="audio folder, manifest CSV (column 'path'), tar shards (.tar, glob, or "
        "name-{000..099}.tar), or audio files",
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument(
        "--stop-at-step",
        type=int,
        help="stop (with a checkpoint) at this step without changing the schedule; "
        "continue later with --resume",
    )
    probe = parser.add_argument_group("online probe (docs/pretraining.md)")
    probe.add_argument(
        "--probe",
        action="append",
        default=[],
        metavar="TASK_DIR[,TASK_DIR]",
        help="held-out HEAR scene task folders scored with knn and paper-linear at step 0 and "
        "every --probe-every steps, into OUT/probe.csv and the logs (repeatable)",
    )
    probe.add_argument(
        "--probe-every",
        type=int,
        metavar="N",
        help="steps between probes (default: the recipe's checkpoint_every)",
    )
    probe.add_argument("--probe-student", action="store_true", help="probe the student encoder too")
    _add_hardware(parser)
    parser.set_defaults(run=run_pretrain)


def probe_task_dirs(values: list[str]) -> list[Path]:
    """``--probe`` values (each comma-separated) as folders, each checked to exist."""
    folders = [Path(part.strip()) for value in values for part in value.split(",") if part.strip()]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"--probe {folder}: not a folder (expected a HEAR task folder)")
    return folders


def run_pretrain(args: argparse.Namespace) -> int:
    from .recipes import load_recipe, parse_overrides
    from .training import run_pretraining

    if args.recipe is None and (args.flavour is None or args.arch is None):
        raise ValueError("give --flavour and --arch (shipped recipe), or --recipe FILE")
    recipe = load_recipe(args.recipe, args.flavour, args.arch, parse_overrides(args.overrides))
    callbacks = []
    if args.probe:
        # the command layer joins the two: pre-training itself never imports the benchmark
        from ..bench.online_probe import OnlineProbe, ProbeSettings

        settings = ProbeSettings(
            tasks=tuple(probe_task_dirs(args.probe)),
            every=args.probe_every or recipe.checkpoint_every,
            encoders=("teacher", "student") if args.probe_student else ("teacher",),
            seed=recipe.seed,
        )
        callbacks.append(OnlineProbe(settings, args.out))
    elif args.probe_every is not None or args.probe_student:
        raise ValueError("--probe-every and --probe-student need --probe TASK_DIR")
    run_pretraining(
        recipe,
        args.data,
        args.out,
        _hardware(args),
        resume=args.resume,
        stop_at_step=args.stop_at_step,
        progress=not args.quiet,
        callbacks=callbacks,
    )
    return 0


def register_pretrain_report(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain-report",
        help="learning curves of a pre-training run with --probe (OUT/plots/*.png)",
        description="Draws RUN/probe.csv: probe score against step per task, the step-0 "
        "(random initialisation) level as a dotted line, and the collapse diagnostics.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN", help="pre-training run folder")
    parser.set_defaults(run=run_pretrain_report)


def run_pretrain_report(args: argparse.Namespace) -> int:
    from ..bench.online_probe import PROBE_CSV
    from ..bench.plots import plot_probe_curves

    probe_csv = args.run_dir / PROBE_CSV
    if not probe_csv.is_file():
        raise ValueError(
            f"{probe_csv}: no such file; it is written by `atst-hear pretrain --probe TASK_DIR`"
        )
    for path in plot_probe_curves(probe_csv, args.run_dir / "plots"):
        print(f"wrote {path}")
    return 0


def register_distill(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="ATST-C2F: fine-tune ATST-Frame on a task, distilling a fine-tuned ATST-Clip",
        description="Writes OUT/c2f.ckpt (atst_hear.hear.c2f loads it) and OUT/scores.json "
        "(test scores of the student and the teacher). Recipe: atst_hear/resources/recipes/c2f.yaml "
        "by default; set the task's learning rate with --set learning_rate=...",
    )
    parser.add_argument(
        "--clip-teacher",
        required=True,
        type=Path,
        help="ATST-Clip fine-tuned on the task (or pre-trained, with --finetune-teacher)",
    )
    parser.add_argument(
        "--frame-student", required=True, type=Path, help="pre-trained ATST-Frame checkpoint"
    )
    parser.add_argument("--task", required=True, type=Path, help="HEAR task folder (scene task)")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--recipe", type=Path, help="distillation recipe YAML")
    parser.add_argument(
        "--finetune-teacher",
        action="store_true",
        help="fine-tune the (pre-trained) --clip-teacher on the task first",
    )
    parser.add_argument("--train-splits", help="comma-separated training splits")
    parser.add_argument("--valid-split", help="validation split")
    parser.add_argument("--test-split", help="test split scored at the end")
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle checkpoints without the safety allow-list (only for files you trust)",
    )
    _add_hardware(parser)
    parser.set_defaults(run=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from ..resources import shipped
    from .distill import DistillRecipe, run_distillation
    from .recipes import parse_overrides, read_recipe

    recipe_file = args.recipe or shipped("recipes", "c2f")
    recipe = read_recipe(DistillRecipe, recipe_file, parse_overrides(args.overrides))
    train_splits = None
    if args.train_splits:
        train_splits = [s.strip() for s in args.train_splits.split(",") if s.strip()]
    run_distillation(
        args.clip_teacher,
        args.frame_student,
        args.task,
        args.out,
        recipe,
        finetune_teacher=args.finetune_teacher,
        train_splits=train_splits,
        valid_split=args.valid_split,
        test_split=args.test_split,
        hardware=_hardware(args),
        resume=args.resume,
        trust_checkpoint=args.trust_checkpoint,
        progress=not args.quiet,
    )
    return 0
