"""GTZAN genre collection: 1000 thirty-second excerpts (22.05 kHz), 100 for each of 10 genres.

Raw layout: ``genres/<genre>/<genre>.000NN.au`` (the original archive) or
``genres_original/<genre>/<genre>.000NN.wav`` (the common WAV copy); RAW_DIR may be the folder
holding ``genres*`` or the genre folders themselves. Label = genre; clips cropped/padded to 30 s.

Variant ``folds``: 10 folds (``new_split_kfold``, as in HEAR's ``tfds_gtzan``), fold k holding
the excerpts numbered 10k to 10k+9 of every genre. Consecutive excerpts often come from the
same artist or album, so keeping them together limits (without removing) the artist overlap
between folds. HEAR's own fold assignment (a hash of TFDS's file order) is not reproduced.
Each block of ten excerpts of a genre is recorded as a group, so a validation slice drawn from
the training folds keeps whole blocks too.

Variant ``filtered``: the fault-filtered train / valid / test split (443 / 197 / 290 excerpts;
Kereliuk, Sturm and Larsen 2015, meant to keep each artist in one split and to leave out
repeated excerpts), read from the copy that ships with ``torchaudio.datasets.gtzan`` (taken
there from jordipons/sklearn-audio-transfer-learning).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, fold_name

VERSION = 2  # 2: file_groups.json (blocks of ten excerpts, folds variant)
GENRES = (
    *("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae"),
    "rock",
)
CLIP_STEM = re.compile(r"(?P<genre>[a-z]+)\.(?P<number>\d{5})")
AUDIO_SUFFIXES = (".au", ".wav")
CLIPS_PER_GENRE = 100
N_FOLDS = 10
KNOWN_COUNTS = {"clips": 1000, "genres": 10}
FILTERED_COUNTS = {"excerpts in the filtered split": 930}
EVALUATION = ["top1_acc", "mAP", "d_prime", "aucroc"]


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, "blues", ["genres", "genres_original", "Data/genres_original"])
    files = _genre_files(root, bad)
    found = {"clips": len(files), "genres": len({stem.split(".")[0] for stem in files})}
    notes = []
    if variant == "folds":
        clips = []
        for stem, path in sorted(files.items()):
            number = int(stem.split(".")[1])
            if number >= CLIPS_PER_GENRE:
                bad.report(
                    path, f"excerpt number {number} is beyond the {CLIPS_PER_GENRE} per genre"
                )
                continue
            block = number * N_FOLDS // CLIPS_PER_GENRE
            group = f"block:{stem.split('.')[0]}.{block}"
            clips.append(_clip(fold_name(block), stem, path, group=group))
        splits, mode = [fold_name(k) for k in range(N_FOLDS)], "new_split_kfold"
    else:
        # the published split lists, kept in torchaudio as plain data; imported only here
        from torchaudio.datasets import gtzan as published

        lists = {
            "train": published.filtered_train,
            "valid": published.filtered_valid,
            "test": published.filtered_test,
        }
        # a listed excerpt absent from RAW_DIR already shows in the clip count
        clips = [
            _clip(split, stem, files[stem])
            for split, stems in lists.items()
            for stem in stems
            if stem in files
        ]
        found["excerpts in the filtered split"] = len(clips)
        notes.append(
            f"{len(files) - len(clips)} excerpts outside the fault-filtered split left out"
        )
        splits, mode = ["train", "valid", "test"], "trainvaltest"
    metadata = task_metadata(
        f"gtzan_{variant}", "scene", "multiclass", mode, splits, 30.0, EVALUATION
    )
    return TaskPlan(
        dataset="gtzan",
        dataset_version="GTZAN genre collection (1000 excerpts)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=list(GENRES),  # already sorted
        clips=clips,
        found_counts=found,
        known_counts=KNOWN_COUNTS if variant == "folds" else {**KNOWN_COUNTS, **FILTERED_COUNTS},
        notes=notes,
    )


def _genre_files(root: Path, bad: BadInputs) -> dict[str, Path]:
    """``{"blues.00000": path}`` for every excerpt in the genre folders."""
    files: dict[str, Path] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name not in GENRES:
            bad.report(folder, f"unknown label: {folder.name!r} is not a GTZAN genre")
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            match = CLIP_STEM.fullmatch(path.stem)
            if match is None or match["genre"] != folder.name:
                bad.report(path, f"expected a file named {folder.name}.NNNNN{path.suffix}")
            elif path.stem in files:
                bad.report(path, f"a second copy of {path.stem} (also {files[path.stem].name})")
            else:
                files[path.stem] = path
    return files


def _clip(split: str, stem: str, path: Path, group: str | None = None) -> Clip:
    return Clip(
        split=split, name=f"{stem}.wav", source=path, labels=(stem.split(".")[0],), group=group
    )
