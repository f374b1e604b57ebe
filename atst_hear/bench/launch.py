"""Benchmark units as a job array on a cluster, through submitit.

``atst-hear bench --launcher slurm`` submits one array job per pending unit (one GPU each) and
waits for the array; each job computes the embeddings its unit reads (the cache's entry locks
make jobs of one model and task share them) and then the unit. Every job is resumable as the
local run is: a re-submitted command skips finished units and finished embedding shards, so a
job killed by its time limit or a preemption is simply run again. ``submitit-local`` runs the
same jobs as local processes through submitit's ``LocalExecutor``, to test a setup without a
cluster. Job logs go to ``<out>/jobs/<job id>/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .planning import Unit
from .runner import RunSummary, _with_embeddings, _write_error, execute_unit

logger = logging.getLogger(__name__)

CLUSTERS = {"slurm": "slurm", "submitit-local": "local"}


@dataclass(frozen=True)
class LaunchOptions:
    """Where and how the array runs: ``cluster`` ``"slurm"`` or ``"submitit-local"``;
    ``timeout_min`` per job; ``partition``; ``max_parallel`` jobs of the array at once (None: no
    limit); ``gpus_per_job``; ``slurm`` extra sbatch options (``{"account": "abc"}``)."""

    cluster: str
    timeout_min: int = 240
    partition: str | None = None
    max_parallel: int | None = None
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    slurm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.cluster not in CLUSTERS:
            raise ValueError(
                f"launcher must be one of local, {', '.join(CLUSTERS)}; got {self.cluster!r}"
            )
        minimum = {"timeout_min": 1, "cpus_per_job": 1, "gpus_per_job": 0, "max_parallel": 1}
        for name, least in minimum.items():
            value = getattr(self, name)
            if name == "max_parallel" and value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(
                    f"launcher option {name} must be an integer >= {least}, got {value!r}"
                )


def _executor(out: Path, options: LaunchOptions):
    try:
        import submitit
    except ImportError:
        raise RuntimeError(
            "--launcher slurm needs submitit: pip install 'atst-hear[cluster]'"
        ) from None
    executor = submitit.AutoExecutor(folder=out / "jobs" / "%j", cluster=CLUSTERS[options.cluster])
    parameters: dict[str, Any] = {
        "timeout_min": options.timeout_min,
        "tasks_per_node": 1,
        "nodes": 1,
        "cpus_per_task": options.cpus_per_job,
        "gpus_per_node": options.gpus_per_job,
        "name": "atst-hear-bench",
    }
    if options.cluster == "slurm":
        if options.partition:
            parameters["slurm_partition"] = options.partition
        if options.max_parallel:
            parameters["slurm_array_parallelism"] = options.max_parallel
        if options.slurm:
            parameters["slurm_additional_parameters"] = dict(options.slurm)
    executor.update_parameters(**parameters)
    return executor


def run_unit_job(unit: Unit, out: str, device: str | None, threads: int) -> tuple[str, str]:
    """One array job: the unit's embeddings, then the unit (``device`` None: the node's GPU)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    scratch = RunSummary()
    if not _with_embeddings([unit], Path(out), device, False, scratch):
        return "failed", scratch.failed[unit.id]
    return execute_unit(unit, out, device, threads, False)


def run_job_array(
    units: Sequence[Unit],
    out: Path,
    device: str | None,
    threads: int,
    options: LaunchOptions,
    summary: RunSummary,
) -> None:
    """Submit one job per unit, wait for all of them and record their outcome in ``summary``."""
    if not units:
        return
    executor = _executor(out, options)
    n = len(units)
    jobs = executor.map_array(
        run_unit_job, list(units), [str(out)] * n, [device] * n, [threads] * n
    )
    logger.info(
        "submitted %d units as job array %s; waiting (logs in %s)", n, jobs[0].job_id, out / "jobs"
    )
    for job, unit in zip(jobs, units):
        try:
            status, message = job.result()
        except Exception as err:  # noqa: BLE001 - a lost job fails its unit only
            status, message = "failed", f"job {job.job_id} failed: {type(err).__name__}: {err}"
            _write_error(unit, out, message, "")
        summary.record(unit.id, status, message)
