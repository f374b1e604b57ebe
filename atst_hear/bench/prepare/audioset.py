"""AudioSet: 10 s YouTube segments, 527 classes; AS-20K, AS-2M, AS-strong and pre-training data.

Raw layout (what users have: Google's lists plus whatever downloader fetched the audio)::

    balanced_train_segments.csv  unbalanced_train_segments.csv  eval_segments.csv
    class_labels_indices.csv                              (index, mid, display_name)
    audioset_train_strong.tsv  audioset_eval_strong.tsv  mid_to_display_name.tsv  (AS-strong)
    **/<audio files>

The lists may lie in RAW_DIR or in one of its folders ``csv``, ``meta``, ``metadata``; audio
files anywhere below RAW_DIR, in any format soundfile reads, named by YouTube id: ``<id>``,
``Y<id>`` (PANNs, audiossl), ``<id>_<start>_<end>`` or ``<id>_<start ms>`` (AS-strong), then
the suffix. The files must be the listed 10 s segments (every common downloader cuts them).

Segment lists (``# YTID, start_seconds, end_seconds, positive_labels``, three ``#`` header
lines, the second declaring ``num_segs``) become multilabel scene tasks with display names as
labels, 10 s clips (``Y<id>.wav``):

* ``balanced``  = AS-20K: train = balanced train, test = eval;
* ``unbalanced`` = AS-2M: train = unbalanced + balanced train (audiossl concatenates them in
  ``lightning/datamodules.py``), test = eval.

The official recipe has no validation set of its own: ``scripts/dataset_preprocess/audioset.py``
writes ``valid.csv`` from the eval list, and ``atstframe/downstream/train_finetune.py`` keeps
the checkpoint with the best validation mAP and tests it. The ``valid`` split here is therefore
a second copy of the eval clips (``Y<id>.valid.wav``), so that a protocol run on these folders
reproduces the published numbers; model selection then sees the test clips (a note in the
manifest and ``task_metadata.json`` ``valid_source`` say so, and ``docs/datasets.md`` explains).

``strong`` = AS-strong: ``<segment_id>\\t<start s>\\t<end s>\\t<mid>`` rows (``segment_id`` =
``<id>_<start ms>``) become an event task in milliseconds over 10 s clips (``<segment_id>.wav``),
built as ``scripts/dataset_preprocess/audioset_strong/*.py`` does: only the classes that occur
in both the train and the eval clips found on disk are kept (407 with the authors' download),
clips holding any other class are dropped, and overlapping events of one class are merged into
one (sed_eval would otherwise count the duplicates as missed events); train = train, valid =
test = eval, as the official config (``strong_val_tsv`` = ``test_tsv``).

Missing clips are the norm (videos disappear): they are left out, listed in the manifest
(``missing``) with the found fraction per split and per class (``coverage``), and only a split
below ``min_found`` stops the run. A corrupt file or an unknown label id is bad input as for
every dataset (an error, or ``--skip-bad``).

The ``*-pretraining`` variants convert the clips of one list (``unbalanced``: the ~2M clips
the official pre-training reads, ``atstframe/data.py``; ``balanced``; ``eval``) at their own
length and pack them into tar shards of 16 kHz WAV that ``atst-hear pretrain --data
OUT_DIR/shards`` streams; the manifest gives the clip count and hours.
"""

from __future__ import annotations

import csv
import re
import shutil
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...fileio import atomic_output, sha256_file
from ...tasks.writing import task_metadata
from .audioset_files import (
    CLIP_S,
    VERSION,
    YTID,
    AudioIndex,
    Coverage,
    count_rows,
    metadata_file,
)
from .audioset_strong import strong_plan
from .plan import BadInputs, Clip, TaskPlan

SEGMENT_LISTS = {
    "balanced": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
CLASS_LIST = "class_labels_indices.csv"
N_CLASSES = 527
TASK_SPLITS = {
    "balanced": {"train": ("balanced",), "test": ("eval",)},
    "unbalanced": {"train": ("unbalanced", "balanced"), "test": ("eval",)},
}
PRETRAINING_LISTS = {
    # atstframe/data.py: "we only use unbalanced set for self supervised pretraining"
    "unbalanced-pretraining": ("unbalanced",),
    "balanced-pretraining": ("balanced",),
    "eval-pretraining": ("eval",),
}
PRETRAIN_SPLIT = "pretrain"
SHARD_CLIPS = 500  # ~160 MB of 16 kHz WAV per shard; a stream worker holds one in memory
SHARD_FOLDER = "shards"
VALID_SOURCE = (
    "eval_segments.csv: the test clips again, as the official audiossl recipe validates and "
    "selects checkpoints on the eval set"
)
SCENE_SCORES = ["mAP", "d_prime", "aucroc"]


def plan(
    raw_dir: Path, variant: str | None, bad: BadInputs, min_found: float | None = None
) -> TaskPlan:
    if min_found is not None and not 0.0 <= min_found <= 1.0:
        raise ValueError(f"min_found must be a fraction between 0 and 1, got {min_found!r}")
    if variant == "strong":
        return strong_plan(raw_dir, bad, min_found)
    if variant in PRETRAINING_LISTS:
        return _pretraining_plan(raw_dir, variant, bad, min_found)
    if variant in TASK_SPLITS:
        return _scene_plan(raw_dir, variant, bad, min_found)
    raise ValueError(f"audioset has no variant {variant!r}")


# --- AS-20K / AS-2M -------------------------------------------------------------------------
def _scene_plan(raw_dir: Path, variant: str, bad: BadInputs, min_found: float | None) -> TaskPlan:
    names = _class_names(metadata_file(raw_dir, CLASS_LIST))
    audio = AudioIndex(raw_dir)
    found_counts: dict[str, int] = {"classes": len(names)}
    known_counts: dict[str, int] = {"classes": N_CLASSES}
    coverage = Coverage()
    clips: list[Clip] = []
    for split, lists in TASK_SPLITS[variant].items():
        for list_name in lists:
            segments, declared = _read_segments(metadata_file(raw_dir, SEGMENT_LISTS[list_name]))
            count_rows(found_counts, known_counts, f"{list_name} segments", len(segments), declared)
            for ytid, where, mids in segments:
                labels = _labels(mids, names, where, bad)
                if labels is None:
                    continue
                source = audio.find(ytid, where, bad)
                coverage.add(split, ytid, labels, source is not None)
                if source is None:
                    continue
                clips.append(Clip(split, f"Y{ytid}.wav", source, labels))
                if split == "test":
                    clips.append(Clip("valid", f"Y{ytid}.valid.wav", source, labels))
    coverage.check(min_found)
    metadata = task_metadata(
        "audioset_20k" if variant == "balanced" else "audioset_2m",
        "scene",
        "multilabel",
        "trainvaltest",
        ["train", "valid", "test"],
        CLIP_S,
        SCENE_SCORES,
        valid_source=VALID_SOURCE,
    )
    return TaskPlan(
        dataset="audioset",
        dataset_version="AudioSet v1 segment lists (2017) with the audio found on disk",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(names.values()),
        clips=clips,
        found_counts=found_counts,
        known_counts=known_counts,
        notes=[f"valid = {VALID_SOURCE}", *coverage.notes()],
        manifest_extra=coverage.manifest(),
    )


def _class_names(path: Path) -> dict[str, str]:
    """``{mid: display name}`` from ``class_labels_indices.csv``, in index order."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [
            c for c in ("index", "mid", "display_name") if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise ValueError(
                f"{path}: missing columns {missing}; the header is {reader.fieldnames}"
            )
        rows = [(f"{path}:{reader.line_num}", row) for row in reader]
    names: dict[str, str] = {}
    for where, row in rows:
        mid, name = row["mid"].strip(), row["display_name"].strip()
        if not mid or not name:
            raise ValueError(f"{where}: empty mid or display_name")
        if mid in names or name in names.values():
            raise ValueError(f"{where}: mid {mid!r} / display name {name!r} listed twice")
        names[mid] = name
    return names


def _read_segments(path: Path) -> tuple[list[tuple[str, str, list[str]]], int | None]:
    """``(ytid, file:line, mids)`` of a segment list, and the ``num_segs`` its header declares."""
    segments, declared, seen = [], None, {}
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle, skipinitialspace=True), 1):
            where = f"{path}:{line_no}"
            if not row or row[0].startswith("#"):
                found = re.search(r"num_segs=(\d+)", ",".join(row))
                declared = int(found.group(1)) if found else declared
                continue
            if len(row) != 4 or not YTID.fullmatch(row[0].strip()):
                raise ValueError(
                    f"{where}: expected 'YTID, start_seconds, end_seconds, \"labels\"', got {row}"
                )
            ytid = row[0].strip()
            if ytid in seen:
                raise ValueError(f"{where}: YouTube id {ytid} already listed at {seen[ytid]}")
            seen[ytid] = where
            segments.append((ytid, where, [m.strip() for m in row[3].split(",") if m.strip()]))
    return segments, declared


def _labels(
    mids: Sequence[str], names: Mapping[str, str], where: str, bad: BadInputs
) -> tuple[str, ...] | None:
    unknown = [mid for mid in mids if mid not in names]
    if unknown or not mids:
        reason = f"unknown label id(s) {unknown} (not in {CLASS_LIST})" if mids else "no labels"
        bad.report(where, reason)
        return None
    return tuple(sorted({names[mid] for mid in mids}))


# --- pre-training shards --------------------------------------------------------------------
def _pretraining_plan(
    raw_dir: Path, variant: str, bad: BadInputs, min_found: float | None
) -> TaskPlan:
    audio = AudioIndex(raw_dir)
    found_counts: dict[str, int] = {}
    known_counts: dict[str, int] = {}
    coverage = Coverage()
    clips = []
    for list_name in PRETRAINING_LISTS[variant]:
        segments, declared = _read_segments(metadata_file(raw_dir, SEGMENT_LISTS[list_name]))
        count_rows(found_counts, known_counts, f"{list_name} segments", len(segments), declared)
        for ytid, where, _ in segments:
            source = audio.find(ytid, where, bad)
            coverage.add(list_name, ytid, (), source is not None)
            if source is not None:
                clips.append(Clip(PRETRAIN_SPLIT, f"Y{ytid}.wav", source))
    coverage.check(min_found)
    return TaskPlan(
        dataset="audioset",
        dataset_version="AudioSet v1 segment lists (2017) with the audio found on disk",
        converter_version=VERSION,
        # not a task folder: only what the conversion reads (split names, clip length)
        metadata={
            "task_name": f"audioset_{variant}",
            "splits": [PRETRAIN_SPLIT],
            "sample_duration": None,
        },
        vocabulary=[],
        clips=clips,
        found_counts=found_counts,
        known_counts=known_counts,
        notes=coverage.notes(),
        manifest_extra=coverage.manifest(),
        write_output=write_shards,
    )


def write_shards(
    partial: Path, clips: Sequence[Clip], records: Mapping[tuple[str, str], Mapping[str, Any]]
) -> dict[str, Any]:
    """Pack the converted clips (sorted by name) into ``shards/audioset-NNNNNN.tar``, then drop
    the loose files; the members are the 16 kHz WAV files, with fixed metadata so that a shard's
    sha256 depends only on its audio."""
    audio_root = partial / "16000"
    folder = partial / SHARD_FOLDER
    if folder.exists():
        shutil.rmtree(folder)  # left by an interrupted packing: the clips are all still there
    folder.mkdir()
    ordered = sorted(clips, key=lambda clip: clip.name)
    shards, total_s = [], 0.0
    for number, first in enumerate(range(0, len(ordered), SHARD_CLIPS)):
        members = ordered[first : first + SHARD_CLIPS]
        path = folder / f"audioset-{number:06d}.tar"
        with atomic_output(path) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for clip in members:
                tar.add(audio_root / clip.split / clip.name, arcname=clip.name, filter=_plain)
        seconds = sum(float(records[clip.key]["duration_s"]) for clip in members)
        total_s += seconds
        shards.append(
            {
                "file": f"{SHARD_FOLDER}/{path.name}",
                "clips": len(members),
                "hours": round(seconds / 3600, 4),
                "sha256": sha256_file(path),
            }
        )
    shutil.rmtree(audio_root)
    return {
        "pretraining": {
            "data": SHARD_FOLDER,
            "clips": len(ordered),
            "hours": round(total_s / 3600, 3),
            "shards": len(shards),
            "clips_per_shard": SHARD_CLIPS,
            "usage": f"atst-hear pretrain --data <OUT_DIR>/{SHARD_FOLDER}",
        },
        "shards": shards,
    }


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info
