"""Suite definitions (YAML): which models, tasks, protocols and seeds a benchmark run covers.

Example::

    name: paper
    seeds: [0, 1, 2]
    tasks_dir: tasks                    # relative to the working directory; --tasks-dir overrides
    references: [reference/paper.csv]   # relative to this file; published numbers for the report
    models:
      atst-frame:
        module: atst_hear.hear.frame
        checkpoint: atst_frame          # a name given with --checkpoint atst_frame=PATH, a path,
                                        # or a registered name (atst-frame-base, downloaded once)
        options: {}                     # load_model options
        reference: ATST-Frame           # model name in the reference tables
        sweep: {n_blocks: [1, 6, 12]}   # optional: one model per value (per-layer curves)
      logmel:
        module: atst_hear.bench.baselines
    tasks:
      esc50: {path: esc50-v2.0.0-full, reference: ESC-50}
    protocols:
      - protocol: paper-linear
        tasks: [esc50]                  # default: every task the protocol supports
        models: [atst-frame]            # default: every model
        params: {epochs: 100}
        task_params: {esc50: {lr_grid: [0.001]}}
        embedding_options: {n_blocks: 12}
        seeds: [0]                      # default: the suite's seeds
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator

from ..models import registry
from ..resources import shipped
from ..schema import OptionalMapping, Schema, expected, validation_message
from ..tasks.folder import TaskFolder
from ..yamlio import load_yaml
from .cache import ModelSpec
from .overrides import apply_overrides
from .protocols import get_protocol

DEFAULT_SEEDS = [0, 1, 2]
_HEAR_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the entry."""


# --- the file's schema: keys and types; names and options are checked in load_suite -----------
def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seed_list(value: Any) -> list[int]:
    if _is_integer(value):
        value = [value]
    if not isinstance(value, list) or not value or not all(map(_is_integer, value)):
        raise expected("a non-empty list of integers")
    return value


Seeds = Annotated[list[int], BeforeValidator(_seed_list)]  # one seed or a list of them


class _ModelEntry(Schema):
    module: str  # a HEAR module path
    checkpoint: str | None = None  # a --checkpoint name, or a path
    options: OptionalMapping = {}  # load_model options
    reference: str | None = None  # the model's name in the reference tables
    sweep: dict[str, list[Any]] | None = None  # one model per value of one option
    description: str | None = None

    @field_validator("sweep")
    @classmethod
    def _one_option(cls, sweep: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        if sweep and (len(sweep) != 1 or not next(iter(sweep.values()))):
            raise ValueError(
                "varies exactly one option over a non-empty list, e.g. {n_blocks: [1, 12]}"
            )
        return sweep


class _TaskEntry(Schema):
    path: str | None = None  # relative to tasks_dir; default: the task's name
    reference: str | None = None
    description: str | None = None


class _ProtocolEntry(Schema):
    protocol: str
    tasks: list[str] | None = None  # default: every task of the suite
    models: list[str] | None = None  # default: every model
    params: OptionalMapping = {}  # checked against the protocol's Params
    task_params: dict[str, OptionalMapping] | None = None
    embedding_options: OptionalMapping = {}
    seeds: Seeds | None = None  # default: the suite's seeds
    folds: list[str] | None = None  # default: every test fold


class _SuiteFile(Schema):
    name: str | None = None  # default: the file's stem
    description: str | None = None
    seeds: Seeds = DEFAULT_SEEDS
    tasks_dir: str = "tasks"
    references: list[str] = []
    models: Annotated[dict[str, _ModelEntry], Field(min_length=1)]
    tasks: Annotated[dict[str, _TaskEntry | None], Field(min_length=1)]
    protocols: Annotated[list[_ProtocolEntry], Field(min_length=1)]


# --- what the runner, the report and the API read ------------------------------------------
@dataclass(frozen=True)
class SuiteModel:
    name: str
    spec: ModelSpec
    reference: str | None = None
    variant_of: str | None = None  # the model entry a sweep expanded
    variant: dict[str, Any] = field(default_factory=dict)  # the swept option values
    missing_checkpoint: str | None = None  # a checkpoint name the command line did not give


@dataclass(frozen=True)
class SuiteTask:
    name: str
    path: Path
    reference: str | None = None


@dataclass(frozen=True)
class SuiteProtocol:
    protocol: str
    tasks: list[str]
    models: list[str]
    params: dict[str, Any]
    task_params: dict[str, dict[str, Any]]
    embedding_options: dict[str, Any]
    seeds: list[int]
    folds: list[str] | None


@dataclass
class Suite:
    path: Path
    name: str
    description: str
    seeds: list[int]
    models: dict[str, SuiteModel]
    tasks: dict[str, SuiteTask]
    protocols: list[SuiteProtocol]
    references: list[Path]
    raw: dict[str, Any]


def _expect(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise SuiteError(f"{where}: {message}")


def _suite_file(path: Path) -> Path:
    """``path``, or the shipped suite a bare name (``demo``) stands for."""
    if not path.is_file() and not path.suffix and len(path.parts) == 1:
        try:
            path = shipped("suites", path.name)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"suite file {path} does not exist, and {err}") from None
    if not path.is_file():
        raise FileNotFoundError(f"suite file {path} does not exist")
    return path


def load_suite(
    path: str | os.PathLike,
    tasks_dir: str | os.PathLike | None = None,
    checkpoints: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Suite:
    """Read and check a suite; resolve task folders and checkpoint names lazily (see
    :func:`resolve`). ``overrides`` (``bench --set``) edit the YAML first (``overrides.py``)."""
    path = _suite_file(Path(path))
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SuiteError(f"{path}: invalid YAML ({err})") from err
    if overrides and isinstance(raw, Mapping):
        raw = apply_overrides(raw, overrides)
    where = str(path)
    try:
        spec = _SuiteFile.model_validate(raw)
    except ValidationError as err:
        raise SuiteError(f"{where}: {validation_message(err)}") from None
    base_tasks_dir = Path(tasks_dir if tasks_dir is not None else spec.tasks_dir)
    checkpoints = dict(checkpoints or {})

    models: dict[str, SuiteModel] = {}
    for name, entry in spec.models.items():
        for model in _expand_model(name, entry, f"{where}: models.{name}", checkpoints, path):
            models[model.name] = model
    tasks = {}
    for name, task_entry in spec.tasks.items():
        task_entry = task_entry or _TaskEntry()
        task_path = Path(task_entry.path or name)
        tasks[name] = SuiteTask(
            name,
            task_path if task_path.is_absolute() else base_tasks_dir / task_path,
            task_entry.reference,
        )
    protocols = [
        _protocol_entry(entry, f"{where}: protocols[{i}]", models, tasks, spec.seeds)
        for i, entry in enumerate(spec.protocols)
    ]
    return Suite(
        path,
        spec.name or path.stem,
        spec.description or "",
        spec.seeds,
        models,
        tasks,
        protocols,
        [path.parent / reference for reference in spec.references],
        raw,
    )


def _expand_model(
    name: str, entry: _ModelEntry, where: str, checkpoints: Mapping[str, str], suite_path: Path
) -> list[SuiteModel]:
    options = dict(entry.options)
    checkpoint = missing = None
    if entry.checkpoint is not None:
        checkpoint = _resolve_checkpoint(entry.checkpoint, checkpoints, suite_path)
        missing = None if checkpoint else entry.checkpoint
    base = ModelSpec(name, entry.module, checkpoint, options)
    if not entry.sweep:
        check_model_options(base.module, options, where)
        return [SuiteModel(name, base, entry.reference, missing_checkpoint=missing)]
    ((option, values),) = entry.sweep.items()
    expanded = []
    for value in values:
        check_model_options(base.module, {**options, option: value}, f"{where}: sweep.{option}")
        variant_name = f"{name}@{option}={value}"
        expanded.append(
            SuiteModel(
                variant_name,
                ModelSpec(variant_name, base.module, base.checkpoint, {**options, option: value}),
                entry.reference,
                variant_of=name,
                variant={option: value},
                missing_checkpoint=missing,
            )
        )
    return expanded


def check_model_options(module_name: str, options: Mapping[str, Any], where: str) -> None:
    """Import a model's HEAR module and check its ``load_model`` options, loading no weights.

    Done when the suite is read, so a typo fails the run at once rather than when its first
    unit starts. ATST modules check names and types (``check_options``); for other modules
    the names are bound to ``load_model``'s signature.
    """
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise SuiteError(f"{where}: cannot import HEAR module {module_name!r} ({err})") from None
    missing = [name for name in _HEAR_FUNCTIONS if not callable(getattr(module, name, None))]
    _expect(not missing, where, f"{module_name} is not a HEAR module: it lacks {missing}")
    checker = getattr(module, "check_options", None)
    try:
        if callable(checker):
            checker(options)
        else:
            inspect.signature(module.load_model).bind(None, **options)
    except (TypeError, ValueError) as err:
        raise SuiteError(f"{where}: options {dict(options)} rejected: {err}") from None


def _resolve_checkpoint(value: str, checkpoints: Mapping[str, str], suite_path: Path) -> str | None:
    """The path a checkpoint stands for: a name given on the command line, a path (absolute or
    beside the suite), or a registered checkpoint name (``atst_hear.models.registry``), which is
    downloaded into the torch hub cache once; None when the command line has yet to give it."""
    if value in checkpoints:
        given = checkpoints[value]
        if registry.lookup(given) is not None:
            return str(registry.fetch(given))
        return str(Path(given).expanduser())
    for candidate in (Path(value).expanduser(), suite_path.parent / value):
        if candidate.is_file():
            return str(candidate)
    if registry.lookup(value) is not None:
        return str(registry.fetch(value))
    return None


def _protocol_entry(
    entry: _ProtocolEntry,
    where: str,
    models: Mapping[str, SuiteModel],
    tasks: Mapping[str, SuiteTask],
    suite_seeds: list[int],
) -> SuiteProtocol:
    try:
        protocol = get_protocol(entry.protocol)
    except ValueError as err:
        raise SuiteError(f"{where}: {err}") from None
    task_names = entry.tasks or list(tasks)
    unknown = [t for t in task_names if t not in tasks]
    _expect(not unknown, where, f"unknown tasks {unknown}; the suite defines {sorted(tasks)}")
    model_names = _model_names(entry.models, models, where)
    if entry.embedding_options:
        for name in model_names:
            spec = models[name].spec
            check_model_options(
                spec.module, {**spec.options, **entry.embedding_options}, f"{where}: model {name}"
            )
    task_params = entry.task_params or {}
    unknown = [t for t in task_params if t not in task_names]
    _expect(not unknown, where, f"task_params for tasks {unknown} that this entry does not run")
    # a typo or a wrong type fails here, before any unit runs
    checks = {where: entry.params}
    checks.update(
        {
            f"{where}: task_params.{task}": {**entry.params, **params}
            for task, params in task_params.items()
        }
    )
    for place, params in checks.items():
        try:
            protocol.resolve_params(params)
        except ValueError as err:
            raise SuiteError(f"{place}: {err}") from None
    return SuiteProtocol(
        protocol=protocol.name,
        tasks=list(task_names),
        models=model_names,
        params=dict(entry.params),
        task_params={task: dict(params) for task, params in task_params.items()},
        embedding_options=dict(entry.embedding_options),
        seeds=list(entry.seeds or suite_seeds),
        folds=entry.folds,
    )


def _model_names(selected: Sequence[str] | None, models: Mapping[str, SuiteModel], where: str):
    if not selected:
        return list(models)
    names = []
    for name in selected:
        # a swept model entry stands for all its variants
        matches = [m for m in models.values() if m.name == name or m.variant_of == name]
        _expect(bool(matches), where, f"unknown model {name!r}; the suite defines {sorted(models)}")
        names += [m.name for m in matches]
    return names


def open_task(task: SuiteTask) -> TaskFolder:
    if not task.path.is_dir():
        raise FileNotFoundError(
            f"task {task.name!r}: folder {task.path} does not exist (set tasks_dir in the suite "
            "or pass --tasks-dir)"
        )
    return TaskFolder.open(task.path)


def check_checkpoint(model: SuiteModel) -> None:
    if model.missing_checkpoint is not None:
        name = model.missing_checkpoint
        raise FileNotFoundError(
            f"model {model.name!r} needs checkpoint {name!r}: pass --checkpoint {name}=PATH"
        )
