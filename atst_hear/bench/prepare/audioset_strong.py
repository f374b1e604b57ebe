"""AS-strong: AudioSet's temporally-strong labels (May 2021) as a HEAR event task.

See :mod:`.audioset` for the layout and the recipe (variant ``strong``).
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

from ...tasks.folder import Event
from ...tasks.writing import task_metadata
from .audioset_files import CLIP_S, VERSION, AudioIndex, Coverage, metadata_file
from .plan import BadInputs, Clip, TaskPlan

STRONG_LISTS = {"train": "audioset_train_strong.tsv", "eval": "audioset_eval_strong.tsv"}
STRONG_COLUMNS = ["segment_id", "start_time_seconds", "end_time_seconds", "label"]
STRONG_NAMES = "mid_to_display_name.tsv"
# Google's strong-label page (download_strong.html): clips annotated in each list
STRONG_KNOWN = {"train segments": 103463, "eval segments": 16996}
EVENT_SCORES = ["psds1", "psds2", "event_onset_200ms_fms", "segment_1s_er"]
VALID_SOURCE = (
    "audioset_eval_strong.tsv: the test clips again, as the official AS-strong config "
    "validates and selects checkpoints on the eval set"
)


def strong_plan(raw_dir: Path, bad: BadInputs, min_found: float | None) -> TaskPlan:
    names = _strong_names(metadata_file(raw_dir, STRONG_NAMES))
    audio = AudioIndex(raw_dir)
    found_counts: dict[str, int] = {}
    per_list: dict[str, dict[str, tuple[Path, list[Event]]]] = {}
    coverage = Coverage()
    trimming: Counter[str] = Counter()
    for list_name, table in STRONG_LISTS.items():
        events = _strong_events(metadata_file(raw_dir, table), names, bad, trimming)
        found_counts[f"{list_name} segments"] = len(events)
        split = "train" if list_name == "train" else "test"
        per_list[list_name] = {}
        for segment, (where, file_events) in events.items():
            if file_events is None:
                continue  # a bad row, already reported
            source = audio.find(segment.rsplit("_", 1)[0], where, bad)
            coverage.add(split, segment, sorted({e.label for e in file_events}), source is not None)
            if source is not None:
                per_list[list_name][segment] = (source, file_events)
    coverage.check(min_found)
    common = set.intersection(
        *({e.label for _, evs in found.values() for e in evs} for found in per_list.values())
    )
    clips, dropped, merged = [], Counter(), 0
    for list_name, found in per_list.items():
        for segment, (source, file_events) in sorted(found.items()):
            if any(event.label not in common for event in file_events):
                dropped[list_name] += 1
                continue
            events, n_merged = merge_overlaps(file_events)
            merged += n_merged
            splits = ["train"] if list_name == "train" else ["test", "valid"]
            for split in splits:
                suffix = ".valid.wav" if split == "valid" else ".wav"
                clips.append(Clip(split, f"{segment}{suffix}", source, tuple(events)))
    metadata = task_metadata(
        "audioset_strong",
        "event",
        "multilabel",
        "trainvaltest",
        ["train", "valid", "test"],
        CLIP_S,
        EVENT_SCORES,
        valid_source=VALID_SOURCE,
    )
    return TaskPlan(
        dataset="audioset",
        dataset_version="AudioSet temporally-strong labels (May 2021) with the audio on disk",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(common),
        clips=clips,
        found_counts=found_counts,
        known_counts=STRONG_KNOWN,
        notes=[
            f"{len(common)} classes occur in both the train and the eval clips found (the "
            f"official common_labels.txt); clips with other classes dropped: train "
            f"{dropped['train']}, eval {dropped['eval']}",
            f"{merged} overlapping events of the same class merged into the event they overlap",
            f"{trimming['cut']} events cut at {CLIP_S:g} s, {trimming['dropped']} starting at or "
            f"after it dropped",
            "valid = the eval clips again, as the official AS-strong config",
            *coverage.notes(),
        ],
        manifest_extra=coverage.manifest(),
    )


def _strong_names(path: Path) -> dict[str, str]:
    """``{mid: display name}`` from ``mid_to_display_name.tsv`` (two columns, no header)."""
    names: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row:
                continue
            if len(row) != 2 or not row[0].startswith("/"):
                raise ValueError(f"{path}:{line_no}: expected '<mid>\\t<display name>', got {row}")
            if row[1] in names.values():
                raise ValueError(f"{path}:{line_no}: display name {row[1]!r} listed twice")
            names[row[0]] = row[1]
    return names


def _strong_events(
    path: Path, names: Mapping[str, str], bad: BadInputs, trimming: Counter[str]
) -> dict[str, tuple[str, list[Event] | None]]:
    """``{segment_id: (file:line of its first row, events in ms or None after a bad row)}``;
    events are cut at the clip's end, those starting after it dropped (counted in trimming)."""
    events: dict[str, tuple[str, list[Event] | None]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in STRONG_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing columns {missing}; the header is {reader.fieldnames}"
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            segment = (row["segment_id"] or "").strip()
            if not re.fullmatch(r"[A-Za-z0-9_-]{11}_\d+", segment):
                raise ValueError(
                    f"{where}: segment_id {segment!r} is not '<YouTube id>_<start ms>'"
                )
            first, file_events = events.setdefault(segment, (where, []))
            if file_events is None:
                continue
            problem = _strong_problem(row, names)
            if problem:
                bad.report(where, problem)
                events[segment] = (first, None)
                continue
            start = 1000.0 * float(row["start_time_seconds"])
            end = 1000.0 * float(row["end_time_seconds"])
            if start >= 1000.0 * CLIP_S:
                trimming["dropped"] += 1
                continue
            if end > 1000.0 * CLIP_S:
                trimming["cut"] += 1
                end = 1000.0 * CLIP_S
            file_events.append(Event(names[row["label"].strip()], round(start, 3), round(end, 3)))
    return events


def _strong_problem(row: Mapping[str, str | None], names: Mapping[str, str]) -> str | None:
    mid = (row["label"] or "").strip()
    if mid not in names:
        return f"unknown label id {mid!r} (not in {STRONG_NAMES})"
    try:
        start, end = float(row["start_time_seconds"] or ""), float(row["end_time_seconds"] or "")
    except ValueError:
        return "start/end times are not numbers of seconds"
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        return f"event [{start}, {end}] s does not satisfy 0 <= start <= end"
    return None


def merge_overlaps(events: Iterable[Event]) -> tuple[list[Event], int]:
    """Merge overlapping events of one label (touching ones stay apart, as in the official
    ``intersected_event_filtrate.py``, which assumes rows sorted by onset; here they are sorted);
    returns the events sorted by start and how many were merged away."""
    by_label: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_label[event.label].append(event)
    result, merged = [], 0
    for label, items in by_label.items():
        items.sort(key=lambda e: (e.start, e.end))
        start, end = items[0].start, items[0].end
        for event in items[1:]:
            if event.start < end:
                end = max(end, event.end)
                merged += 1
            else:
                result.append(Event(label, start, end))
                start, end = event.start, event.end
        result.append(Event(label, start, end))
    result.sort(key=lambda e: (e.start, e.end, e.label))
    return result, merged
