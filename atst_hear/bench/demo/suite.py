"""Write the demo tasks to disk as HEAR task folders, with the dataset converters' machinery.

The demo suite is one more source of :mod:`atst_hear.bench.prepare`: its plans are converted
and written by the same code (:mod:`~atst_hear.bench.prepare.writer`), in a hidden
``.<task>.partial`` folder whose journal lets an interrupted run resume clip by clip, checked
with the task validator and then renamed into place, so a folder under its own name is always
complete. Each task folder's ``task_metadata.json`` records the generator version, seed and
scale that made it; a second run with the same settings keeps finished tasks and a run with
other settings replaces them. Each task and each clip draws from its own seeded generator, so
the files depend only on (version, seed, scale) and are byte-identical between runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ...audio import SAMPLE_RATE
from ...fileio import sha256_file, write_json_atomic
from ..prepare.plan import BadInputs, TaskPlan, check_plan
from ..prepare.writer import convert_resumable, publish, retired_path, write_task_folder
from .tasks import GENERATOR_VERSION, TASKS

STAMP_KEY = "demo_generator"
MANIFEST_FILE = "demo_suite.json"
MAX_SCALE = 10.0


@dataclass(frozen=True)
class TaskSummary:
    name: str
    clips: int
    seconds: float
    bytes: int
    sha256: str  # of the whole folder: every file's relative path and content
    generated: bool  # False when an up-to-date folder was kept


def generate_suite(
    out_dir: str | os.PathLike,
    seed: int = 0,
    scale: float = 1.0,
    tasks: Sequence[str] | None = None,
    progress: bool = True,
) -> list[TaskSummary]:
    """Write the demo tasks (all, or those named in ``tasks``) under ``out_dir`` and a manifest
    ``demo_suite.json`` listing them.

    ``scale`` multiplies the number of clips (tests use a reduced suite); every class and
    split keeps at least a few clips at any scale. A task's files do not depend on which
    other tasks are generated with it.
    """
    out_dir = Path(out_dir)
    names = list(TASKS) if tasks is None else list(tasks)
    unknown = [name for name in names if name not in TASKS]
    if unknown:
        raise ValueError(f"unknown demo tasks {unknown}; known: {list(TASKS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 < scale <= MAX_SCALE:
        raise ValueError(f"scale must be in (0, {MAX_SCALE:g}], got {scale!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder; the demo suite needs a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = {"version": GENERATOR_VERSION, "seed": seed, "scale": float(scale)}
    summaries = []
    for name in names:
        target = out_dir / name
        if _stamp_of(target) == stamp:
            summaries.append(_summarise(target, generated=False))
            continue
        started = time.perf_counter()
        _refuse_foreign(target)
        rng = np.random.default_rng(_seed_sequence(seed, name))
        plan = TASKS[name](rng, scale, _seed_sequence(seed, name, "clips"))
        _write_task(plan, out_dir, stamp, progress)
        summary = _summarise(target, generated=True)
        if progress:
            tqdm.write(
                f"{name}: {summary.clips} clips, {summary.seconds:.0f} s of audio, "
                f"{summary.bytes / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
            )
        summaries.append(summary)
    manifest = {
        "generator": "atst-hear demo-tasks",
        **stamp,
        "tasks": [{k: v for k, v in vars(s).items() if k != "generated"} for s in summaries],
    }
    write_json_atomic(out_dir / MANIFEST_FILE, manifest)
    return summaries


def tree_sha256(folder: Path) -> str:
    """One checksum over every file below ``folder``: relative paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def _seed_sequence(seed: int, *names: str) -> np.random.SeedSequence:
    """Independent streams per task (and per purpose), whatever the order tasks are built in."""
    return np.random.SeedSequence([seed, *(zlib.crc32(n.encode()) for n in names)])


def _stamp_of(folder: Path) -> dict[str, Any] | None:
    try:
        metadata = json.loads((folder / "task_metadata.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return metadata.get(STAMP_KEY) if isinstance(metadata, dict) else None


def _refuse_foreign(target: Path) -> None:
    if target.exists() and _stamp_of(target) is None:
        raise ValueError(
            f"{target}: exists but was not written by the demo generator; "
            "remove it or choose another output folder"
        )


def _write_task(plan: TaskPlan, out_dir: Path, stamp: dict[str, Any], progress: bool) -> None:
    name = plan.metadata["task_name"]
    # the stamp tells a later run that this folder is up to date (or made with other settings)
    plan.metadata[STAMP_KEY] = stamp
    check_plan(plan)
    partial = out_dir / f".{name}.partial"
    signature = {"dataset": "demo", "task": name, **stamp, "sample_rate": SAMPLE_RATE}
    # a generator bug raises; no synthetic clip is ever skipped as bad input
    bad = BadInputs(skip=False)
    convert_resumable(
        plan, plan.clips, partial, signature, bad, name, owned=True, progress=progress
    )
    # left by a run interrupted while it replaced a folder of other settings
    shutil.rmtree(retired_path(out_dir / name), ignore_errors=True)
    write_task_folder(plan, plan.clips, partial)
    publish(partial, out_dir / name)


def _summarise(folder: Path, generated: bool) -> TaskSummary:
    wavs = list(folder.rglob("*.wav"))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    metadata = json.loads((folder / "task_metadata.json").read_text(encoding="utf-8"))
    return TaskSummary(
        name=folder.name,
        clips=len(wavs),
        seconds=len(wavs) * float(metadata["sample_duration"]),
        bytes=size,
        sha256=tree_sha256(folder),
        generated=generated,
    )
