"""Planning a benchmark run: a suite expanded into units, and a plan dealt into shards.

A :class:`Unit` is one (model, task, protocol, seed, fold) cell of a suite; its :meth:`Unit.key`
is everything its scores depend on, so a stored result whose key differs is stale
(:func:`is_done`). :func:`plan` expands a suite, narrowed by the command line's filters, and
:class:`Shard` picks every n-th unit of it for one process of a ``--shard i/n`` run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import __version__
from ..tasks.folder import TaskFolder
from .cache import ModelSpec, slug, stable_hash, task_checksum
from .protocols import get_protocol
from .protocols.base import Protocol
from .records import RESULT_FILE, ResultFileError, UnitResult
from .suite import Suite, SuiteModel, check_checkpoint, open_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    model: str
    spec: ModelSpec
    task: str
    task_path: str
    protocol: str
    params: dict[str, Any]
    seed: int
    fold: str
    model_info: dict[str, Any] = field(default_factory=dict)
    task_info: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.model}/{self.task}/{self.protocol}/seed-{self.seed}/{self.fold}"

    # resolved once per unit, on first use, and pickled with it to a worker process; not fields,
    # so neither the unit's identity nor its unit.json depends on them
    @cached_property
    def resolved_protocol(self) -> Protocol:
        return get_protocol(self.protocol)

    @cached_property
    def task_folder(self) -> TaskFolder:
        return TaskFolder.open(self.task_path)

    def workdir(self, out: Path) -> Path:
        return (
            out
            / "units"
            / slug(self.model)
            / slug(self.task)
            / self.protocol
            / f"seed-{self.seed}"
            / slug(self.fold)
        )

    def key(self) -> dict[str, Any]:
        """Everything the unit's scores depend on; a stored result with another key is stale."""
        protocol = self.resolved_protocol
        return {
            "model": self.spec.key,
            "task": self.task_info.get("checksum"),
            "protocol": self.protocol,
            "protocol_version": protocol.version,
            "toolkit_version": __version__,
            "params": self.params,
            "seed": self.seed,
            "fold": self.fold,
        }


@dataclass(frozen=True)
class Shard:
    """Part ``index`` (0-based) of ``count`` of a plan: every ``count``-th unit from ``index``.

    Units are dealt round-robin in plan order, which the suite file and the filters fix, so
    every shard of one command line sees the same plan and together they cover it exactly once.
    """

    index: int
    count: int

    def __post_init__(self):
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (self.index, self.count))
        if not ok or self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"shard must be I/N with integers 0 <= I < N, got {self.index!r}/{self.count!r}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        try:
            return cls(int(index), int(count))
        except ValueError:
            raise ValueError(
                f"--shard expects I/N with integers 0 <= I < N (e.g. 0/4), got {text!r}"
            ) from None

    @property
    def label(self) -> str:
        return f"{self.index}-of-{self.count}"


@dataclass
class Plan:
    units: list[Unit]
    skipped: list[dict[str, str]]

    def shard(self, shard: Shard) -> Plan:
        return Plan(self.units[shard.index :: shard.count], self.skipped)


def _check_known(wanted: Sequence | None, known: Iterable, what: str) -> None:
    known = set(known)
    unknown = [w for w in wanted or () if w not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; the suite defines {sorted(known)}")


def plan(
    suite: Suite,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    protocols: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> Plan:
    """Expand the suite into units (filters narrow it); opens every task folder it needs."""
    variants_of = {m.variant_of for m in suite.models.values() if m.variant_of}
    _check_known(models, set(suite.models) | variants_of, "models")
    _check_known(tasks, suite.tasks, "tasks")
    opened: dict[str, TaskFolder] = {}
    units, skipped = [], []
    for entry in suite.protocols:
        if protocols is not None and entry.protocol not in protocols:
            continue
        protocol = get_protocol(entry.protocol)
        model_names = [
            m
            for m in entry.models
            if models is None or m in models or suite.models[m].variant_of in models
        ]
        for task_name in [t for t in entry.tasks if tasks is None or t in tasks]:
            suite_task = suite.tasks[task_name]
            if task_name not in opened:
                opened[task_name] = open_task(suite_task)
            task = opened[task_name]
            reason = protocol.supports(task)
            if reason:
                skipped.append({"protocol": entry.protocol, "task": task_name, "reason": reason})
                continue
            params = protocol.resolve_params(
                {**entry.params, **entry.task_params.get(task_name, {})}
            )
            folds = protocol.fold_units(task, params)
            if entry.folds is not None:
                folds = [f for f in folds if f in entry.folds]
            run_seeds = entry.seeds if protocol.seeded else entry.seeds[:1]
            if seeds is not None:
                run_seeds = [s for s in run_seeds if s in seeds]
            task_info = {
                "name": task_name,
                "task_name": task.name,
                "path": str(task.path),
                "reference": suite_task.reference,
                "checksum": task_checksum(task),
            }
            for model_name in model_names:
                model = suite.models[model_name]
                check_checkpoint(model)
                spec = model.spec.with_options(**entry.embedding_options)
                for seed in run_seeds:
                    for fold in folds:
                        units.append(
                            Unit(
                                model=model_name,
                                spec=spec,
                                task=task_name,
                                task_path=str(task.path),
                                protocol=entry.protocol,
                                params=params,
                                seed=seed,
                                fold=fold,
                                model_info=_model_info(model, spec),
                                task_info=task_info,
                            )
                        )
    if not units:
        raise ValueError(f"{suite.path}: the selection leaves no unit to run")
    return Plan(units, skipped)


def _model_info(model: SuiteModel, spec: ModelSpec) -> dict[str, Any]:
    return {
        "name": model.name,
        "reference": model.reference,
        "variant_of": model.variant_of,
        "variant": model.variant,
        "module": spec.module,
        "checkpoint": spec.checkpoint,
        "checkpoint_sha256": spec.checkpoint_sha256,
        "options": spec.options,
    }


def is_done(unit: Unit, out: Path) -> bool:
    path = unit.workdir(out) / RESULT_FILE
    if not path.is_file():
        return False
    try:
        stored = UnitResult.read(path)
    except ResultFileError as err:
        logger.warning("%s; running the unit again", err)
        return False
    return stored.key_hash == stable_hash(unit.key())
