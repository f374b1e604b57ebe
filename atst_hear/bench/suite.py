"""Suite definitions (YAML): which models, tasks, protocols and seeds a benchmark run covers.

Example::

    name: paper
    seeds: [0, 1, 2]
    tasks_dir: tasks                    # relative to the working directory; --tasks-dir overrides
    references: [reference/paper.csv]   # relative to this file; published numbers for the report
    models:
      atst-frame:
        module: atst_hear.hear.frame
        checkpoint: atst_frame          # a name given with --checkpoint atst_frame=PATH, or a path
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
from typing import Any

from ..resources import shipped
from ..tasks.folder import TaskFolder
from .cache import ModelSpec
from .overrides import apply_overrides
from .protocols import get_protocol

DEFAULT_SEEDS = [0, 1, 2]
_SUITE_KEYS = {
    "name",
    "description",
    "seeds",
    "tasks_dir",
    "references",
    "models",
    "tasks",
    "protocols",
}
_HEAR_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
_MODEL_KEYS = {"module", "checkpoint", "options", "reference", "sweep", "description"}
_TASK_KEYS = {"path", "reference", "description"}
_PROTOCOL_KEYS = {
    "protocol",
    "tasks",
    "models",
    "params",
    "task_params",
    "embedding_options",
    "seeds",
    "folds",
}


class SuiteError(ValueError):
    """A suite file that cannot be used; the message names the file and the entry."""


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


def _check_keys(entry: Any, allowed: set[str], where: str) -> None:
    _expect(isinstance(entry, Mapping), where, f"expected a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - allowed)
    _expect(not unknown, where, f"unknown keys {unknown}; allowed: {sorted(allowed)}")


def load_suite(
    path: str | os.PathLike,
    tasks_dir: str | os.PathLike | None = None,
    checkpoints: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Suite:
    """Read and check a suite; resolve task folders and checkpoint names lazily (see
    :func:`resolve`). ``overrides`` (``bench --set``) edit the YAML first (``overrides.py``)."""
    import yaml

    path = Path(path)
    if not path.is_file() and not path.suffix and len(path.parts) == 1:
        try:
            path = shipped("suites", path.name)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"suite file {path} does not exist, and {err}") from None
    if not path.is_file():
        raise FileNotFoundError(f"suite file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SuiteError(f"{path}: invalid YAML ({err})") from err
    if overrides and isinstance(raw, Mapping):
        raw = apply_overrides(raw, overrides)
    where = str(path)
    _check_keys(raw, _SUITE_KEYS, where)
    for key in ("models", "tasks", "protocols"):
        _expect(bool(raw.get(key)), where, f"'{key}' must list at least one entry")
    seeds = _seed_list(raw.get("seeds", DEFAULT_SEEDS), f"{where}: seeds")
    base_tasks_dir = Path(tasks_dir if tasks_dir is not None else raw.get("tasks_dir", "tasks"))
    checkpoints = dict(checkpoints or {})

    models: dict[str, SuiteModel] = {}
    for name, entry in raw["models"].items():
        for model in _expand_model(
            str(name), entry or {}, f"{where}: models.{name}", checkpoints, path
        ):
            models[model.name] = model
    tasks = {}
    for name, entry in raw["tasks"].items():
        entry = entry or {}
        _check_keys(entry, _TASK_KEYS, f"{where}: tasks.{name}")
        task_path = Path(entry.get("path", name))
        tasks[str(name)] = SuiteTask(
            str(name),
            task_path if task_path.is_absolute() else base_tasks_dir / task_path,
            entry.get("reference"),
        )
    protocols = []
    for i, entry in enumerate(raw["protocols"]):
        protocols.append(_protocol_entry(entry, f"{where}: protocols[{i}]", models, tasks, seeds))
    references = [path.parent / r for r in raw.get("references", [])]
    return Suite(
        path,
        str(raw.get("name", path.stem)),
        str(raw.get("description", "")),
        seeds,
        models,
        tasks,
        protocols,
        references,
        raw,
    )


def _seed_list(value: Any, where: str) -> list[int]:
    if isinstance(value, int):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(s, int) for s in value):
        raise SuiteError(f"{where}: expected a non-empty list of integers, got {value!r}")
    return list(value)


def _expand_model(name, entry, where, checkpoints, suite_path) -> list[SuiteModel]:
    _check_keys(entry, _MODEL_KEYS, where)
    _expect(
        isinstance(entry.get("module"), str), where, "'module' (a HEAR module path) is required"
    )
    options = dict(entry.get("options") or {})
    checkpoint = missing = None
    if entry.get("checkpoint") is not None:
        checkpoint = _resolve_checkpoint(str(entry["checkpoint"]), checkpoints, suite_path)
        missing = None if checkpoint else str(entry["checkpoint"])
    base = ModelSpec(name, entry["module"], checkpoint, options)
    sweep = entry.get("sweep") or {}
    if not sweep:
        check_model_options(base.module, options, where)
        return [SuiteModel(name, base, entry.get("reference"), missing_checkpoint=missing)]
    _expect(len(sweep) == 1, where, "'sweep' varies exactly one option, e.g. {n_blocks: [1, 12]}")
    ((option, values),) = sweep.items()
    _expect(isinstance(values, list) and values, where, f"sweep.{option} must be a non-empty list")
    expanded = []
    for value in values:
        check_model_options(base.module, {**options, option: value}, f"{where}: sweep.{option}")
        variant_name = f"{name}@{option}={value}"
        expanded.append(
            SuiteModel(
                variant_name,
                ModelSpec(variant_name, base.module, base.checkpoint, {**options, option: value}),
                entry.get("reference"),
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
    """The path a checkpoint name or path stands for; None when it is not (yet) given."""
    if value in checkpoints:
        return str(Path(checkpoints[value]).expanduser())
    for candidate in (Path(value).expanduser(), suite_path.parent / value):
        if candidate.is_file():
            return str(candidate)
    return None


def _protocol_entry(entry, where, models, tasks, suite_seeds) -> SuiteProtocol:
    _check_keys(entry, _PROTOCOL_KEYS, where)
    _expect(
        isinstance(entry.get("protocol"), str), where, "'protocol' (a protocol name) is required"
    )
    try:
        protocol = get_protocol(entry["protocol"])
    except ValueError as err:
        raise SuiteError(f"{where}: {err}") from None
    task_names = entry.get("tasks") or list(tasks)
    unknown = [t for t in task_names if t not in tasks]
    _expect(not unknown, where, f"unknown tasks {unknown}; the suite defines {sorted(tasks)}")
    model_names = _model_names(entry.get("models"), models, where)
    embedding_options = entry.get("embedding_options") or {}
    _expect(isinstance(embedding_options, Mapping), where, "'embedding_options' must be a mapping")
    if embedding_options:
        for name in model_names:
            spec = models[name].spec
            check_model_options(
                spec.module, {**spec.options, **embedding_options}, f"{where}: model {name}"
            )
    task_params = entry.get("task_params") or {}
    unknown = [t for t in task_params if t not in task_names]
    _expect(not unknown, where, f"task_params for tasks {unknown} that this entry does not run")
    try:
        protocol.resolve_params(entry.get("params"))
        for overrides in task_params.values():
            protocol.resolve_params({**(entry.get("params") or {}), **overrides})
    except ValueError as err:
        raise SuiteError(f"{where}: {err}") from None
    seeds = _seed_list(entry.get("seeds", suite_seeds), f"{where}: seeds")
    folds = entry.get("folds")
    _expect(folds is None or isinstance(folds, list), where, "'folds' must be a list of fold names")
    return SuiteProtocol(
        protocol=protocol.name,
        tasks=list(task_names),
        models=model_names,
        params=dict(entry.get("params") or {}),
        task_params={k: dict(v or {}) for k, v in task_params.items()},
        embedding_options=dict(embedding_options),
        seeds=seeds,
        folds=folds,
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
