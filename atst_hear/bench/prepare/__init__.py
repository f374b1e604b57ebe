"""Dataset converters: ``atst-hear prepare NAME RAW_DIR OUT_DIR`` turns a public dataset, laid
out as its owners distribute it, into a HEAR task folder (see ``docs/datasets.md``).

This module only names the converters; it is cheap to import because the CLI builds its help
from it. A converter module (one per dataset) is imported when it runs, and all of them share
the machinery in :mod:`.core` (the run) and the modules it uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetEntry:
    """One convertible dataset: its converter module and the variants it offers."""

    module: str  # module name inside this package
    title: str
    variants: tuple[str, ...] = ()  # the first one is the default
    options: tuple[str, ...] = ()  # keyword settings its plan() takes (see core.prepare)

    def resolve_variant(self, name: str, variant: str | None) -> str | None:
        """The variant to build: the one asked for, or the default; errors name the options."""
        if not self.variants:
            if variant is not None:
                raise ValueError(f"{name} has no variants, got --variant {variant!r}")
            return None
        if variant is None:
            return self.variants[0]
        if variant not in self.variants:
            raise ValueError(
                f"{name} has no variant {variant!r}; choose one of {', '.join(self.variants)}"
            )
        return variant


DATASETS: dict[str, DatasetEntry] = {
    "esc50": DatasetEntry("esc50", "ESC-50 environmental sounds, 50 classes, 5 official folds"),
    "us8k": DatasetEntry("us8k", "UrbanSound8K urban sounds, 10 classes, 10 official folds"),
    "spcv2": DatasetEntry(
        "spcv2",
        "Speech Commands V2: 35 words (the paper's) or 12 = 10 words + silence + unknown (HEAR's)",
        ("35", "12"),
    ),
    "nsynth": DatasetEntry(
        "nsynth",
        "NSynth notes: instrument family (11, the paper's) or pitch (MIDI 21-108, HEAR's)",
        ("family", "pitch"),
    ),
    "fsd50k": DatasetEntry("fsd50k", "FSD50K sound events, 200 classes, multilabel"),
    "voxceleb1": DatasetEntry("voxceleb1", "VoxCeleb1 speaker identification, 1251 speakers"),
    "gtzan": DatasetEntry(
        "gtzan",
        "GTZAN music genres: 10 folds, or the fault-filtered train/valid/test split",
        ("folds", "filtered"),
    ),
    "desed": DatasetEntry(
        "desed", "DESED (DCASE 2021 task 4) sound event detection, 10 classes, onsets/offsets"
    ),
    "audioset": DatasetEntry(
        "audioset",
        "AudioSet: AS-20K, AS-2M (527 classes), AS-strong events; --for-pretraining: tar shards",
        ("balanced", "unbalanced", "strong")
        + ("unbalanced-pretraining", "balanced-pretraining", "eval-pretraining"),
        ("min_found",),
    ),
}
