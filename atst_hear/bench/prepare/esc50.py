"""ESC-50: 2000 five-second clips of 50 environmental sound classes in 5 official folds.

Raw layout (the GitHub archive ``ESC-50-master``): ``audio/*.wav`` (44.1 kHz mono) and
``meta/esc50.csv`` with columns filename, fold (1-5), target (0-49), category, esc10, src_file,
take. As in HEAR's ``esc50-v2.0.0``: label = category, fold k becomes split ``fold{k-1:02d}``
(``presplit_kfold``), clips cropped/padded to 5 s. Several clips are cut from one Freesound
recording (``src_file``); it is recorded as the clip's group, so that a validation slice never
holds clips of a recording that also trains.
"""

from __future__ import annotations

from pathlib import Path

from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, fold_name, kfold_counts, kfold_metadata, read_table

VERSION = 2  # 2: file_groups.json (src_file)
N_FOLDS = 5
CATEGORIES = (
    *("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow"),
    *("rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops"),
    *("wind", "pouring_water", "toilet_flush", "thunderstorm"),
    *("crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing"),
    *("brushing_teeth", "snoring", "drinking_sipping"),
    *("door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening"),
    *("washing_machine", "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking"),
    *("helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells"),
    *("airplane", "fireworks", "hand_saw"),
)
KNOWN_COUNTS = {"clips": 2000, "classes": 50, "folds": N_FOLDS}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, "meta/esc50.csv", ["ESC-50-master"])
    rows = read_table(root / "meta" / "esc50.csv", ["filename", "fold", "category", "src_file"])
    clips = []
    for where, row in rows:
        fold = row["fold"].strip()
        if fold not in {str(k) for k in range(1, N_FOLDS + 1)}:
            bad.report(where, f"fold {fold!r} is not one of 1..{N_FOLDS}")
            continue
        if not row["src_file"].strip():
            bad.report(where, "src_file is empty (the clip's source recording is needed)")
            continue
        if row["category"] not in CATEGORIES:
            bad.report(where, f"unknown label {row['category']!r} (not an ESC-50 category)")
            continue
        clips.append(
            Clip(
                split=fold_name(int(fold) - 1),
                name=row["filename"],
                source=root / "audio" / row["filename"],
                labels=(row["category"],),
                group=f"src_file:{row['src_file'].strip()}",
            )
        )
    metadata = kfold_metadata("esc50", N_FOLDS, 5.0)
    return TaskPlan(
        dataset="esc50",
        dataset_version="ESC-50 (karolpiczak/ESC-50 master archive)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(CATEGORIES),
        clips=clips,
        found_counts=kfold_counts(len(rows), clips),
        known_counts=KNOWN_COUNTS,
    )
