"""HEAR task folders: the contract between dataset converters, the demo suite and the runner.

A task folder (hear-eval-kit's layout, see ``hear-contract.md`` §2) holds::

    task_metadata.json        task_name, embedding_type, prediction_type, split_mode, splits,
                              sample_duration, evaluation (primary score first), ...
    labelvocabulary.csv       "idx,label", labels sorted, idx 0..n-1
    <split>.json              {"<file>.wav": [labels]}  or  {"<file>.wav": [{"label", "start", "end"}]}
    <sample_rate>/<split>/<file>.wav
    file_groups.json          optional (atst-hear's, hear-eval-kit ignores it):
                              {"<split>": {"<file>.wav": "<group>"}}, the recording, speaker or
                              uploader each clip comes from; validation slices are drawn by group

:class:`TaskFolder` reads one; :func:`validate_task_folder` lists every problem with the file
(and line, for JSON/CSV) it was found in; :func:`write_task_files` writes the metadata,
vocabulary and split files of a folder whose audio is already in place.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..audio import AudioError, audio_info
from ..fileio import write_json_atomic, write_text_atomic

EMBEDDING_TYPES = ("scene", "event")
PREDICTION_TYPES = ("multiclass", "multilabel")
SPLIT_MODES = ("trainvaltest", "new_split_kfold", "presplit_kfold")
# the score functions hear-eval-kit implements (heareval/score.py), then the ones it lacks
HEAREVAL_SCORES = (
    "top1_acc",
    "pitch_acc",
    "chroma_acc",
    "mAP",
    "d_prime",
    "aucroc",
    "event_onset_200ms_fms",
    "event_onset_50ms_fms",
    "event_onset_offset_50ms_20perc_fms",
    "segment_1s_er",
)
SCORES = HEAREVAL_SCORES + (
    "psds1",
    "psds2",
    "psds1_sed_scores_eval",
    "psds2_sed_scores_eval",
    "intersection_f1",
)
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
        metadata = _load_json(path / "task_metadata.json")
        if not isinstance(metadata, dict):
            raise TaskFolderError(f"{path / 'task_metadata.json'}: expected a JSON object")
        missing = [key for key in REQUIRED_METADATA if key not in metadata]
        if missing:
            raise TaskFolderError(f"{path / 'task_metadata.json'}: missing keys {missing}")
        labels, problems = _read_vocabulary(path / "labelvocabulary.csv")
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
            raw = _load_json(self.split_file(split))
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
            problems, self._group_cache = _read_groups(self.path / GROUP_FILE)
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


# --- writing --------------------------------------------------------------------------------
def task_metadata(
    task_name: str,
    embedding_type: str,
    prediction_type: str,
    split_mode: str,
    splits: Iterable[str],
    sample_duration: float | None,
    evaluation: Iterable[str],
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``task_metadata.json`` dict, checking every value against the contract."""
    meta = {
        "task_name": task_name,
        "embedding_type": embedding_type,
        "prediction_type": prediction_type,
        "split_mode": split_mode,
        "splits": list(splits),
        "sample_duration": sample_duration,
        "evaluation": list(evaluation),
        **extra,
    }
    problems = _check_metadata(meta, "task_metadata.json", lambda key: None)
    if problems:
        raise TaskFolderError("; ".join(str(p) for p in problems))
    return meta


def write_task_files(
    folder: str | os.PathLike,
    metadata: Mapping[str, Any],
    split_labels: Mapping[str, Mapping[str, list]],
    labels: Iterable[str] | None = None,
    groups: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Write ``task_metadata.json``, ``labelvocabulary.csv``, every ``<split>.json`` and, when
    ``groups`` is given, ``file_groups.json``.

    ``split_labels[split][filename]`` is a label list (scene) or a list of ``Event`` /
    ``{"label", "start", "end"}`` dicts in milliseconds (event). The vocabulary defaults to the
    sorted union of the labels used. ``groups[split][filename]`` names the recording, speaker
    or uploader a clip comes from; every file of every task split needs one.
    """
    folder = Path(folder)
    used: set[str] = set()
    for split in metadata["splits"]:
        if split not in split_labels:
            raise TaskFolderError(f"{folder}: no labels given for split {split!r}")
    for split, files in split_labels.items():
        serialised = {}
        for name, items in files.items():
            entry = [
                _event_dict(item) if metadata["embedding_type"] == "event" else str(item)
                for item in items
            ]
            used.update(e["label"] if isinstance(e, dict) else e for e in entry)
            serialised[name] = entry
        write_json_atomic(folder / f"{split}.json", serialised, indent=1)
    vocabulary = sorted(used) if labels is None else list(labels)
    unknown = used - set(vocabulary)
    if unknown:
        raise TaskFolderError(f"{folder}: labels {sorted(unknown)[:10]} are not in the vocabulary")
    lines = ["idx,label"] + [f"{i},{_csv_field(label)}" for i, label in enumerate(vocabulary)]
    write_text_atomic(folder / "labelvocabulary.csv", "\n".join(lines) + "\n")
    if groups is not None:
        for split in metadata["splits"]:
            missing = sorted(set(split_labels[split]) - set(groups.get(split, {})))
            if missing:
                raise TaskFolderError(
                    f"{folder}: no group given for {len(missing)} files of split {split!r} "
                    f"(e.g. {missing[0]})"
                )
        stored = {
            split: {name: str(group) for name, group in sorted(files.items())}
            for split, files in groups.items()
        }
        write_json_atomic(folder / GROUP_FILE, stored, indent=1)
    write_json_atomic(folder / "task_metadata.json", dict(metadata))


def _event_dict(item: Event | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, Event):
        return {"label": item.label, "start": item.start, "end": item.end}
    return {"label": str(item["label"]), "start": float(item["start"]), "end": float(item["end"])}


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# --- validation -----------------------------------------------------------------------------
def validate_task_folder(
    path: str | os.PathLike, sample_rate: int = 16000, check_audio: bool = True
) -> list[Problem]:
    """Every problem found in a task folder (errors and warnings); an empty list means valid."""
    path = Path(path)
    if not path.is_dir():
        return [Problem(str(path), "task folder does not exist")]
    problems: list[Problem] = []
    meta_path = path / "task_metadata.json"
    try:
        meta = _load_json(meta_path)
    except TaskFolderError as err:
        return [Problem(str(meta_path), str(err).split(": ", 1)[-1])]
    meta_text = meta_path.read_text(encoding="utf-8")
    problems += _check_metadata(meta, str(meta_path), lambda key: _json_key_line(meta_text, key))
    if any(p.severity == "error" for p in problems):
        return problems

    labels, vocab_problems = _read_vocabulary(path / "labelvocabulary.csv")
    problems += vocab_problems
    vocabulary = set(labels)
    event = meta["embedding_type"] == "event"
    multiclass = meta["prediction_type"] == "multiclass"
    duration = meta["sample_duration"]
    used_labels: set[str] = set()

    for split in meta["splits"]:
        split_path = path / f"{split}.json"
        try:
            entries = _load_json(split_path)
        except TaskFolderError as err:
            problems.append(Problem(str(split_path), str(err).split(": ", 1)[-1]))
            continue
        if not isinstance(entries, dict):
            problems.append(Problem(str(split_path), "expected a JSON object {file: labels}"))
            continue
        text = split_path.read_text(encoding="utf-8")
        audio_dir = path / str(sample_rate) / split
        if not audio_dir.is_dir():
            problems.append(Problem(str(audio_dir), "audio folder for this split is missing"))
        if not entries:
            problems.append(Problem(str(split_path), "split lists no files"))
        max_event_end = 0.0
        for filename, items in entries.items():
            line = _json_key_line(text, filename)

            def report(message: str, severity: str = "error", _line=line, _path=split_path) -> None:
                problems.append(Problem(str(_path), message, _line, severity))

            if not filename.endswith(".wav"):
                report(f"file name {filename!r} must end in .wav")
            clip_ms = None if duration is None else 1000.0 * float(duration)
            wav = audio_dir / filename
            if audio_dir.is_dir():
                if not wav.is_file():
                    report(f"{filename}: audio file {wav} is missing")
                elif check_audio:
                    clip_ms = _check_wav(wav, sample_rate, duration, problems) or clip_ms
            if not isinstance(items, list):
                report(f"{filename}: labels must be a list, got {type(items).__name__}")
                continue
            if event:
                for item in items:
                    end = _check_event(item, filename, clip_ms, vocabulary, report)
                    if end is not None:
                        max_event_end = max(max_event_end, end)
                        used_labels.add(str(item.get("label")))
            else:
                if multiclass and len(items) != 1:
                    report(f"{filename}: multiclass task needs exactly 1 label, got {len(items)}")
                for label in items:
                    if str(label) not in vocabulary:
                        report(f"{filename}: label {label!r} is not in labelvocabulary.csv")
                    used_labels.add(str(label))
        if event and duration and 0 < max_event_end <= float(duration):
            problems.append(
                Problem(
                    str(split_path),
                    f"every event ends by {max_event_end:g} although clips last "
                    f"{float(duration) * 1000:g} ms: event times look like seconds, "
                    "HEAR expects milliseconds",
                )
            )
        if audio_dir.is_dir():
            listed = set(entries)
            extra = sorted(p.name for p in audio_dir.glob("*.wav") if p.name not in listed)
            if extra:
                problems.append(
                    Problem(
                        str(audio_dir),
                        f"{len(extra)} wav files are not listed in {split}.json (e.g. {extra[0]})",
                        severity="warning",
                    )
                )
    problems += _check_groups(path, meta["splits"])
    unused = sorted(vocabulary - used_labels)
    if unused:
        problems.append(
            Problem(
                str(path / "labelvocabulary.csv"),
                f"{len(unused)} labels never occur in any split (e.g. {unused[0]!r})",
                severity="warning",
            )
        )
    return problems


def _check_metadata(meta: Any, where: str, line_of) -> list[Problem]:
    if not isinstance(meta, dict):
        return [Problem(where, "expected a JSON object")]
    problems = []

    def bad(key: str, message: str) -> None:
        problems.append(Problem(where, f"{key}: {message}", line_of(key)))

    for key in REQUIRED_METADATA:
        if key not in meta:
            problems.append(Problem(where, f"missing required key {key!r}"))
    if problems:
        return problems
    if not isinstance(meta["task_name"], str) or not meta["task_name"]:
        bad("task_name", "must be a non-empty string")
    if meta["embedding_type"] not in EMBEDDING_TYPES:
        bad("embedding_type", f"{meta['embedding_type']!r} is not one of {EMBEDDING_TYPES}")
    if meta["prediction_type"] not in PREDICTION_TYPES:
        bad("prediction_type", f"{meta['prediction_type']!r} is not one of {PREDICTION_TYPES}")
    mode, splits = meta["split_mode"], meta["splits"]
    if mode not in SPLIT_MODES:
        bad("split_mode", f"unknown split mode {mode!r}; expected one of {SPLIT_MODES}")
    elif not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        bad("splits", "must be a list of split names")
    elif mode == "trainvaltest" and splits != ["train", "valid", "test"]:
        bad("splits", f'trainvaltest needs ["train", "valid", "test"], got {splits}')
    elif mode != "trainvaltest" and (
        len(splits) < 2 or splits != sorted(splits) or not all(FOLD_NAME.match(s) for s in splits)
    ):
        bad(
            "splits",
            f"{mode} needs sorted fold names fold00, fold01, ... (at least 2), got {splits}",
        )
    duration = meta["sample_duration"]
    if duration is not None and (
        not isinstance(duration, int | float) or not math.isfinite(duration) or duration <= 0
    ):
        bad("sample_duration", f"must be a positive number of seconds or null, got {duration!r}")
    evaluation = meta["evaluation"]
    if not isinstance(evaluation, list) or not evaluation:
        bad("evaluation", "must be a non-empty list of score names, primary first")
    else:
        unknown = [s for s in evaluation if s not in SCORES]
        if unknown:
            bad("evaluation", f"unknown score names {unknown}; known: {list(SCORES)}")
    return problems


def _read_groups(path: Path) -> tuple[list[Problem], dict[str, dict[str, str]]]:
    try:
        stored = _load_json(path)
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


def _check_groups(path: Path, splits: list[str]) -> list[Problem]:
    """``file_groups.json``, when present, names a group for every file of every split."""
    group_path = path / GROUP_FILE
    if not group_path.is_file():
        return []
    problems, stored = _read_groups(group_path)
    if problems:
        return problems
    for split in splits:
        try:
            files = set(_load_json(path / f"{split}.json"))
        except (TaskFolderError, TypeError):
            continue  # the split file's own problem is reported already
        listed = set(stored.get(split, {}))
        if files - listed:
            missing = sorted(files - listed)
            problems.append(
                Problem(
                    str(group_path),
                    f"split {split!r}: {len(missing)} files have no group (e.g. {missing[0]})",
                )
            )
        if listed - files:
            extra = sorted(listed - files)
            problems.append(
                Problem(
                    str(group_path),
                    f"split {split!r}: {len(extra)} grouped files are not in {split}.json "
                    f"(e.g. {extra[0]})",
                )
            )
    return problems


def _read_vocabulary(path: Path) -> tuple[list[str], list[Problem]]:
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


def _check_wav(wav: Path, sample_rate: int, duration, problems: list[Problem]) -> float | None:
    """Check one wav file; return its length in ms when readable."""
    try:
        rate, frames, channels = audio_info(wav)
    except AudioError as err:
        problems.append(Problem(str(wav), f"unreadable audio ({err})"))
        return None
    if rate != sample_rate:
        problems.append(Problem(str(wav), f"sample rate {rate} Hz, expected {sample_rate} Hz"))
    if channels != 1:
        problems.append(Problem(str(wav), f"{channels} channels, expected mono"))
    if frames == 0:
        problems.append(Problem(str(wav), "audio file holds no samples"))
    if duration is not None and abs(frames - round(float(duration) * rate)) > 1:
        problems.append(
            Problem(
                str(wav),
                f"{frames} samples, expected {round(float(duration) * rate)} "
                f"(sample_duration {duration} s at {rate} Hz)",
            )
        )
    return 1000.0 * frames / rate if rate else None


def _check_event(item: Any, filename: str, clip_ms: float | None, vocabulary, report):
    """Check one event dict; return its end time when well-formed."""
    if not isinstance(item, dict) or not {"label", "start", "end"} <= set(item):
        report(f"{filename}: event must be {{'label', 'start', 'end'}}, got {item!r}")
        return None
    label, start, end = item["label"], item["start"], item["end"]
    if str(label) not in vocabulary:
        report(f"{filename}: label {label!r} is not in labelvocabulary.csv")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (start, end)):
        report(f"{filename}: event times must be finite numbers (ms), got {start!r}, {end!r}")
        return None
    if start < 0 or end < start:
        report(f"{filename}: event [{start}, {end}] ms must satisfy 0 <= start <= end")
    tolerance_ms = 1.0
    if clip_ms is not None and end > clip_ms + tolerance_ms:
        report(f"{filename}: event ends at {end} ms, after the clip's end at {clip_ms:g} ms")
    return float(end)


def _load_json(path: Path) -> Any:
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


def _json_key_line(text: str, key: str) -> int | None:
    position = text.find(json.dumps(key))
    return None if position < 0 else text.count("\n", 0, position) + 1
