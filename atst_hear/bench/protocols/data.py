"""Task splits as arrays: which splits train, validate and test, and their embeddings and targets.

Two ways to find a validation set, both keeping the test split out of model selection:

* :func:`hear_rotation` is hear-eval-kit's: trainvaltest uses its splits; k-fold tests fold i,
  validates on fold i+1 and trains on the other k-2 folds.
* :func:`holdout_rotation` trains on everything but the test split (all other folds for k-fold
  tasks, as the ATST paper does) and, when no validation split exists, validates on a fixed,
  seeded slice of the training data. When the task records groups (``file_groups.json``: the
  source recording, speaker or uploader of each clip) the slice takes whole groups and the
  result records ``valid_source = "train-slice-by-group"``; otherwise it takes single files and
  records ``"train-slice"`` (clips of one recording may then sit on both sides).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...tasks.decoding import FrameScores
from ...tasks.folder import Event, EventDict, TaskFolder
from ..cache import EmbeddingCache, ModelSpec, SplitEmbeddings

VALID_SLICE_BY_GROUP = "train-slice-by-group"
VALID_SLICE_BY_FILE = "train-slice"
# hear-eval-kit labels a frame with every event whose [start, end + 0.1 us) contains its timestamp
_EVENT_END_TOLERANCE_MS = 0.0001


@dataclass(frozen=True)
class FileSelection:
    """Files of one or more task splits (all files of each split unless ``files`` narrows it)."""

    splits: tuple[str, ...]
    files: frozenset[str] | None = None

    def describe(self) -> str:
        names = "+".join(self.splits)
        return names if self.files is None else f"{names}[{len(self.files)} files]"


@dataclass(frozen=True)
class Fold:
    """One train/valid/test assignment; ``name`` is the test split as hear-eval-kit writes it."""

    name: str
    train: FileSelection
    valid: FileSelection
    test: FileSelection
    # "valid" (the task's split), "next-fold" (hear rotation), "train-slice-by-group" or
    # "train-slice" (a seeded slice of the training data, by group or, lacking groups, by file)
    valid_source: str


def hear_rotation(task: TaskFolder) -> list[Fold]:
    if not task.is_kfold:
        return [
            Fold(
                "test",
                FileSelection(("train",)),
                FileSelection(("valid",)),
                FileSelection(("test",)),
                "valid",
            )
        ]
    folds = sorted(task.splits)
    if len(folds) < 3:
        raise ValueError(
            f"{task.path}: hear-eval-kit's fold rotation needs at least 3 folds "
            f"(test, valid and >= 1 to train), the task has {len(folds)}"
        )
    rotation = []
    for i, test in enumerate(folds):
        valid = folds[(i + 1) % len(folds)]
        train = tuple(f for f in folds if f not in (test, valid))
        rotation.append(
            Fold(
                test,
                FileSelection(train),
                FileSelection((valid,)),
                FileSelection((test,)),
                "next-fold",
            )
        )
    return rotation


def holdout_rotation(task: TaskFolder, valid_fraction: float, valid_seed: int) -> list[Fold]:
    if not 0 < valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
    if task.is_kfold:
        folds = sorted(task.splits)
        pairs = [(f, tuple(o for o in folds if o != f)) for f in folds]
    else:
        if task.split_labels("valid"):
            return hear_rotation(task)
        pairs = [("test", ("train",))]
    rotation = []
    for test, train_splits in pairs:
        if task.has_groups:
            valid, train = _group_slice(task, train_splits, valid_fraction, valid_seed)
            source = VALID_SLICE_BY_GROUP
        else:
            valid, train = _file_slice(task, train_splits, valid_fraction, valid_seed)
            source = VALID_SLICE_BY_FILE
        rotation.append(
            Fold(
                test,
                FileSelection(train_splits, train),
                FileSelection(train_splits, valid),
                FileSelection((test,)),
                source,
            )
        )
    return rotation


def _file_slice(
    task: TaskFolder, splits: Sequence[str], fraction: float, seed: int
) -> tuple[frozenset[str], frozenset[str]]:
    """``(valid, train)``: a seeded ``fraction`` of the files (the task records no groups)."""
    files = sorted(f for s in splits for f in task.split_labels(s))
    n_valid = max(1, round(fraction * len(files)))
    if n_valid >= len(files):
        raise ValueError(
            f"{task.path}: {len(files)} training files are too few to hold out a validation slice"
        )
    random.Random(seed).shuffle(files)
    return frozenset(files[:n_valid]), frozenset(files[n_valid:])


def _group_slice(
    task: TaskFolder, splits: Sequence[str], fraction: float, seed: int
) -> tuple[frozenset[str], frozenset[str]]:
    """``(valid, train)``: whole groups, drawn in seeded order until they hold ``fraction`` of
    the files, so that no recording (speaker, uploader) is in both."""
    members: dict[str, list[str]] = {}
    for split in splits:
        for name, group in task.groups(split).items():
            members.setdefault(group, []).append(name)
    order = sorted(members)
    if len(order) < 2:
        raise ValueError(
            f"{task.path}: the training splits {list(splits)} hold {len(order)} group(s) "
            "(file_groups.json); a validation slice needs at least 2"
        )
    random.Random(seed).shuffle(order)
    n_files = sum(len(files) for files in members.values())
    target = max(1, round(fraction * n_files))
    valid: list[str] = []
    taken = 0
    # the last group always stays in train
    while taken < len(order) - 1 and len(valid) < target:
        valid += members[order[taken]]
        taken += 1
    train = [name for group in order[taken:] for name in members[group]]
    return frozenset(valid), frozenset(train)


def select_folds(folds: list[Fold], names: Sequence[str] | None) -> list[Fold]:
    if names is None:
        return folds
    known = {f.name: f for f in folds}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown folds {unknown}; the task has {sorted(known)}")
    return [known[n] for n in names]


# --- arrays -------------------------------------------------------------------------------------
@dataclass
class SceneData:
    """Scene embeddings ``x [N, D]`` and multi-hot targets ``y [N, C]``."""

    files: list[str]
    x: np.ndarray
    y: np.ndarray


@dataclass
class EventData:
    """Frame embeddings ``x [F, D]``, multi-hot frame targets ``y [F, C]``, and per-file layout."""

    files: list[str]
    x: np.ndarray
    y: np.ndarray
    timestamps: np.ndarray  # [F] ms, frame centres
    lengths: np.ndarray  # frames per file, files in ``files`` order
    reference: dict[str, list[Event]]
    durations_ms: dict[str, float]
    hop_ms: float = field(default=40.0)

    def frame_scores(self, scores: np.ndarray, labels: list[str]) -> FrameScores:
        """Split ``[F, C]`` frame scores into per-file arrays."""
        per_file, times, start = {}, {}, 0
        for name, length in zip(self.files, self.lengths.tolist()):
            per_file[name] = scores[start : start + length]
            times[name] = self.timestamps[start : start + length]
            start += length
        return FrameScores(labels, self.hop_ms, per_file, times)

    def clip_targets(self) -> np.ndarray:
        """Multi-hot ``[n_files, C]``: which classes occur anywhere in each file."""
        out, start = np.zeros((len(self.files), self.y.shape[1]), np.float32), 0
        for i, length in enumerate(self.lengths.tolist()):
            if length:
                out[i] = self.y[start : start + length].max(axis=0)
            start += length
        return out


def multi_hot(task: TaskFolder, labels_per_row: Sequence[Sequence[str]], where: str) -> np.ndarray:
    y = np.zeros((len(labels_per_row), len(task.labels)), np.float32)
    for row, labels in enumerate(labels_per_row):
        for label in labels:
            if label not in task.label_index:
                raise ValueError(f"{where}: label {label!r} is not in labelvocabulary.csv")
            y[row, task.label_index[label]] = 1.0
    return y


def _subset(emb: SplitEmbeddings, keep: frozenset[str] | None) -> SplitEmbeddings:
    if keep is None:
        return emb
    rows = [i for i, f in enumerate(emb.files) if f in keep]
    files = [emb.files[i] for i in rows]
    if emb.kind == "scene":
        return SplitEmbeddings("scene", files, emb.embeddings[rows], emb.durations_ms[rows])
    frame_rows = np.concatenate(
        [np.arange(s.start, s.stop) for f, s in emb.file_slices() if f in keep]
        or [np.zeros(0, int)]
    )
    return SplitEmbeddings(
        "timestamp",
        files,
        emb.embeddings[frame_rows],
        emb.durations_ms[rows],
        emb.timestamps[frame_rows],
        emb.lengths[rows],
    )


def load_scene(
    cache: EmbeddingCache, model: ModelSpec, task: TaskFolder, selection: FileSelection
) -> SceneData:
    files, xs, labels = [], [], []
    for split in selection.splits:
        emb = _subset(cache.get(model, task, split, "scene"), selection.files)
        split_labels = task.split_labels(split)
        files += emb.files
        xs.append(emb.embeddings)
        labels += [split_labels[f] for f in emb.files]
    y = multi_hot(task, labels, f"{task.path} ({selection.describe()})")
    if not task.is_multilabel and not (y.sum(axis=1) == 1).all():
        bad = files[int(np.flatnonzero(y.sum(axis=1) != 1)[0])]
        raise ValueError(f"{task.path}: multiclass task but {bad} does not have exactly 1 label")
    return SceneData(files, np.concatenate(xs), y)


def frame_targets(
    task: TaskFolder, events: Sequence[Event], timestamps: np.ndarray, where: str
) -> np.ndarray:
    y = np.zeros((len(timestamps), len(task.labels)), np.float32)
    for event in events:
        if event.label not in task.label_index:
            raise ValueError(f"{where}: label {event.label!r} is not in labelvocabulary.csv")
        active = (timestamps >= event.start) & (timestamps < event.end + _EVENT_END_TOLERANCE_MS)
        y[active, task.label_index[event.label]] = 1.0
    return y


def load_events(
    cache: EmbeddingCache, model: ModelSpec, task: TaskFolder, selection: FileSelection
) -> EventData:
    files, xs, ys, times, lengths, reference, durations = [], [], [], [], [], {}, {}
    for split in selection.splits:
        emb = _subset(cache.get(model, task, split, "timestamp"), selection.files)
        split_labels = task.split_labels(split)
        for (name, rows), duration in zip(emb.file_slices(), emb.durations_ms.tolist()):
            stamps = emb.timestamps[rows]
            files.append(name)
            xs.append(emb.embeddings[rows])
            ys.append(frame_targets(task, split_labels[name], stamps, f"{task.split_file(split)}"))
            times.append(stamps)
            lengths.append(len(stamps))
            reference[name] = list(split_labels[name])
            durations[name] = duration
    all_times = np.concatenate(times)
    hops = [np.diff(t) for t in times if len(t) > 1]
    hop = float(np.median(np.concatenate(hops))) if hops else 40.0
    return EventData(
        files,
        np.concatenate(xs),
        np.concatenate(ys),
        all_times,
        np.array(lengths),
        reference,
        durations,
        hop,
    )


def weak_labels(task: TaskFolder) -> dict[str, dict[str, list[str]]]:
    """Weakly labelled splits a task keeps beside its HEAR splits (DESED's weak clips):
    ``{split: {file: [labels]}}`` from ``weak_label_file``, for the splits in ``weak_splits``."""
    splits = task.metadata.get("weak_splits") or []
    if not splits:
        return {}
    label_file = task.path / str(task.metadata.get("weak_label_file", ""))
    if not label_file.is_file():
        raise FileNotFoundError(f"{task.path}: weak_label_file {label_file.name!r} is missing")
    stored = json.loads(label_file.read_text(encoding="utf-8"))
    missing = [s for s in splits if not stored.get(s)]
    if missing:
        raise ValueError(f"{label_file}: no clips listed for weak splits {missing}")
    return {
        s: {f: [str(label) for label in labels] for f, labels in stored[s].items()} for s in splits
    }


def events_as_dicts(events: EventDict) -> dict[str, list[dict]]:
    """JSON-ready ``{file: [{"label", "start", "end"}]}``."""
    out = {}
    for name, items in events.items():
        out[name] = [
            {"label": e.label, "start": float(e.start), "end": float(e.end)}
            if isinstance(e, Event)
            else dict(e)
            for e in items
        ]
    return out
