"""Validation of a task folder: every problem, with the file (and line, for JSON/CSV) it was
found in."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..audio import AudioError, audio_info
from .folder import (
    EMBEDDING_TYPES,
    FOLD_NAME,
    GROUP_FILE,
    PREDICTION_TYPES,
    REQUIRED_METADATA,
    SPLIT_MODES,
    Problem,
    TaskFolderError,
    json_key_line,
    load_json,
    read_groups,
    read_vocabulary,
)
from .scores import SCORES


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
        meta = load_json(meta_path)
    except TaskFolderError as err:
        return [Problem(str(meta_path), str(err).split(": ", 1)[-1])]
    meta_text = meta_path.read_text(encoding="utf-8")
    problems += check_metadata(meta, str(meta_path), lambda key: json_key_line(meta_text, key))
    if any(p.severity == "error" for p in problems):
        return problems

    labels, vocab_problems = read_vocabulary(path / "labelvocabulary.csv")
    problems += vocab_problems
    vocabulary = set(labels)
    event = meta["embedding_type"] == "event"
    multiclass = meta["prediction_type"] == "multiclass"
    duration = meta["sample_duration"]
    used_labels: set[str] = set()

    for split in meta["splits"]:
        split_path = path / f"{split}.json"
        try:
            entries = load_json(split_path)
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
            line = json_key_line(text, filename)

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


def check_metadata(meta: Any, where: str, line_of) -> list[Problem]:
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


def _check_groups(path: Path, splits: list[str]) -> list[Problem]:
    """``file_groups.json``, when present, names a group for every file of every split."""
    group_path = path / GROUP_FILE
    if not group_path.is_file():
        return []
    problems, stored = read_groups(group_path)
    if problems:
        return problems
    for split in splits:
        try:
            files = set(load_json(path / f"{split}.json"))
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
