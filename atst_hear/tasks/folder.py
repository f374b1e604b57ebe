"""HEAR task folders: the contract between dataset converters, the demo suite and the runner.

A task folder (hear-eval-kit's layout, docs/datasets.md) holds::

    task_metadata.json        task_name, embedding_type, prediction_type, split_mode, splits,
                              sample_duration, evaluation (primary score first), ...
    labelvocabulary.csv       "idx,label", labels sorted, idx 0..n-1
    <split>.json              {"<file>.wav": [labels]}  or  {"<file>.wav": [{"label", "start", "end"}]}
    <sample_rate>/<split>/<file>.wav
    file_groups.json          optional (atst-hear's, hear-eval-kit ignores it):
                              {"<split>": {"<file>.wav": "<group>"}}, the recording, speaker or
                              uploader each clip comes from; validation slices are drawn by group

:class:`TaskFolder` reads one; :mod:`.validation` lists every problem of a folder and
:mod:`.writing` writes one.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

EMBEDDING_TYPES = ("scene", "event")
PREDICTION_TYPES = ("multiclass", "multilabel")
SPLIT_MODES = ("trainvaltest", "new_split_kfold", "presplit_kfold")
REQUIRED_METADATA = (
    "task_name",
    "embedding_type",
    "prediction_type",
    "split_mode",
    "splits",
    "sample_duration",
    "evaluation",
)
FOLD_NAME = re.compile(r"^fold\d{2}$")
GROUP_FILE = "file_groups.json"


class TaskFolderError(ValueError):
    """A task folder that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Problem:
    """One finding of the validator."""

    path: str
    message: str
    line: int | None = None
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{self.severity.upper()} {where}: {self.message}"


@dataclass(frozen=True)
class Event:
    label: str
    start: float  # ms
    end: float  # ms


EventLike = Event | Mapping[str, Any]
EventDict = Mapping[str, Sequence[EventLike]]


def as_event(item: EventLike) -> Event:
    """An :class:`Event` from an event or a ``{"label", "start", "end"}`` dict (ms)."""
    if isinstance(item, Event):
        return item
    return Event(str(item["label"]), float(item["start"]), float(item["end"]))


@dataclass
class TaskFolder:
    """Read access to one HEAR task folder."""

    path: Path
    metadata: dict[str, Any]
    labels: list[str]
    _split_cache: dict[str, dict[str, list]] = field(default_factory=dict, repr=False)
    _group_cache: dict[str, dict[str, str]] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike) -> TaskFolder:
        path = Path(path)
        if not path.is_dir():
            raise TaskFolderError(f"{path}: task folder does not exist")
        metadata = load_json(path / "task_metadata.json")
        if not isinstance(metadata, dict):
            raise TaskFolderError(f"{path / 'task_metadata.json'}: expected a JSON object")
        missing = [key for key in REQUIRED_METADATA if key not in metadata]
        if missing:
            raise TaskFolderError(f"{path / 'task_metadata.json'}: missing keys {missing}")
        labels, problems = read_vocabulary(path / "labelvocabulary.csv")
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise TaskFolderError(str(errors[0]))
        return cls(path=path, metadata=metadata, labels=labels)

    # --- metadata -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.metadata["task_name"])

    @property
    def embedding_type(self) -> str:
        return self.metadata["embedding_type"]

    @property
    def prediction_type(self) -> str:
        return self.metadata["prediction_type"]

    @property
    def is_event(self) -> bool:
        return self.embedding_type == "event"

    @property
    def is_multilabel(self) -> bool:
        return self.prediction_type == "multilabel"

    @property
    def split_mode(self) -> str:
        return self.metadata["split_mode"]

    @property
    def is_kfold(self) -> bool:
        return self.split_mode != "trainvaltest"

    @property
    def splits(self) -> list[str]:
        return list(self.metadata["splits"])

    @property
    def sample_duration(self) -> float | None:
        value = self.metadata["sample_duration"]
        return None if value is None else float(value)

    @property
    def evaluation(self) -> list[str]:
        return list(self.metadata["evaluation"])

    @property
    def primary_score(self) -> str:
        return self.evaluation[0]

    @cached_property
    def label_index(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    # --- splits ---------------------------------------------------------------------------
    def split_file(self, split: str) -> Path:
        return self.path / f"{split}.json"

    def split_labels(self, split: str) -> dict[str, list]:
        """``{filename: [label, ...]}`` for scene tasks, ``{filename: [Event, ...]}`` for events."""
        if split not in self._split_cache:
            raw = load_json(self.split_file(split))
            if not isinstance(raw, dict):
                raise TaskFolderError(f"{self.split_file(split)}: expected a JSON object")
            if self.is_event:
                parsed = {
                    name: [Event(str(e["label"]), float(e["start"]), float(e["end"])) for e in ev]
                    for name, ev in raw.items()
                }
            else:
                parsed = {name: [str(label) for label in labels] for name, labels in raw.items()}
            self._split_cache[split] = parsed
        return self._split_cache[split]

    def audio_dir(self, split: str, sample_rate: int = 16000) -> Path:
        return self.path / str(sample_rate) / split

    def audio_path(self, split: str, filename: str, sample_rate: int = 16000) -> Path:
        return self.audio_dir(split, sample_rate) / filename

    def sample_rates(self) -> list[int]:
        return sorted(int(p.name) for p in self.path.iterdir() if p.is_dir() and p.name.isdigit())

    # --- groups ---------------------------------------------------------------------------
    @property
    def has_groups(self) -> bool:
        return (self.path / GROUP_FILE).is_file()

    def groups(self, split: str) -> dict[str, str] | None:
        """``{filename: group}`` for every file of ``split`` (the source recording, speaker or
        uploader it comes from), or None when the task records no groups."""
        if not self.has_groups:
            return None
        if self._group_cache is None:
            problems, self._group_cache = read_groups(self.path / GROUP_FILE)
            if problems:
                raise TaskFolderError(str(problems[0]))
        stored = self._group_cache
        files = self.split_labels(split)
        missing = sorted(set(files) - set(stored.get(split, {})))
        if missing:
            raise TaskFolderError(
                f"{self.path / GROUP_FILE}: no group for {len(missing)} files of split "
                f"{split!r} (e.g. {missing[0]})"
            )
        return {name: stored[split][name] for name in files}


def read_groups(path: Path) -> tuple[list[Problem], dict[str, dict[str, str]]]:
    try:
        stored = load_json(path)
    except TaskFolderError as err:
        return [Problem(str(path), str(err).split(": ", 1)[-1])], {}
    shape = 'expected {"<split>": {"<file>.wav": "<group>"}}'
    if not isinstance(stored, dict) or not all(isinstance(v, dict) for v in stored.values()):
        return [Problem(str(path), shape)], {}
    for split, files in stored.items():
        for name, group in files.items():
            if not isinstance(group, str) or not group:
                return [
                    Problem(
                        str(path),
                        f"{split}/{name}: group must be a non-empty string, got {group!r}",
                    )
                ], {}
    return [], stored


def read_vocabulary(path: Path) -> tuple[list[str], list[Problem]]:
    if not path.is_file():
        return [], [Problem(str(path), "labelvocabulary.csv is missing")]
    problems = []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as err:
        return [], [Problem(str(path), f"not UTF-8 text (byte {err.start}: {err.reason})")]
    if not rows or [c.strip() for c in rows[0]] != ["idx", "label"]:
        return [], [Problem(str(path), 'first line must be the header "idx,label"', 1)]
    labels: list[str] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or not row[0].strip().isdigit():
            problems.append(Problem(str(path), f"expected 'idx,label', got {row}", line_no))
            continue
        if int(row[0]) != len(labels):
            problems.append(
                Problem(str(path), f"idx {row[0]} out of order, expected {len(labels)}", line_no)
            )
        if row[1] in labels:
            problems.append(Problem(str(path), f"duplicate label {row[1]!r}", line_no))
        labels.append(row[1])
    if not labels:
        problems.append(Problem(str(path), "vocabulary is empty"))
    return labels, problems


def load_json(path: Path) -> Any:
    if not path.is_file():
        raise TaskFolderError(f"{path}: file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise TaskFolderError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})") from err
    except UnicodeDecodeError as err:
        raise TaskFolderError(
            f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); JSON files must be UTF-8"
        ) from err
    except OSError as err:
        raise TaskFolderError(f"{path}: cannot read ({err.strerror or err})") from err


def json_key_line(text: str, key: str) -> int | None:
    position = text.find(json.dumps(key))
    return None if position < 0 else text.count("\n", 0, position) + 1
