"""What the AudioSet converter modules share: the metadata files, the audio files on disk (by
YouTube id) and the coverage bookkeeping of clips listed but absent."""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import soundfile as sf

from .plan import BadInputs

VERSION = 1
CLIP_S = 10.0
METADATA_FOLDERS = ("", "csv", "meta", "metadata")
YTID = re.compile(r"[A-Za-z0-9_-]{11}")
# after the id: nothing, "_<start>" (AS-strong ms) or "_<start>_<end>" / "_<start>-<end>"
_SEGMENT_SUFFIX = re.compile(r"(_\d+(\.\d+)?([_-]\d+(\.\d+)?)?)?")


def metadata_file(raw_dir: Path, name: str) -> Path:
    for folder in METADATA_FOLDERS:
        path = raw_dir / folder / name
        if path.is_file():
            return path
    looked = ", ".join(str(raw_dir / folder / name) for folder in METADATA_FOLDERS)
    raise FileNotFoundError(
        f"{raw_dir}: cannot find {name} (looked for {looked}); download it from "
        "research.google.com/audioset (see docs/datasets.md)"
    )


def count_rows(
    found: dict[str, int], known: dict[str, int], key: str, rows: int, declared: int | None
) -> None:
    found[key] = rows
    if declared is not None:
        known[key] = declared


class AudioIndex:
    """Every audio file below RAW_DIR, by the YouTube id its name carries."""

    def __init__(self, raw_dir: Path) -> None:
        formats = set(sf.available_formats()) - {"RAW"}  # headerless: not an audio file
        suffixes = {f".{ext.lower()}" for ext in formats} | {".oga", ".opus"}
        # strings, not Paths: the unbalanced set alone is two million files
        self.paths: dict[str, list[str]] = defaultdict(list)
        for folder, _, files in os.walk(raw_dir):
            for name in files:
                stem, suffix = os.path.splitext(name)
                if suffix.lower() in suffixes:
                    for ytid in youtube_ids(stem):
                        self.paths[ytid].append(os.path.join(folder, name))

    def find(self, ytid: str, where: str, bad: BadInputs) -> Path | None:
        """The one file of ``ytid``; None when absent (or ambiguous and skipped)."""
        paths = sorted(self.paths.get(ytid, []))
        if len(paths) > 1:
            bad.report(where, f"several audio files carry YouTube id {ytid} ({', '.join(paths)})")
            return None
        return Path(paths[0]) if paths else None


def youtube_ids(stem: str) -> list[str]:
    """The YouTube ids a file stem can name: ``<id>``, ``Y<id>``, each optionally followed by
    ``_<start>[_<end>]``; ids may start with Y themselves, so both readings are offered."""
    ids = []
    for start in (0, 1) if stem.startswith("Y") else (0,):
        ytid, rest = stem[start : start + 11], stem[start + 11 :]
        if YTID.fullmatch(ytid) and _SEGMENT_SUFFIX.fullmatch(rest):
            ids.append(ytid)
    return ids


class Coverage:
    """Listed and found clips per split and class; what is missing, for the manifest."""

    def __init__(self) -> None:
        self.listed: Counter[str] = Counter()
        self.found: Counter[str] = Counter()
        self.class_listed: dict[str, Counter[str]] = defaultdict(Counter)
        self.class_found: dict[str, Counter[str]] = defaultdict(Counter)
        self.missing: dict[str, list[str]] = defaultdict(list)

    def add(self, split: str, clip_id: str, labels: Iterable[str], found: bool) -> None:
        self.listed[split] += 1
        self.found[split] += found
        for label in labels:
            self.class_listed[split][label] += 1
            self.class_found[split][label] += found
        if not found:
            self.missing[split].append(clip_id)

    def fraction(self, split: str) -> float:
        return self.found[split] / self.listed[split] if self.listed[split] else 0.0

    def check(self, min_found: float | None) -> None:
        short = [s for s in self.listed if min_found is not None and self.fraction(s) < min_found]
        if short:
            found = "; ".join(
                f"{s}: {self.found[s]} of {self.listed[s]} clips ({self.fraction(s):.1%})"
                for s in short
            )
            raise ValueError(
                f"too few clips on disk ({found}), below --min-found {min_found:g}; the absent "
                "YouTube ids are the ones no audio file below RAW_DIR is named after"
            )

    def notes(self) -> list[str]:
        notes = []
        for split in self.listed:
            note = (
                f"{split}: {self.found[split]} of {self.listed[split]} listed clips found "
                f"({self.fraction(split):.1%}); the others are listed under 'missing'"
            )
            worst = sorted(
                self.class_listed[split],
                key=lambda c: (self.class_found[split][c] / self.class_listed[split][c], c),
            )[:3]
            if worst:
                note += "; least covered classes: " + ", ".join(
                    f"{c} {self.class_found[split][c]}/{self.class_listed[split][c]}" for c in worst
                )
            notes.append(note)
        return notes

    def manifest(self) -> dict[str, Any]:
        return {
            "coverage": {
                split: {
                    "listed": self.listed[split],
                    "found": self.found[split],
                    "fraction": round(self.fraction(split), 6),
                    "classes": {
                        label: [self.class_found[split][label], n]
                        for label, n in sorted(self.class_listed[split].items())
                    },
                }
                for split in self.listed
            },
            "missing": {split: sorted(ids) for split, ids in self.missing.items()},
        }
