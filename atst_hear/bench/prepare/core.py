"""The machinery every dataset converter shares: plan, check, convert in parallel, finish.

A converter module reads a raw dataset's metadata and returns a :class:`TaskPlan`: which source
file becomes which clip, in which split, with which labels. Everything else happens here, once
for all datasets:

* bad input (missing file, corrupt audio, unknown label) stops with an error naming it, or with
  ``skip_bad`` is skipped and listed in the manifest and in the closing summary;
* clip and class counts are compared with the known release; ``allow_partial`` turns a
  difference into a warning recorded in the manifest;
* worker processes decode each clip, mix it to mono, resample it to 16 kHz (soxr when
  importable, otherwise torchaudio), crop or pad it to the task's clip length and write 16-bit
  WAV, under a progress bar;
* everything is written to ``<OUT_DIR>.partial``, where a journal records each finished clip
  with the sha256 of its output, so a re-run skips clips already converted and verified. Only
  a complete folder that passes :func:`~atst_hear.bench.taskfolder.validate_task_folder` is
  renamed to ``OUT_DIR``: a half-converted folder can never pass for a finished one.
"""

from __future__ import annotations

import csv
import importlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from ... import __version__
from ...audio import SAMPLE_RATE, AudioError, audio_info, read_audio, resample, write_wav
from ...fileio import sha256_file, write_text_atomic
from ..taskfolder import Event, validate_task_folder, write_task_files
from . import DATASETS

try:
    import soxr
except ImportError:  # optional: torchaudio's resampler takes over
    soxr = None

PARTIAL_SUFFIX = ".partial"
JOURNAL_NAME = "progress.jsonl"
MANIFEST_NAME = "manifest.json"
# how many clips each worker has queued, so that a stop never waits for a long backlog
QUEUE_PER_WORKER = 4


class BadInputError(ValueError):
    """A missing file, corrupt audio or unknown label, with the file named in the message."""


class CountMismatchError(ValueError):
    """The raw dataset holds a different number of clips or classes than the known release."""


@dataclass(frozen=True)
class Clip:
    """One output clip: where it comes from, where it goes and what it is labelled."""

    split: str
    name: str  # output file name, ending in .wav, unique in the task
    source: Path
    labels: tuple[str, ...] | tuple[Event, ...] = ()
    offset_s: float = 0.0  # where the clip starts in the source
    length_s: float | None = None  # how much of the source it takes (None: up to the end)
    # the recording, speaker or uploader the clip comes from (file_groups.json); clips of one
    # group never straddle a validation slice. Converters set it for all clips or for none.
    group: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.split, self.name


@dataclass
class TaskPlan:
    """What a converter found in a raw dataset and how it becomes a task folder."""

    dataset: str
    dataset_version: str
    converter_version: int
    metadata: dict[str, Any]  # built with taskfolder.task_metadata
    vocabulary: list[str]  # labelvocabulary.csv, in order
    clips: list[Clip]
    found_counts: dict[str, int]  # what the raw dataset holds ...
    known_counts: dict[str, int]  # ... and what the release is known to hold
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


# --- helpers for converters -----------------------------------------------------------------
def find_root(raw_dir: Path, marker: str, subfolders: Sequence[str] = ()) -> Path:
    """The folder holding ``marker``: RAW_DIR itself or one of the usual top-level folders."""
    candidates = [raw_dir] + [raw_dir / sub for sub in subfolders]
    for candidate in candidates:
        if (candidate / marker).exists():
            return candidate
    looked = ", ".join(str(c / marker) for c in candidates)
    raise FileNotFoundError(
        f"{raw_dir}: cannot find {marker} (looked for {looked}); RAW_DIR must be the dataset "
        "as its owners distribute it, see docs/datasets.md"
    )


def read_table(
    path: Path, columns: Sequence[str], delimiter: str = ","
) -> list[tuple[str, dict[str, str]]]:
    """Rows of a CSV/TSV file with a header, each with its ``file:line`` for error messages."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metadata file is missing")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}: missing columns {missing}; the header is {reader.fieldnames}"
            )
        return [(f"{path}:{reader.line_num}", row) for row in reader]


def read_lines(path: Path) -> list[tuple[str, str]]:
    """Non-empty lines of a text file, each with its ``file:line``."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: list file is missing")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(f"{path}:{n}", line.strip()) for n, line in enumerate(lines, 1) if line.strip()]


def fold_name(index: int) -> str:
    """HEAR's k-fold split name for a 0-based fold index."""
    return f"fold{index:02d}"


# --- the conversion of one clip (runs in worker processes) ----------------------------------
def resampler_name() -> str:
    if soxr is not None:
        return f"soxr {soxr.__version__} (quality HQ)"
    return f"torchaudio {torchaudio.__version__} functional.resample"


def _to_sample_rate(wave: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return wave
    if soxr is not None:
        return soxr.resample(wave, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return resample(torch.from_numpy(wave), rate, SAMPLE_RATE).numpy()


def _fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Keep the start and pad the end with zeros, as hear-preprocess does."""
    if len(wave) >= n_samples:
        return wave[:n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def source_stat(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def convert_clip(clip: Clip, target: Path, duration_s: float | None) -> dict[str, Any]:
    """Decode, cut, resample, crop/pad and write one clip; return its journal record."""
    source = read_audio(clip.source, sample_rate=None).numpy()
    rate, _, channels = audio_info(clip.source)
    start = round(clip.offset_s * rate)
    stop = len(source) if clip.length_s is None else start + round(clip.length_s * rate)
    if start >= len(source) or stop > len(source):
        raise AudioError(
            f"{clip.source}: segment {clip.offset_s:g}-{clip.offset_s + (clip.length_s or 0):g} s "
            f"lies outside the audio ({len(source) / rate:g} s)"
        )
    wave = _to_sample_rate(source[start:stop], rate)
    if duration_s is not None:
        wave = _fit_length(wave, round(duration_s * SAMPLE_RATE))
    write_wav(target, wave, SAMPLE_RATE)
    return {
        "split": clip.split,
        "file": clip.name,
        "source": str(clip.source),
        "source_stat": source_stat(clip.source),
        "source_sha256": sha256_file(clip.source),
        "source_sample_rate": rate,
        "source_channels": channels,
        "source_duration_s": round(len(source) / rate, 6),
        "duration_s": round(len(wave) / SAMPLE_RATE, 6),
        "sha256": sha256_file(target),
    }


def _worker_init() -> None:
    # each worker converts one clip at a time; more threads would only oversubscribe the cores
    torch.set_num_threads(1)


# --- the journal of finished clips ----------------------------------------------------------
class Journal:
    """Append-only record of finished clips in a partial folder, read back to resume."""

    def __init__(self, path: Path, records: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.records = records
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    @classmethod
    def open(cls, partial: Path, signature: dict[str, Any]) -> Journal:
        path = partial / JOURNAL_NAME
        if partial.exists():
            if not path.is_file():
                raise ValueError(
                    f"{partial} exists but holds no {JOURNAL_NAME}, so it was not left by an "
                    "interrupted `atst-hear prepare`; remove it or choose another OUT_DIR"
                )
            header, records = _read_journal(path)
            if header == signature:
                return cls(path, records)
            print(f"{partial}: left by a run with other settings ({header}); starting again")
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        path.write_text(json.dumps({"signature": signature}) + "\n", encoding="utf-8")
        return cls(path, {})

    def add(self, record: dict[str, Any]) -> None:
        self.records[record["split"], record["file"]] = record
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _read_journal(path: Path) -> tuple[Any, dict[tuple[str, str], dict[str, Any]]]:
    header = None
    records: dict[tuple[str, str], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash: that clip is simply converted again
            if not isinstance(entry, dict):
                continue
            if n == 0:
                header = entry.get("signature")
            elif {"split", "file", "source", "source_stat", "sha256"} <= set(entry):
                records[entry["split"], entry["file"]] = entry
    return header, records


# --- the whole run --------------------------------------------------------------------------
def prepare(
    name: str,
    raw_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    jobs: int = 1,
    skip_bad: bool = False,
    allow_partial: bool = False,
    variant: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert dataset ``name`` from ``raw_dir`` into the task folder ``out_dir``.

    ``options`` are the converter's own settings (``DatasetEntry.options``, e.g. AudioSet's
    ``min_found``); they are not part of a run's identity, so changing them keeps a resume.

    Returns the manifest. An ``out_dir`` already prepared from the same dataset and variant is
    left alone; an interrupted run resumes from ``<out_dir>.partial``. With ``jobs > 1`` the
    workers are started with "spawn", so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    variant = DATASETS[name].resolve_variant(name, variant)
    options = dict(options or {})
    unknown = sorted(set(options) - set(DATASETS[name].options))
    if unknown:
        raise ValueError(f"{name} takes no option {', '.join(unknown)}")
    raw_dir, out_dir = Path(raw_dir).absolute(), Path(out_dir).absolute()
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: raw dataset folder does not exist")
    if out_dir.exists():
        return _already_prepared(out_dir, name, variant)

    converter = importlib.import_module(f"{__package__}.{DATASETS[name].module}")
    label = name if variant is None else f"{name} ({variant})"
    print(f"{label}: reading the metadata of {raw_dir}", flush=True)
    bad = BadInputs(skip_bad)
    plan: TaskPlan = converter.plan(raw_dir, variant, bad, **options)
    _check_plan(plan)
    clips = [clip for clip in plan.clips if _source_exists(clip, bad)]
    warnings = check_counts(plan.found_counts, plan.known_counts, allow_partial)
    _check_splits_filled(plan, clips, bad)

    partial = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    signature = {
        "dataset": name,
        "variant": variant,
        "converter_version": plan.converter_version,
        "resampler": resampler_name(),
        "sample_rate": SAMPLE_RATE,
    }
    journal = Journal.open(partial, signature)
    try:
        records = _reuse_verified(journal, clips, partial)
        todo = [clip for clip in clips if clip.key not in records]
        print(
            f"{label}: {len(clips)} clips, {len(records)} already converted; converting "
            f"{len(todo)} with {jobs} worker{'s' * (jobs > 1)} ({signature['resampler']})",
            flush=True,
        )
        records.update(
            _convert(todo, partial, plan.metadata["sample_duration"], jobs, bad, journal, label)
        )
    finally:
        journal.close()
    done = [clip for clip in clips if clip.key in records]
    _check_splits_filled(plan, done, bad)
    manifest = _finish(plan, done, records, raw_dir, partial, out_dir, bad, warnings, variant)
    _print_summary(label, out_dir, manifest)
    return manifest


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


def _check_plan(plan: TaskPlan) -> None:
    """Catch converter mistakes before any audio is touched."""
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


def _source_exists(clip: Clip, bad: BadInputs) -> bool:
    if clip.source.is_file():
        return True
    bad.report(clip.source, "audio file is missing")
    return False


def _check_splits_filled(plan: TaskPlan, clips: Sequence[Clip], bad: BadInputs) -> None:
    filled = {clip.split for clip in clips}
    empty = [split for split in plan.metadata["splits"] if split not in filled]
    if empty:
        raise ValueError(
            f"no clips left for split(s) {', '.join(empty)} ({len(bad.skipped)} bad entries "
            "skipped); a task folder needs every split"
        )


def _already_prepared(out_dir: Path, name: str, variant: str | None) -> dict[str, Any]:
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ValueError(
            f"{out_dir} already exists and is not a task folder written by `atst-hear prepare`; "
            "remove it or choose another OUT_DIR"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if (manifest.get("dataset"), manifest.get("variant")) != (name, variant):
        raise ValueError(
            f"{out_dir} already holds {manifest.get('dataset')} (variant "
            f"{manifest.get('variant')}); remove it or choose another OUT_DIR"
        )
    print(f"{out_dir}: already prepared ({len(manifest['clips'])} clips); remove it to redo it")
    return manifest


def _target(partial: Path, clip: Clip) -> Path:
    return partial / str(SAMPLE_RATE) / clip.split / clip.name


def _reuse_verified(
    journal: Journal, clips: Sequence[Clip], partial: Path
) -> dict[tuple[str, str], dict[str, Any]]:
    """Journal records whose output still matches its sha256 and whose source is unchanged."""
    candidates = [clip for clip in clips if clip.key in journal.records]
    if not candidates:
        return {}
    reused = {}
    for clip in tqdm(
        candidates, desc="verifying clips of the previous run", unit="clip", disable=None
    ):
        record = journal.records[clip.key]
        target = _target(partial, clip)
        if (
            record["source"] == str(clip.source)
            and record["source_stat"] == source_stat(clip.source)
            and target.is_file()
            and sha256_file(target) == record["sha256"]
        ):
            reused[clip.key] = record
    return reused


def _convert(
    clips: Sequence[Clip],
    partial: Path,
    duration_s: float | None,
    jobs: int,
    bad: BadInputs,
    journal: Journal,
    label: str,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Convert clips (in worker processes when jobs > 1), journaling each finished one."""
    for split in {clip.split for clip in clips}:
        (partial / str(SAMPLE_RATE) / split).mkdir(parents=True, exist_ok=True)
    progress = tqdm(total=len(clips), desc=f"{label}: converting", unit="clip", disable=None)

    def finished(clip: Clip, outcome: dict[str, Any] | AudioError) -> None:
        progress.update()
        if isinstance(outcome, AudioError):
            bad.report(clip.source, f"cannot convert ({outcome})")
        else:
            journal.add(outcome)

    try:
        if jobs == 1:
            for clip in clips:
                try:
                    outcome = convert_clip(clip, _target(partial, clip), duration_s)
                except AudioError as err:
                    outcome = err
                finished(clip, outcome)
        else:
            _convert_in_workers(clips, partial, duration_s, jobs, finished)
    finally:
        progress.close()
    return {clip.key: journal.records[clip.key] for clip in clips if clip.key in journal.records}


def _convert_in_workers(
    clips: Sequence[Clip],
    partial: Path,
    duration_s: float | None,
    jobs: int,
    finished: Callable[[Clip, dict[str, Any] | AudioError], None],
) -> None:
    # spawn, not fork: a forked child of a process that already ran OpenMP code can deadlock
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init)
    queue = iter(clips)
    pending: dict[Future, Clip] = {}
    try:
        while True:
            while len(pending) < jobs * QUEUE_PER_WORKER:
                clip = next(queue, None)
                if clip is None:
                    break
                pending[pool.submit(convert_clip, clip, _target(partial, clip), duration_s)] = clip
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            # journal every success of this batch before a failure may stop the run
            failures = []
            for future in done:
                clip = pending.pop(future)
                try:
                    finished(clip, future.result())
                except AudioError as err:
                    failures.append((clip, err))
                except BrokenProcessPool as err:
                    raise RuntimeError(
                        f"a conversion worker died while converting {clip.source} ({err}); "
                        "re-run the same command to resume"
                    ) from err
            for clip, err in failures:
                finished(clip, err)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- finishing ------------------------------------------------------------------------------
def _finish(
    plan: TaskPlan,
    clips: Sequence[Clip],
    records: Mapping[tuple[str, str], dict[str, Any]],
    raw_dir: Path,
    partial: Path,
    out_dir: Path,
    bad: BadInputs,
    warnings: list[str],
    variant: str | None,
) -> dict[str, Any]:
    """Write the task files and manifest, validate, and only then rename to ``out_dir``."""
    _remove_unplanned_audio(partial, clips)
    if plan.write_output is not None:
        plan.manifest_extra.update(plan.write_output(partial, clips, records))
        manifest = _manifest(plan, clips, records, raw_dir, bad, warnings, variant)
        write_text_atomic(partial / MANIFEST_NAME, manifest_text(manifest))
        os.rename(partial, out_dir)
        (out_dir / JOURNAL_NAME).unlink(missing_ok=True)
        return manifest
    task_splits = list(plan.metadata["splits"])
    split_labels: dict[str, dict[str, list]] = {split: {} for split in task_splits}
    side_labels: dict[str, dict[str, list]] = {}
    for clip in clips:
        labels = split_labels if clip.split in task_splits else side_labels
        labels.setdefault(clip.split, {})[clip.name] = list(clip.labels)
    write_task_files(
        partial, plan.metadata, split_labels, labels=plan.vocabulary, groups=_groups(plan, clips)
    )
    if plan.side_label_file is not None:
        write_text_atomic(partial / plan.side_label_file, json.dumps(side_labels, indent=1) + "\n")

    problems = validate_task_folder(partial)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listed = "; ".join(str(p) for p in errors[:5])
        raise RuntimeError(
            f"{partial}: the converted folder fails validation ({len(errors)} errors: {listed}); "
            "it is left in place for inspection"
        )
    warnings = warnings + [f"{Path(p.path).relative_to(partial)}: {p.message}" for p in problems]
    manifest = _manifest(plan, clips, records, raw_dir, bad, warnings, variant)
    write_text_atomic(partial / MANIFEST_NAME, manifest_text(manifest))
    os.rename(partial, out_dir)
    (out_dir / JOURNAL_NAME).unlink(missing_ok=True)
    return manifest


def _groups(plan: TaskPlan, clips: Sequence[Clip]) -> dict[str, dict[str, str]] | None:
    """``{split: {file: group}}`` of the task splits, or None when the converter sets none."""
    task_clips = [clip for clip in clips if clip.split in plan.metadata["splits"]]
    ungrouped = [clip for clip in task_clips if clip.group is None]
    if len(ungrouped) == len(task_clips):
        return None
    if ungrouped:
        raise RuntimeError(
            f"{plan.dataset}: converter set a group for some clips but not for "
            f"{ungrouped[0].split}/{ungrouped[0].name}"
        )
    groups: dict[str, dict[str, str]] = {}
    for clip in task_clips:
        groups.setdefault(clip.split, {})[clip.name] = str(clip.group)
    return groups


def _remove_unplanned_audio(partial: Path, clips: Iterable[Clip]) -> None:
    """Drop leftovers of earlier runs: temporary files, clips skipped or no longer planned."""
    wanted: dict[str, set[str]] = {}
    for clip in clips:
        wanted.setdefault(clip.split, set()).add(clip.name)
    audio_root = partial / str(SAMPLE_RATE)
    audio_root.mkdir(exist_ok=True)
    for folder in audio_root.iterdir():
        if folder.name not in wanted:
            if folder.is_dir():
                shutil.rmtree(folder)
            else:
                folder.unlink()
            continue
        for path in folder.iterdir():
            if path.name not in wanted[folder.name]:
                path.unlink()


def _manifest(
    plan: TaskPlan,
    clips: Sequence[Clip],
    records: Mapping[tuple[str, str], dict[str, Any]],
    raw_dir: Path,
    bad: BadInputs,
    warnings: list[str],
    variant: str | None,
) -> dict[str, Any]:
    entries = []
    for clip in sorted(clips, key=lambda c: c.key):
        record = records[clip.key]
        entry = {
            "split": clip.split,
            "file": clip.name,
            "labels": [_label_json(item) for item in clip.labels],
            "source": _relative(clip.source, raw_dir),
            "source_sha256": record["source_sha256"],
            "source_sample_rate": record["source_sample_rate"],
            "source_channels": record["source_channels"],
            "source_duration_s": record["source_duration_s"],
            "duration_s": record["duration_s"],
            "sha256": record["sha256"],
        }
        if clip.offset_s or clip.length_s is not None:
            entry["source_offset_s"] = clip.offset_s
        entries.append(entry)
    side_splits = sorted({clip.split for clip in clips} - set(plan.metadata["splits"]))
    counts = {split: {"clips": 0} for split in [*plan.metadata["splits"], *side_splits]}
    for clip in clips:
        counts[clip.split]["clips"] += 1
    return {
        "dataset": plan.dataset,
        "dataset_version": plan.dataset_version,
        "variant": variant,
        "task_name": plan.metadata["task_name"],
        "converter": f"atst_hear.bench.prepare.{DATASETS[plan.dataset].module}",
        "converter_version": plan.converter_version,
        "atst_hear_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "raw_dir": str(raw_dir),
        "sample_rate": SAMPLE_RATE,
        "resampler": resampler_name(),
        "sample_duration": plan.metadata["sample_duration"],
        "found_counts": plan.found_counts,
        "known_counts": plan.known_counts,
        "split_counts": counts,
        "side_label_file": plan.side_label_file,
        "notes": plan.notes,
        "warnings": warnings,
        "skipped": bad.skipped,
        **plan.manifest_extra,
        "clips": entries,
    }


def _label_json(item: str | Event) -> str | dict[str, Any]:
    if isinstance(item, Event):
        return {"label": item.label, "start": item.start, "end": item.end}
    return item


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """Readable JSON: the header indented, one line per clip (NSynth has 300k of them)."""
    header = {key: value for key, value in manifest.items() if key != "clips"}
    head = json.dumps(header, indent=1)[: -len("\n}")]
    body = ",\n".join("  " + json.dumps(entry) for entry in manifest["clips"])
    return f'{head},\n "clips": [\n{body}\n ]\n}}\n'


def _print_summary(label: str, out_dir: Path, manifest: Mapping[str, Any]) -> None:
    per_split = ", ".join(f"{s} {c['clips']}" for s, c in manifest["split_counts"].items())
    print(f"{label}: wrote {out_dir} ({len(manifest['clips'])} clips: {per_split})")
    for note in manifest["notes"]:
        print(f"  note: {note}")
    for warning in manifest["warnings"]:
        print(f"  warning: {warning}")
    skipped = manifest["skipped"]
    if skipped:
        print(f"  skipped {len(skipped)} bad entries (listed in {MANIFEST_NAME}):")
        for entry in skipped[:20]:
            print(f"    {entry['source']}: {entry['reason']}")
        if len(skipped) > 20:
            print(f"    ... and {len(skipped) - 20} more")
