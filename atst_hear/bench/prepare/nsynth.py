"""NSynth: four-second notes (16 kHz) in the official train / valid / test splits.

Raw layout (the three ``nsynth-*.jsonwav.tar.gz`` archives extracted side by side):
``nsynth-{train,valid,test}/examples.json`` (``{note_str: {"pitch", "instrument_family_str",
...}}``) and ``nsynth-*/audio/<note_str>.wav``.

Variant ``family`` (the ATST paper's NSynth): label = ``instrument_family_str``, 11 classes.
Variant ``pitch`` follows HEAR's ``nsynth_pitch``: label = MIDI pitch, notes outside 21-108 are
left out, scores ``pitch_acc`` and ``chroma_acc``. Its vocabulary is in numeric pitch order, as
hear-preprocess writes it, because ``chroma_acc`` compares label indices modulo 12.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...tasks.writing import task_metadata
from .plan import BadInputs, Clip, TaskPlan
from .reading import find_root

VERSION = 1
SPLIT_DIRS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}
FAMILIES = (
    *("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string"),
    *("synth_lead", "vocal"),
)
PITCH_MIN, PITCH_MAX = 21, 108  # the piano's range, as in HEAR
KNOWN_COUNTS = {
    "train notes": 289205,
    "valid notes": 12678,
    "test notes": 4096,
    "instrument families": 11,
}


def plan(raw_dir: Path, variant: str | None, bad: BadInputs) -> TaskPlan:
    root = find_root(raw_dir, f"{SPLIT_DIRS['test']}/examples.json", ["nsynth"])
    clips, found, families, out_of_range = [], {}, set(), 0
    for split, folder in SPLIT_DIRS.items():
        examples = _examples(root / folder / "examples.json")
        found[f"{split} notes"] = len(examples)
        for note, attributes in sorted(examples.items()):
            where = f"{root / folder / 'examples.json'}: {note}"
            family = (
                attributes.get("instrument_family_str") if isinstance(attributes, dict) else None
            )
            pitch = attributes.get("pitch") if isinstance(attributes, dict) else None
            if family not in FAMILIES:
                bad.report(where, f"unknown label: instrument family {family!r}")
                continue
            families.add(family)
            if variant == "pitch":
                if not isinstance(pitch, int) or isinstance(pitch, bool):
                    bad.report(where, f"pitch {pitch!r} is not a MIDI note number")
                    continue
                if not PITCH_MIN <= pitch <= PITCH_MAX:
                    out_of_range += 1
                    continue
            label = family if variant == "family" else str(pitch)
            clips.append(
                Clip(
                    split=split,
                    name=f"{note}.wav",
                    source=root / folder / "audio" / f"{note}.wav",
                    labels=(label,),
                )
            )
    found["instrument families"] = len(families)
    if variant == "family":
        metadata = task_metadata(
            "nsynth_family",
            "scene",
            "multiclass",
            "trainvaltest",
            list(SPLIT_DIRS),
            4.0,
            ["top1_acc"],
        )
        vocabulary, notes = sorted(FAMILIES), []
    else:
        metadata = task_metadata(
            "nsynth_pitch",
            "scene",
            "multiclass",
            "trainvaltest",
            list(SPLIT_DIRS),
            4.0,
            ["pitch_acc", "chroma_acc"],
            pitch_range_min=PITCH_MIN,
            pitch_range_max=PITCH_MAX,
        )
        vocabulary = [str(pitch) for pitch in range(PITCH_MIN, PITCH_MAX + 1)]
        notes = [f"{out_of_range} notes outside MIDI {PITCH_MIN}-{PITCH_MAX} left out (as in HEAR)"]
    return TaskPlan(
        dataset="nsynth",
        dataset_version="NSynth (json/wav release)",
        converter_version=VERSION,
        metadata=metadata,
        vocabulary=vocabulary,
        clips=clips,
        found_counts=found,
        known_counts=KNOWN_COUNTS,
        notes=notes,
    )


def _examples(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metadata file is missing")
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})") from err
    if not isinstance(examples, dict):
        raise ValueError(f"{path}: expected a JSON object {{note_str: attributes}}")
    return examples
