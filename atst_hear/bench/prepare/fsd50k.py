"""FSD50K: 51,197 Freesound clips (0.3-30 s) with one or more of 200 AudioSet labels.

Raw layout (the Zenodo archives extracted side by side): ``FSD50K.dev_audio/<fname>.wav``,
``FSD50K.eval_audio/<fname>.wav`` (44.1 kHz mono) and ``FSD50K.ground_truth/`` with
``vocabulary.csv`` (no header: index, label, mid), ``dev.csv`` (fname, labels, mids, split =
train | val) and ``eval.csv`` (fname, labels, mids); ``labels`` is a comma-separated list.

Splits as in HEAR's ``fsd50k-v1.0``: dev ``train`` -> train, dev ``val`` -> valid, eval ->
test; multilabel, variable length (``sample_duration`` null). Unlike HEAR, the 12 dev clips
that last longer than 30 s are kept: they are part of the release. When the metadata archive
is extracted too (``FSD50K.metadata/{dev,eval}_clips_info_FSD50K.json``), each clip's Freesound
uploader is recorded as its group.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, read_table

VERSION = 2  # 2: file_groups.json (uploader) when the metadata is there
GROUND_TRUTH = "FSD50K.ground_truth"
CLIP_INFO = {"dev.csv": "dev_clips_info_FSD50K.json", "eval.csv": "eval_clips_info_FSD50K.json"}
DEV_SPLITS = {"train": "train", "val": "valid"}
KNOWN_COUNTS = {"train clips": 36796, "valid clips": 4170, "test clips": 10231, "classes": 200}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, f"{GROUND_TRUTH}/dev.csv", ["FSD50K"])
    vocabulary = _vocabulary(root / GROUND_TRUTH / "vocabulary.csv")
    uploaders = _uploaders(root / "FSD50K.metadata")
    clips = []
    found = {"train clips": 0, "valid clips": 0, "test clips": 0, "classes": len(vocabulary)}
    tables = [
        ("dev.csv", "FSD50K.dev_audio", ["fname", "labels", "split"]),
        ("eval.csv", "FSD50K.eval_audio", ["fname", "labels"]),
    ]
    for table, audio_dir, columns in tables:
        for where, row in read_table(root / GROUND_TRUTH / table, columns):
            split = DEV_SPLITS.get(row.get("split", "").strip()) if table == "dev.csv" else "test"
            if split is None:
                bad.report(where, f"split {row['split']!r} is not train or val")
                continue
            found[f"{split} clips"] += 1
            labels = tuple(label.strip() for label in row["labels"].split(",") if label.strip())
            unknown = [label for label in labels if label not in vocabulary]
            if unknown or not labels:
                bad.report(where, f"unknown label(s) {unknown} (not in vocabulary.csv)")
                continue
            fname = row["fname"].strip()
            clips.append(
                Clip(
                    split=split,
                    name=f"{fname}.wav",
                    source=root / audio_dir / f"{fname}.wav",
                    labels=labels,
                    group=None if uploaders is None else _uploader_group(uploaders, fname, where),
                )
            )
    metadata = task_metadata(
        "fsd50k",
        "scene",
        "multilabel",
        "trainvaltest",
        ["train", "valid", "test"],
        None,
        ["mAP", "d_prime", "aucroc", "top1_acc"],
    )
    return TaskPlan(
        dataset="fsd50k",
        dataset_version="FSD50K 1.0 (Zenodo record 4060432)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(vocabulary),
        clips=clips,
        found_counts=found,
        known_counts=KNOWN_COUNTS,
    )


def _uploaders(folder: Path) -> dict[str, str] | None:
    """``{fname: uploader}`` from the clip-info files, or None when they are not there."""
    paths = [folder / name for name in CLIP_INFO.values()]
    if not all(path.is_file() for path in paths):
        return None
    uploaders = {}
    for path in paths:
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a readable JSON file ({err})") from err
        if not isinstance(info, dict):
            raise ValueError(f"{path}: expected a JSON object {{fname: {{..., 'uploader'}}}}")
        for fname, entry in info.items():
            if isinstance(entry, dict) and entry.get("uploader"):
                uploaders[str(fname)] = str(entry["uploader"])
    return uploaders


def _uploader_group(uploaders: dict[str, str], fname: str, where: str) -> str:
    if fname not in uploaders:
        raise ValueError(f"{where}: clip {fname} has no uploader in FSD50K.metadata/")
    return f"uploader:{uploaders[fname]}"


def _vocabulary(path: Path) -> set[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metadata file is missing")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    bad_rows = [n for n, row in enumerate(rows, 1) if len(row) != 3]
    if bad_rows:
        raise ValueError(f"{path}:{bad_rows[0]}: expected 'index,label,mid' rows")
    return {row[1] for row in rows}
