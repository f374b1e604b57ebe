"""VoxCeleb1 speaker identification: 153,516 utterances of 1251 speakers (16 kHz).

Raw layout: ``wav/idNNNNN/<video>/<NNNNN>.wav`` (the dev and test archives extracted into the
same ``wav/`` folder) and ``iden_split.txt``, whose lines are ``1|2|3 idNNNNN/<video>/<n>.wav``
(1 = train, 2 = valid, 3 = test). Label = speaker id; variable length (``sample_duration``
null). VoxCeleb1 is not a HEAR task; the folder follows hear-contract.md §4. Utterances cut
from one YouTube video share a group (``speaker/video``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root, read_lines

VERSION = 2  # 2: file_groups.json (YouTube video)
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}
SPEAKER = re.compile(r"id\d{5}")
KNOWN_COUNTS = {"train clips": 138361, "valid clips": 6904, "test clips": 8251, "speakers": 1251}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, "iden_split.txt", ["voxceleb1", "VoxCeleb1"])
    clips, speakers = [], set()
    found = {"train clips": 0, "valid clips": 0, "test clips": 0}
    for where, line in read_lines(root / "iden_split.txt"):
        code, _, relpath = line.partition(" ")
        split = SPLIT_CODES.get(code)
        parts = relpath.strip().split("/")
        if split is None or len(parts) != 3 or not relpath.endswith(".wav"):
            bad.report(where, f"expected '1|2|3 idNNNNN/<video>/<n>.wav', got {line!r}")
            continue
        found[f"{split} clips"] += 1
        speaker = parts[0]
        if not SPEAKER.fullmatch(speaker):
            bad.report(where, f"unknown label: {speaker!r} is not a VoxCeleb1 speaker id")
            continue
        speakers.add(speaker)
        clips.append(
            Clip(
                split=split,
                name="_".join(parts),
                source=root / "wav" / Path(*parts),
                labels=(speaker,),
                group=f"video:{parts[0]}/{parts[1]}",
            )
        )
    found["speakers"] = len(speakers)
    metadata = task_metadata(
        "voxceleb1",
        "scene",
        "multiclass",
        "trainvaltest",
        ["train", "valid", "test"],
        None,
        ["top1_acc"],
    )
    return TaskPlan(
        dataset="voxceleb1",
        dataset_version="VoxCeleb1 (identification split iden_split.txt)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=sorted(speakers),
        clips=clips,
        found_counts=found,
        known_counts=KNOWN_COUNTS,
    )
