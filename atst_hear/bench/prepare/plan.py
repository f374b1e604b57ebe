"""What every task-folder source produces: clips, their audio source and the plan of a task.

A dataset converter reads a raw dataset's metadata and returns a :class:`TaskPlan` whose clips
come from audio files; the demo suite (:mod:`atst_hear.bench.demo`) returns one whose clips are
synthesised (:class:`Synthesis`). Both are checked here and then converted and written by the
same machinery (:mod:`.convert`, :mod:`.journal`, :mod:`.writer`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...tasks.folder import Event


class BadInputError(ValueError):
    """A missing file, corrupt audio or unknown label, with the file named in the message."""


class CountMismatchError(ValueError):
    """The raw dataset holds a different number of clips or classes than the known release."""


@dataclass(frozen=True)
class Synthesis:
    """Audio rendered by a generator instead of read from a file: ``render`` draws every random
    number from a generator seeded with ``seed``, so the clip depends on nothing else."""

    render: Callable[[np.random.Generator], np.ndarray]
    seed: np.random.SeedSequence

    def fingerprint(self) -> list[Any]:
        """What identifies the rendered audio in the journal (the renderer is the same code)."""
        entropy = self.seed.entropy
        return [
            *(entropy if isinstance(entropy, list | tuple) else [entropy]),
            *self.seed.spawn_key,
        ]

    def __str__(self) -> str:
        return f"synthetic clip {self.fingerprint()}"


@dataclass(frozen=True)
class Clip:
    """One output clip: where it comes from, where it goes and what it is labelled."""

    split: str
    name: str  # output file name, ending in .wav, unique in the task
    source: Path | Synthesis
    labels: tuple[str, ...] | tuple[Event, ...] = ()
    offset_s: float = 0.0  # where the clip starts in the source file
    length_s: float | None = None  # how much of the source it takes (None: up to the end)
    # the recording, speaker or uploader the clip comes from (file_groups.json); clips of one
    # group never straddle a validation slice. Converters set it for all clips or for none.
    group: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.split, self.name


@dataclass
class TaskPlan:
    """What a source found or designed and how it becomes a task folder."""

    dataset: str
    dataset_version: str
    converter_version: int
    metadata: dict[str, Any]  # built with tasks.writing.task_metadata
    vocabulary: list[str]  # labelvocabulary.csv, in order
    clips: list[Clip]
    found_counts: dict[str, int] = field(default_factory=dict)  # what the raw dataset holds ...
    known_counts: dict[str, int] = field(default_factory=dict)  # ... and the release holds
    # file that receives the labels of clips in splits outside metadata["splits"] (DESED's weak
    # clips); those clips are converted like the others, into 16000/<split>/
    side_label_file: str | None = None
    notes: list[str] = field(default_factory=list)
    # converter-specific manifest entries (AudioSet: the clips its download lacks, coverage)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    # a product other than a task folder (AudioSet's pre-training shards): called with the
    # partial folder, the converted clips and their journal records once all are converted;
    # it writes its files there and returns entries for the manifest
    write_output: Callable[..., dict[str, Any]] | None = None


class BadInputs:
    """Handles bad source entries: an error at the first one, or a list of skipped ones."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.skipped: list[dict[str, str]] = []

    def report(self, where: str | os.PathLike, reason: str) -> None:
        if not self.skip:
            raise BadInputError(
                f"{where}: {reason} (--skip-bad skips such entries and lists them in the manifest)"
            )
        self.skipped.append({"source": str(where), "reason": reason})


def check_plan(plan: TaskPlan) -> None:
    """Catch mistakes of the source before any audio is touched."""
    task_splits = set(plan.metadata["splits"])
    vocabulary = set(plan.vocabulary)
    seen: dict[str, Clip] = {}
    for clip in plan.clips:
        if clip.split not in task_splits and plan.side_label_file is None:
            raise ValueError(
                f"{clip.source}: split {clip.split!r} is not one of {sorted(task_splits)}"
            )
        if not clip.name.endswith(".wav") or "/" in clip.name:
            raise ValueError(f"{clip.source}: output name {clip.name!r} must be a plain *.wav name")
        if clip.name in seen:
            raise ValueError(
                f"{clip.source} and {seen[clip.name].source} would both become {clip.name}"
            )
        seen[clip.name] = clip
        labels = {item.label if isinstance(item, Event) else item for item in clip.labels}
        if not labels <= vocabulary:
            raise ValueError(
                f"{clip.source}: labels {sorted(labels - vocabulary)} not in vocabulary"
            )


def check_counts(
    found: Mapping[str, int], known: Mapping[str, int], allow_partial: bool
) -> list[str]:
    """Compare counts with the known release: an error, or warnings when partial is allowed."""
    differences = [
        f"{key}: found {found.get(key, 0)}, the release has {expected}"
        for key, expected in known.items()
        if found.get(key, 0) != expected
    ]
    if differences and not allow_partial:
        raise CountMismatchError(
            "the raw dataset differs from the known release ("
            + "; ".join(differences)
            + "); --allow-partial converts it anyway and records the difference in the manifest"
        )
    return [f"partial dataset: {difference}" for difference in differences]
