"""The one way a task folder is built: in a partial folder, resumably, validated, then renamed.

Every source (dataset converters and the demo suite) converts its clips into a partial folder
whose journal (:mod:`.journal`) lets an interrupted run resume, writes the task files there,
checks them with :func:`~atst_hear.tasks.validation.validate_task_folder` and only then
renames the folder into place, so a folder under its final name is always complete.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ...audio import SAMPLE_RATE
from ...fileio import write_json_atomic
from ...tasks.validation import validate_task_folder
from ...tasks.writing import write_task_files
from .convert import convert_clips
from .journal import JOURNAL_NAME, Journal, Records
from .plan import BadInputs, Clip, TaskPlan


def convert_resumable(
    plan: TaskPlan,
    clips: Sequence[Clip],
    partial: Path,
    signature: dict[str, Any],
    bad: BadInputs,
    label: str,
    *,
    jobs: int = 1,
    owned: bool = False,
    progress: bool = True,
    announce: Callable[[int], None] | None = None,
) -> Records:
    """Convert ``clips`` into ``partial``, keeping the verified clips of an interrupted run with
    the same ``signature``; return the journal records of the clips now converted.

    ``announce`` is told how many clips were kept before the others are converted; ``owned``
    is passed to :meth:`Journal.open`.
    """
    journal = Journal.open(partial, signature, owned=owned)
    try:
        records = journal.verified(clips, partial, progress)
        if announce is not None:
            announce(len(records))
        todo = [clip for clip in clips if clip.key not in records]
        convert_clips(
            todo,
            partial,
            plan.metadata["sample_duration"],
            jobs,
            bad,
            journal.add,
            label,
            progress,
        )
        records.update({c.key: journal.records[c.key] for c in todo if c.key in journal.records})
    finally:
        journal.close()
    return records


def remove_unplanned_audio(partial: Path, clips: Iterable[Clip]) -> None:
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


def write_task_folder(plan: TaskPlan, clips: Sequence[Clip], partial: Path) -> list[str]:
    """Write the task files of the converted ``clips`` into ``partial`` and validate it.

    Returns the validator's warnings; errors raise and leave the folder for inspection.
    """
    remove_unplanned_audio(partial, clips)
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
        write_json_atomic(partial / plan.side_label_file, side_labels, indent=1)

    problems = validate_task_folder(partial)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        listed = "; ".join(str(p) for p in errors[:5])
        raise RuntimeError(
            f"{partial}: the converted folder fails validation ({len(errors)} errors: {listed}); "
            "it is left in place for inspection"
        )
    return [f"{Path(p.path).relative_to(partial)}: {p.message}" for p in problems]


def publish(partial: Path, target: Path) -> None:
    """Rename the finished ``partial`` folder to ``target`` and drop its journal.

    An existing ``target`` (a demo task of other settings) is moved aside first and removed
    only once the new folder is in place.
    """
    if target.exists():
        retired = retired_path(target)
        shutil.rmtree(retired, ignore_errors=True)
        target.rename(retired)
        partial.rename(target)
        shutil.rmtree(retired)
    else:
        partial.rename(target)
    (target / JOURNAL_NAME).unlink(missing_ok=True)


def retired_path(target: Path) -> Path:
    """Where :func:`publish` moves an existing ``target`` while it puts the new one in place."""
    return target.with_name(f".{target.name}.old")


def _groups(plan: TaskPlan, clips: Sequence[Clip]) -> dict[str, dict[str, str]] | None:
    """``{split: {file: group}}`` of the task splits, or None when the source sets none."""
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
