"""``manifest.json``: what a converted task folder was made from, by what, and what was skipped."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ... import __version__
from ...audio import SAMPLE_RATE
from ...tasks.folder import Event
from . import DATASETS
from .convert import resampler_name
from .journal import Records
from .plan import BadInputs, Clip, TaskPlan

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"


def build_manifest(
    plan: TaskPlan,
    clips: Sequence[Clip],
    records: Records,
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


def manifest_text(manifest: Mapping[str, Any]) -> str:
    """Readable JSON: the header indented, one line per clip (NSynth has 300k of them)."""
    header = {key: value for key, value in manifest.items() if key != "clips"}
    head = json.dumps(header, indent=1)[: -len("\n}")]
    body = ",\n".join("  " + json.dumps(entry) for entry in manifest["clips"])
    return f'{head},\n "clips": [\n{body}\n ]\n}}\n'


def read_finished(out_dir: Path, name: str, variant: str | None) -> dict[str, Any]:
    """The manifest of a folder already prepared from ``name`` and ``variant``; an error for
    any other existing folder."""
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
    return manifest


def log_summary(label: str, out_dir: Path, manifest: Mapping[str, Any]) -> None:
    per_split = ", ".join(f"{s} {c['clips']}" for s, c in manifest["split_counts"].items())
    logger.info("%s: wrote %s (%d clips: %s)", label, out_dir, len(manifest["clips"]), per_split)
    for note in manifest["notes"]:
        logger.info("%s: note: %s", label, note)
    for warning in manifest["warnings"]:
        logger.warning("%s: %s", label, warning)
    skipped = manifest["skipped"]
    if skipped:
        # one record, so that the list stays together between other processes' lines
        shown = [f"    {entry['source']}: {entry['reason']}" for entry in skipped[:20]]
        if len(skipped) > 20:
            shown.append(f"    ... and {len(skipped) - 20} more")
        logger.warning(
            "%s: skipped %d bad entries (listed in %s):\n%s",
            label,
            len(skipped),
            MANIFEST_NAME,
            "\n".join(shown),
        )


def _label_json(item: str | Event) -> str | dict[str, Any]:
    if isinstance(item, Event):
        return {"label": item.label, "start": item.start, "end": item.end}
    return item


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
