"""DESED, as used by DCASE 2021 task 4: 10 s domestic soundscapes with 10 event classes.

Raw layout (the ``dataset`` folder built by DESED_task's ``generate_dcase_task4_2021.py``;
RAW_DIR may also be a parent holding ``dataset/`` or ``dcase2021/dataset/``)::

    audio/train/synthetic21_train/soundscapes/*.wav           metadata/train/synthetic21_train/soundscapes.tsv
    audio/validation/synthetic21_validation/soundscapes/*.wav metadata/validation/synthetic21_validation/soundscapes.tsv
    audio/validation/validation/*.wav  (real recordings)     metadata/validation/validation.tsv
    audio/train/weak/*.wav             (real recordings)     metadata/train/weak.tsv

Strong tables have columns filename, onset, offset, event_label (seconds); ``weak.tsv`` has
filename, event_labels (comma-separated).

Splits follow the ATST paper's DCASE protocol (docs/datasets.md, DESED): train = synthetic train,
valid = synthetic validation, test = the real validation set. Event times are written in
milliseconds; events starting at or after 10 s are dropped and the others end at 10 s at the
latest (hear-preprocess's trimming); files without target events are listed with ``[]`` (the
synthetic tables list only files that hold target events, so every audio file is listed). The
weak clips are split 90 / 10 exactly as the DESED baseline and the paper do (pandas
``sample(frac=0.9, random_state=42)`` over ``weak.tsv`` in file order), converted into
``16000/weak_train`` and ``16000/weak_valid``, and their labels written to ``weak_labels.json``
for the SED protocol; heareval ignores them.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ...tasks.folder import Event
from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, read_table

VERSION = 1
CLASSES = (
    *("Alarm_bell_ringing", "Blender", "Cat", "Dishes", "Dog", "Electric_shaver_toothbrush"),
    *("Frying", "Running_water", "Speech", "Vacuum_cleaner"),
)
CLIP_S = 10.0
# split: (audio folder, strong table, prefix that keeps synthetic names such as 0.wav unique)
STRONG_SUBSETS = {
    "train": (
        "audio/train/synthetic21_train/soundscapes",
        "metadata/train/synthetic21_train/soundscapes.tsv",
        "synthetic21_train-",
    ),
    "valid": (
        "audio/validation/synthetic21_validation/soundscapes",
        "metadata/validation/synthetic21_validation/soundscapes.tsv",
        "synthetic21_validation-",
    ),
    "test": ("audio/validation/validation", "metadata/validation/validation.tsv", ""),
}
WEAK_AUDIO = "audio/train/weak"
WEAK_TABLE = "metadata/train/weak.tsv"
WEAK_TRAIN_FRACTION, WEAK_SEED = 0.9, 42  # DESED baseline's weak_split and seed
WEAK_SPLITS = ("weak_train", "weak_valid")
WEAK_LABEL_FILE = "weak_labels.json"
KNOWN_COUNTS = {
    "train clips": 10000,
    "valid clips": 2500,
    "test clips": 1168,
    "weak clips": 1578,
    "classes": 10,
}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, STRONG_SUBSETS["test"][1], ["dataset", "dcase2021/dataset"])
    clips, found, used_labels = [], {}, set()
    trimming = {"dropped": 0, "clipped": 0}
    for split, (audio_dir, table, prefix) in STRONG_SUBSETS.items():
        events = _strong_events(root / table, bad, trimming)
        on_disk = {p.name for p in (root / audio_dir).glob("*.wav")}
        names = sorted(on_disk | set(events))
        found[f"{split} clips"] = len(names)
        for filename in names:
            file_events = events.get(filename, [])
            if file_events is None:
                continue  # a file with a bad row, already reported
            file_events.sort(key=lambda e: (e.start, e.end, e.label))
            used_labels.update(event.label for event in file_events)
            clips.append(
                Clip(split, prefix + filename, root / audio_dir / filename, tuple(file_events))
            )
    weak_clips, found["weak clips"] = _weak_clips(root, bad)
    clips += weak_clips
    used_labels.update(label for clip in weak_clips for label in clip.labels)
    found["classes"] = len(used_labels)
    metadata = task_metadata(
        "desed",
        "event",
        "multilabel",
        "trainvaltest",
        ["train", "valid", "test"],
        CLIP_S,
        ["psds1", "psds2", "event_onset_200ms_fms", "segment_1s_er", "intersection_f1"],
        weak_label_file=WEAK_LABEL_FILE,
        weak_splits=list(WEAK_SPLITS),
    )
    return TaskPlan(
        dataset="desed",
        dataset_version="DESED, DCASE 2021 task 4 development set (synthetic21, weak, validation)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(CLASSES),
        clips=clips,
        found_counts=found,
        known_counts=KNOWN_COUNTS,
        side_label_file=WEAK_LABEL_FILE,
        notes=[
            f"{trimming['dropped']} events starting at or after {CLIP_S:g} s dropped, "
            f"{trimming['clipped']} events cut at {CLIP_S:g} s"
        ],
    )


def _strong_events(
    table: Path, bad: BadInputs, trimming: dict[str, int]
) -> dict[str, list[Event] | None]:
    """``{filename: events}`` from a strong table; ``None`` marks a file with a bad row."""
    events: dict[str, list[Event] | None] = {}
    clip_ms = CLIP_S * 1000.0
    for where, row in read_table(table, ["filename", "onset", "offset", "event_label"], "\t"):
        filename = row["filename"].strip()
        label = (row["event_label"] or "").strip()
        onset, offset = (row["onset"] or "").strip(), (row["offset"] or "").strip()
        if events.get(filename, []) is None:
            continue
        file_events = events.setdefault(filename, [])
        if not label and not onset and not offset:
            continue  # a file without events
        problem = _event_problem(label, onset, offset)
        if problem:
            bad.report(where, problem)
            events[filename] = None
            continue
        start, end = float(onset) * 1000.0, float(offset) * 1000.0
        if start >= clip_ms:
            trimming["dropped"] += 1
            continue
        if end > clip_ms:
            trimming["clipped"] += 1
            end = clip_ms
        file_events.append(Event(label, round(start, 3), round(end, 3)))
    return events


def _event_problem(label: str, onset: str, offset: str) -> str | None:
    if label not in CLASSES:
        return f"unknown label {label!r} (not a DESED class)"
    try:
        start, end = float(onset), float(offset)
    except ValueError:
        return f"onset {onset!r} / offset {offset!r} are not numbers of seconds"
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        return f"event [{onset}, {offset}] s does not satisfy 0 <= onset <= offset"
    return None


def _weak_clips(root: Path, bad: BadInputs) -> tuple[list[Clip], int]:
    rows = read_table(root / WEAK_TABLE, ["filename", "event_labels"], "\t")
    # the same draw as the DESED baseline: it depends only on the row count, in file order
    order = pd.DataFrame({"filename": [row["filename"] for _, row in rows]})
    train_rows = set(order.sample(frac=WEAK_TRAIN_FRACTION, random_state=WEAK_SEED).index)
    clips = []
    for index, (where, row) in enumerate(rows):
        labels = sorted({label.strip() for label in (row["event_labels"] or "").split(",")} - {""})
        unknown = [label for label in labels if label not in CLASSES]
        if unknown or not labels:
            bad.report(
                where, f"unknown label(s) {unknown} (not DESED classes)" if unknown else "no labels"
            )
            continue
        filename = row["filename"].strip()
        clips.append(
            Clip(
                split=WEAK_SPLITS[0] if index in train_rows else WEAK_SPLITS[1],
                name=filename,
                source=root / WEAK_AUDIO / filename,
                labels=tuple(labels),
            )
        )
    return clips, len(rows)
