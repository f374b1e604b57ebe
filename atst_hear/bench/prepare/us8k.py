"""UrbanSound8K: 8732 excerpts (at most 4 s) of 10 urban sound classes in 10 official folds.

Raw layout: ``UrbanSound8K/audio/fold1..fold10/*.wav`` (sample rate, bit depth and channel
count vary from file to file, as uploaded to Freesound) and ``metadata/UrbanSound8K.csv`` with
columns slice_file_name, fsID, start, end, salience, fold, classID, class. Label = class; fold k
becomes split ``fold{k-1:02d}`` (``presplit_kfold``, the folds are the dataset's own); clips
are padded/cropped to 4 s. The excerpts of one Freesound recording (``fsID``) share a group, so
that a validation slice never holds excerpts of a recording that also trains.
"""

from __future__ import annotations

from pathlib import Path

from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, fold_name, kfold_counts, kfold_metadata, read_table

VERSION = 2  # 2: file_groups.json (fsID)
N_FOLDS = 10
CLASSES = (  # index = classID
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
KNOWN_COUNTS = {"clips": 8732, "classes": 10, "folds": N_FOLDS}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, "metadata/UrbanSound8K.csv", ["UrbanSound8K"])
    rows = read_table(
        root / "metadata" / "UrbanSound8K.csv",
        ["slice_file_name", "fsID", "fold", "classID", "class"],
    )
    clips = []
    for where, row in rows:
        fold, label = row["fold"].strip(), row["class"]
        if fold not in {str(k) for k in range(1, N_FOLDS + 1)}:
            bad.report(where, f"fold {fold!r} is not one of 1..{N_FOLDS}")
            continue
        if not row["fsID"].strip():
            bad.report(where, "fsID is empty (the excerpt's source recording is needed)")
            continue
        if label not in CLASSES:
            bad.report(where, f"unknown label {label!r} (not an UrbanSound8K class)")
            continue
        if row["classID"].strip() != str(CLASSES.index(label)):
            bad.report(where, f"classID {row['classID']!r} does not match class {label!r}")
            continue
        name = row["slice_file_name"]
        clips.append(
            Clip(
                split=fold_name(int(fold) - 1),
                name=name,
                source=root / "audio" / f"fold{fold}" / name,
                labels=(label,),
                group=f"fsID:{row['fsID'].strip()}",
            )
        )
    metadata = kfold_metadata("us8k", N_FOLDS, 4.0)
    return TaskPlan(
        dataset="us8k",
        dataset_version="UrbanSound8K 1.0",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=list(CLASSES),  # already sorted
        clips=clips,
        found_counts=kfold_counts(len(rows), clips),
        known_counts=KNOWN_COUNTS,
    )
