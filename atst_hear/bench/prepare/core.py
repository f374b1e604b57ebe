"""``prepare()``: one dataset converter's run, from raw dataset to finished task folder.

A converter module reads a raw dataset's metadata and returns a :class:`~.plan.TaskPlan`: which
source file becomes which clip, in which split, with which labels. Everything else happens
once for all datasets, in the modules this run strings together:

* bad input (missing file, corrupt audio, unknown label) stops with an error naming it, or with
  ``skip_bad`` is skipped and listed in the manifest and in the closing summary (:mod:`.plan`);
* clip and class counts are compared with the known release; ``allow_partial`` turns a
  difference into a warning recorded in the manifest (:func:`.plan.check_counts`);
* worker processes decode each clip, mix it to mono, resample it to 16 kHz, crop or pad it to
  the task's clip length and write 16-bit WAV, under a progress bar (:mod:`.convert`);
* everything is written to ``<OUT_DIR>.partial``, where a journal (:mod:`.journal`) records
  each finished clip with the sha256 of its output, so a re-run skips clips already converted
  and verified. Only a complete folder that passes validation is renamed to ``OUT_DIR``
  (:mod:`.writer`), with its ``manifest.json`` (:mod:`.manifest`).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...audio import SAMPLE_RATE
from ...fileio import write_text_atomic
from . import DATASETS
from .convert import resampler_name
from .manifest import MANIFEST_NAME, build_manifest, log_summary, manifest_text, read_finished
from .plan import BadInputs, Clip, TaskPlan, check_counts, check_plan
from .writer import convert_resumable, publish, remove_unplanned_audio, write_task_folder

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"


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
        manifest = read_finished(out_dir, name, variant)
        logger.info(
            "%s: already prepared (%d clips); remove it to redo it", out_dir, len(manifest["clips"])
        )
        return manifest

    converter = importlib.import_module(f"{__package__}.{DATASETS[name].module}")
    label = name if variant is None else f"{name} ({variant})"
    logger.info("%s: reading the metadata of %s", label, raw_dir)
    bad = BadInputs(skip_bad)
    plan: TaskPlan = converter.plan(raw_dir, variant, bad, **options)
    check_plan(plan)
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

    def announce(reused: int) -> None:
        logger.info(
            "%s: %d clips, %d already converted; converting %d with %d worker%s (%s)",
            label,
            len(clips),
            reused,
            len(clips) - reused,
            jobs,
            "s" * (jobs > 1),
            signature["resampler"],
        )

    records = convert_resumable(
        plan, clips, partial, signature, bad, label, jobs=jobs, announce=announce
    )
    done = [clip for clip in clips if clip.key in records]
    _check_splits_filled(plan, done, bad)
    if plan.write_output is None:
        warnings = warnings + write_task_folder(plan, done, partial)
    else:
        remove_unplanned_audio(partial, done)
        plan.manifest_extra.update(plan.write_output(partial, done, records))
    manifest = build_manifest(plan, done, records, raw_dir, bad, warnings, variant)
    write_text_atomic(partial / MANIFEST_NAME, manifest_text(manifest))
    publish(partial, out_dir)
    log_summary(label, out_dir, manifest)
    return manifest


def _source_exists(clip: Clip, bad: BadInputs) -> bool:
    if isinstance(clip.source, Path) and clip.source.is_file():
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
