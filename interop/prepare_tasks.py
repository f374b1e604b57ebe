"""Task folders for the interoperability run: demo tasks as heareval can score them.

Generates three demo tasks (``atst-hear demo-tasks``; kept between runs while their settings
are unchanged), one of each kind heareval distinguishes, and copies them into ``OUT/tasks/``
with two changes to ``task_metadata.json``, so that heareval and our ``hear-mlp`` protocol read
the same folders:

* ``evaluation`` keeps only the scores heareval 2021.1.3 implements (the demo event task leads
  with PSDS, which heareval lacks);
* ``evaluation_params.task_specific_param_grid`` (heareval's own per-task grid override, which
  MAESTRO uses too) narrows the grid to :data:`CONVERGING_GRID`.

Usage: ``python interop/prepare_tasks.py OUT``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from atst_hear.bench.demo.suite import generate_suite
from atst_hear.fileio import write_json_atomic
from atst_hear.tasks.folder import TaskFolder
from atst_hear.tasks.scores import HEAREVAL_SCORES
from atst_hear.tasks.validation import validate_task_folder

# task -> demo scale. The scene tasks get about as many training clips as the fixtures'
# embeddings have dimensions, and 256 (instruments, scale 8) or 800 (sounds, 5 folds at scale 4)
# test clips, so one clip moves a score by at most 0.4 points.
TASK_SCALES = {
    "demo_instruments": 8.0,  # scene, train/valid/test
    "demo_sounds": 4.0,  # scene, 5 folds
    "demo_events": 1.0,  # event; 10 s clips, kept small
}
# The faster grid trains for at most 10 full-batch Adam steps: on tasks this small the heads
# barely leave their random initialisation, and two correct trainers disagree by several points
# (measured: 2 to 13). Linear heads trained to convergence do not depend on where they start.
# Validation every 10 epochs (what heareval itself does on dcase2016_task2): on the event task a
# check right after the first epoch often detects nothing, and that NaN score stops the run in
# heareval and in hear-mlp alike, making either side a coin flip.
CONVERGING_GRID = {
    "hidden_layers": [0],
    "hidden_dim": [64],
    "lr": [0.01],
    "max_epochs": [200],
    "patience": [200],
    "check_val_every_n_epoch": [10],
}


def prepare(
    out: Path, names: Sequence[str] = tuple(TASK_SCALES), progress: bool = True
) -> list[Path]:
    """Write ``out/tasks/<name>`` for the named tasks of :data:`TASK_SCALES`; return the folders."""
    unknown = [name for name in names if name not in TASK_SCALES]
    if unknown:
        raise ValueError(f"no interop task {unknown}; known: {list(TASK_SCALES)}")
    tasks_dir = out / "tasks"
    shutil.rmtree(tasks_dir, ignore_errors=True)
    folders = []
    for name in names:
        scale = TASK_SCALES[name]
        demo_dir = out / f"demo-scale-{scale:g}"
        generate_suite(demo_dir, scale=scale, tasks=[name], progress=progress)
        target = tasks_dir / name
        shutil.copytree(demo_dir / name, target)
        metadata = TaskFolder.open(target).metadata
        kept = [score for score in metadata["evaluation"] if score in HEAREVAL_SCORES]
        if not kept:
            raise ValueError(
                f"{demo_dir / name}: none of its scores {metadata['evaluation']} exists in heareval"
            )
        evaluation_params = {"task_specific_param_grid": CONVERGING_GRID}
        write_json_atomic(
            target / "task_metadata.json",
            {**metadata, "evaluation": kept, "evaluation_params": evaluation_params},
        )
        errors = [p for p in validate_task_folder(target) if p.severity == "error"]
        if errors:
            raise RuntimeError(f"prepared task {target} is invalid: {errors[0]}")
        folders.append(target)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="work folder (demo suites and tasks/ go there)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for folder in prepare(args.out):
        task = TaskFolder.open(folder)
        print(f"{folder}: {task.embedding_type} {task.split_mode}, scores {task.evaluation}")
    print(f"tasks ready in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
