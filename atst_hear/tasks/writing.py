"""Writing the metadata, vocabulary, split and group files of a task folder whose audio is in
place (the converters' atomic writer, ``bench/prepare/writer.py``, calls these)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..fileio import write_json_atomic, write_text_atomic
from .folder import GROUP_FILE, Event, TaskFolderError
from .validation import check_metadata


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
    problems = check_metadata(meta, "task_metadata.json", lambda key: None)
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
