"""The benchmark as a Python function: what ``atst-hear bench`` does, for notebooks and scripts.

::

    from atst_hear.bench.api import run_benchmark

    result = run_benchmark("demo", "results/mine", tasks_dir="demo-tasks",
                           overrides={"seeds": [0]}, models=["logmel"])
    result.summary.ok, result.report["summary"]      # RunSummary, path of summary.md

The command line calls this function, so both write the same folder: ``units/``, ``run.json``,
``status.json``, ``scores.csv``, ``summary.md``, ``summary.json``, ``leaderboard.md`` and
``plots/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .launch import LaunchOptions
from .planning import Shard, plan
from .runner import RunSummary, run
from .suite import load_suite

logger = logging.getLogger(__name__)


@dataclass
class BenchmarkRun:
    out: Path
    summary: RunSummary
    n_units: int
    report: dict[str, Path] = field(default_factory=dict)  # what write_report wrote


def run_benchmark(
    suite: str | os.PathLike,
    out: str | os.PathLike,
    *,
    tasks_dir: str | os.PathLike | None = None,
    checkpoints: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
    device: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    report: bool = True,
    command: Sequence[str] | None = None,
    shard: str | Shard | None = None,
    launcher: str = "local",
    launcher_options: Mapping[str, Any] | None = None,
) -> BenchmarkRun:
    """Run (or resume) a suite into ``out`` and write its report.

    ``suite`` is a YAML file or a shipped suite's name; ``checkpoints`` maps the suite's
    checkpoint names to files; ``overrides`` are ``--set`` keys (:mod:`.overrides`);
    ``models`` / ``tasks`` / ``protocols`` / ``seeds`` restrict the run; ``device`` None picks
    cuda when available. ``shard`` ``"I/N"`` runs every N-th unit from the I-th (start the N
    shards of one command anywhere, on one ``out``); the report is written by the shard that
    finishes last. ``launcher`` ``"slurm"`` (or ``"submitit-local"``) runs the units as a
    submitit job array, ``launcher_options`` being :class:`.launch.LaunchOptions` fields.
    """
    from .report import write_report

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if seeds is not None and not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"seeds must be integers, got {list(seeds)!r}")
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    if launcher == "local":
        if launcher_options:
            raise ValueError(f"launcher options {sorted(launcher_options)} need a cluster launcher")
        launch = None
    else:
        launch = LaunchOptions(launcher, **dict(launcher_options or {}))
    loaded = load_suite(suite, tasks_dir, dict(checkpoints or {}), overrides)
    selection = plan(
        loaded,
        None if models is None else list(models),
        None if tasks is None else list(tasks),
        None if protocols is None else list(protocols),
        None if seeds is None else list(seeds),
    )
    summary = run(
        loaded,
        out,
        selection,
        jobs=jobs,
        device=device,
        threads=threads,
        progress=progress,
        command=list(command) if command is not None else ["run_benchmark", str(suite)],
        shard=shard,
        launcher=launch,
    )
    result = BenchmarkRun(Path(out), summary, len(selection.units))
    if report and summary.all_shards_done:
        result.report = write_report(out)
    elif report:
        logger.info("other shards still run; the last one to finish writes the report")
    return result
