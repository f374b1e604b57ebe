"""The benchmark runner: every (model, task, protocol, seed, fold) unit of a suite, resumably.

Output folder layout::

    <out>/run.json                    suite, command options and provenance of the last run
    <out>/status.json                 which units finished, failed or were skipped
    <out>/embeddings/...              the embedding cache (see :mod:`.cache`)
    <out>/units/<model>/<task>/<protocol>/seed-<s>/<fold>/
        unit.json                     what the unit computes (its key)
        result.json                   scores per fold + recipe + provenance: the unit is done
        error.json                    why the last attempt failed (removed on success)
        ...                           protocol files (partial state, predictions, curves)

    <out>/shards/<i>-of-<n>/status.json   what shard i of a ``--shard i/n`` run did

Stages: embeddings are computed first in this process (one model on the device at a time),
then the units run, in parallel worker processes with ``jobs > 1`` (or as a job array, see
:mod:`.launch`). A unit that raises is recorded in ``error.json`` and the others continue. Every
file is written atomically, so after an interruption (even ``kill -9``) the next invocation
skips finished units and finished embedding shards and ends with the same scores.

Many processes may share one output folder on a shared filesystem: the shards of a ``--shard``
run and the jobs of an array. Each unit and each embedding-cache entry is computed under its
own lock file, and whoever gets the lock second finds the result written and reuses it, so no
unit and no embedding is ever computed twice at once. A whole-run lock (:mod:`.outlock`) still
refuses a second unsharded run, or a second copy of the same shard, on one folder.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from filelock import FileLock
from tqdm.auto import tqdm

from ..fileio import write_json_atomic
from . import provenance
from .cache import EmbeddingCache, ModelSpec, stable_hash
from .outlock import exclusive_output
from .planning import Plan, Shard, Unit, is_done, plan
from .protocols.base import UnitContext, seed_everything
from .protocols.data import weak_labels
from .records import RESULT_FILE, RecipeRecord, UnitIdentity, UnitResult
from .suite import Suite

if TYPE_CHECKING:
    from .launch import LaunchOptions

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # False for a shard that finished while others still run: the report must wait for them
    all_shards_done: bool = True

    @property
    def ok(self) -> bool:
        return not self.failed

    def record(self, unit_id: str, status: str, message: str) -> None:
        """File one unit's outcome: ``done``, ``reused``, or anything else as a failure."""
        if status == "done":
            self.done.append(unit_id)
        elif status == "reused":
            self.reused.append(unit_id)
        else:
            self.failed[unit_id] = message
            logger.error("FAILED %s: %s", unit_id, message)


# --- running ------------------------------------------------------------------------------------
def run(
    suite: Suite,
    out: str | os.PathLike,
    selection: Plan | None = None,
    jobs: int = 1,
    device: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
    shard: Shard | None = None,
    launcher: LaunchOptions | None = None,
) -> RunSummary:
    """Run the selection's units into ``out`` (all of them, or one ``shard``), resumably.

    ``launcher`` None runs the units here (``jobs`` worker processes); otherwise they run as a
    submitit job array (:mod:`.launch`) and this call waits for it.
    """
    # one run per output folder (per shard of a sharded run): a second is refused
    # (OutputInUseError); shards share the folder through the per-unit and per-entry locks
    out = Path(out)
    lock_folder = out if shard is None else out / "shards" / shard.label
    with exclusive_output(lock_folder):
        return _run_locked(
            suite, out, selection, jobs, device, threads, progress, command, shard, launcher
        )


def _run_locked(
    suite, out, selection, jobs, device, threads, progress, command, shard, launcher
) -> RunSummary:
    selection = selection or plan(suite)
    if shard is not None:
        selection = selection.shard(shard)
    requested_device = device
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = threads or max(1, (os.cpu_count() or 1) // (2 * max(jobs, 1)))
    torch.set_num_threads(threads)
    write_json_atomic(
        out / "run.json",
        {
            "shard": None if shard is None else shard.label,
            "launcher": None if launcher is None else launcher.cluster,
            "suite": str(suite.path),
            "suite_name": suite.name,
            "suite_definition": suite.raw,
            "references": [str(p) for p in suite.references],
            "command": list(command or []),
            "jobs": jobs,
            "device": device,
            "threads_per_unit": threads,
            "provenance": provenance.collect(device),
        },
    )
    summary = RunSummary(skipped=selection.skipped)
    if not selection.units:  # more shards than units
        logger.info("shard %s has no unit to run", shard.label)
    pending = []
    for unit in selection.units:
        if is_done(unit, out):
            summary.reused.append(unit.id)
        else:
            pending.append(unit)
    if summary.reused:
        logger.info(
            "%d of %d units already finished; reusing them",
            len(summary.reused),
            len(selection.units),
        )
    if launcher is not None:
        from .launch import run_job_array

        run_job_array(pending, out, requested_device, threads, launcher, summary)
    else:
        runnable = _with_embeddings(pending, out, device, progress, summary)
        _run_units(runnable, out, jobs, device, threads, progress, summary)
    status = {
        "done": summary.done + summary.reused,
        "failed": summary.failed,
        "skipped": summary.skipped,
    }
    if shard is None:
        write_json_atomic(out / "status.json", status)
    else:
        summary.all_shards_done = _merge_shard_status(out, shard, status)
    return summary


def _with_embeddings(units, out, device, progress, summary) -> list[Unit]:
    """Compute the embeddings ``units`` read; those whose embeddings failed are recorded as
    failed and left out of the returned list."""
    failed_embeddings = compute_embeddings(units, out, device, progress)
    runnable = []
    for unit in units:
        problem = next(
            (failed_embeddings[k] for k in _embedding_keys(unit) if k in failed_embeddings), None
        )
        if problem:
            summary.failed[unit.id] = f"embeddings failed: {problem}"
            _write_error(unit, out, f"embeddings failed: {problem}", "")
        else:
            runnable.append(unit)
    return runnable


def _merge_shard_status(out: Path, shard: Shard, status: dict) -> bool:
    """Record the shard's ``status`` and fold those of all shards of the run into
    ``<out>/status.json``; True when all have finished. Under one lock, so exactly one shard,
    the last, sees them all."""
    count = shard.count
    with FileLock(str(out / ".status.lock")):
        write_json_atomic(out / "shards" / shard.label / "status.json", status)
        statuses = {}
        for index in range(count):
            path = out / "shards" / Shard(index, count).label / "status.json"
            if path.is_file():
                statuses[index] = json.loads(path.read_text())
        done = sorted({unit for status in statuses.values() for unit in status["done"]})
        failed = {
            unit: message
            for status in statuses.values()
            for unit, message in status["failed"].items()
            if unit not in done
        }
        skipped = next(iter(statuses.values()))["skipped"]
        write_json_atomic(
            out / "status.json",
            {
                "done": done,
                "failed": failed,
                "skipped": skipped,
                "shards": {"count": count, "finished": sorted(statuses)},
            },
        )
    return len(statuses) == count


def _embedding_specs(unit: Unit) -> list[tuple[tuple, ModelSpec]]:
    """``(embedding key, model spec)`` of every embedding set the unit reads."""
    protocol, task = unit.resolved_protocol, unit.task_folder
    kind = protocol.kind_for(task)
    if kind is None:
        return []
    specs = protocol.embedding_models(unit.spec, task, unit.params)
    return [((stable_hash(spec.key), unit.task_path, kind), spec) for spec in specs]


def _embedding_keys(unit: Unit) -> list[tuple]:
    return [key for key, _ in _embedding_specs(unit)]


def compute_embeddings(units: Sequence[Unit], out: Path, device: str, progress: bool) -> dict:
    """Embed every split the pending units need; return ``{embedding key: error}``."""
    needed: dict[tuple, tuple[Unit, ModelSpec, str]] = {}
    for unit in units:
        for key, spec in _embedding_specs(unit):
            needed.setdefault(key, (unit, spec, key[2]))
    cache = EmbeddingCache(out / "embeddings", device=device, progress=progress)
    failures = {}
    # one model at a time on the device: the crops of one model follow each other
    ordered = sorted(needed.items(), key=lambda item: stable_hash(item[1][1].load_key))
    for key, (unit, spec, kind) in ordered:
        task = unit.task_folder
        try:
            for split in task.splits:
                cache.get(spec, task, split, kind)
            if kind == "timestamp":  # weakly labelled clips for the sed protocol
                for split, labels in weak_labels(task).items():
                    cache.get(spec, task, split, kind, files=sorted(labels))
        except Exception as err:  # noqa: BLE001 - reported per unit, the run goes on
            failures[key] = f"{type(err).__name__}: {err}"
            logger.error("embedding %s on %s failed: %s", unit.model, unit.task, failures[key])
    cache.release()
    return failures


def _run_units(units, out, jobs, device, threads, progress, summary) -> None:
    if not units:
        return
    bar = tqdm(total=len(units), desc="units", unit="unit", disable=not progress)

    def finished(unit: Unit, status: str, message: str) -> None:
        summary.record(unit.id, status, message)
        bar.update(1)

    if jobs <= 1:
        for unit in units:
            bar.set_postfix_str(unit.id)
            finished(unit, *execute_unit(unit, str(out), device, threads, progress))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {
                pool.submit(execute_unit, unit, str(out), device, threads, False): unit
                for unit in units
            }
            for future in as_completed(futures):
                unit = futures[future]
                try:
                    finished(unit, *future.result())
                except BrokenProcessPool as err:
                    finished(unit, "failed", f"worker process died ({err})")
    bar.close()


def execute_unit(
    unit: Unit, out: str, device: str, threads: int, progress: bool
) -> tuple[str, str]:
    """Run one unit and write its result (or its error); returns ``(status, message)``, status
    ``"reused"`` when another process finished the unit first."""
    workdir = unit.workdir(Path(out))
    workdir.parent.mkdir(parents=True, exist_ok=True)
    # the lock sits beside the folder: _prepare_workdir may delete the folder
    lock = FileLock(str(workdir.parent / f".{workdir.name}.lock"))
    with lock:
        if is_done(unit, Path(out)):
            return "reused", ""
        return _execute_unit_locked(unit, Path(out), workdir, device, threads, progress)


def _execute_unit_locked(unit, out_path, workdir, device, threads, progress) -> tuple[str, str]:
    torch.set_num_threads(threads)
    _prepare_workdir(unit, workdir)
    started = time.time()
    try:
        protocol, task = unit.resolved_protocol, unit.task_folder
        seed_everything(unit.seed)
        ctx = UnitContext(
            task=task,
            model=unit.spec,
            cache=EmbeddingCache(out_path / "embeddings", device=device, progress=progress),
            params=unit.params,
            seed=unit.seed,
            fold=unit.fold,
            workdir=workdir,
            device=device,
            progress=progress,
        )
        folds = protocol.run(ctx)
    except Exception as err:  # noqa: BLE001 - a failed unit must not stop the others
        message = f"{type(err).__name__}: {err}"
        _write_error(unit, out_path, message, traceback.format_exc())
        return "failed", message
    UnitResult(
        unit=UnitIdentity(unit.id, unit.model, unit.task, unit.protocol, unit.seed, unit.fold),
        key_hash=stable_hash(unit.key()),
        model=unit.model_info,
        task=unit.task_info,
        recipe=RecipeRecord(
            protocol=unit.protocol,
            version=protocol.version,
            description=protocol.description,
            map_convention=protocol.map_convention,
            params=unit.params,
            seed=unit.seed,
        ),
        folds=tuple(folds),
        elapsed_s=round(time.time() - started, 3),
        provenance=provenance.collect(device),
    ).write(workdir / RESULT_FILE)
    (workdir / "error.json").unlink(missing_ok=True)
    return "done", ""


def _prepare_workdir(unit: Unit, workdir: Path) -> None:
    """Create the unit's folder; clear it when it holds state of a different recipe."""
    key = unit.key()
    marker = workdir / "unit.json"
    if marker.is_file():
        try:
            same = json.loads(marker.read_text()).get("key") == key
        except json.JSONDecodeError:
            same = False
        if not same:
            shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        write_json_atomic(marker, {"id": unit.id, "key": key, "unit": asdict(unit)})


def _write_error(unit: Unit, out: Path, message: str, trace: str) -> None:
    workdir = unit.workdir(out)
    workdir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        workdir / "error.json",
        {
            "unit": unit.id,
            "error": message,
            "traceback": trace,
            "provenance": provenance.collect(),
        },
    )
