"""Helpers for converters reading a raw dataset's metadata, with ``file:line`` in errors."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...tasks.writing import task_metadata
from .plan import Clip

SCENE_EVALUATION = ("top1_acc", "mAP", "d_prime", "aucroc")


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


def kfold_metadata(task_name: str, n_folds: int, sample_duration: float) -> dict[str, Any]:
    """``task_metadata.json`` of a multiclass scene task with ``n_folds`` official folds."""
    folds = [fold_name(k) for k in range(n_folds)]
    return task_metadata(
        task_name,
        "scene",
        "multiclass",
        "presplit_kfold",
        folds,
        sample_duration,
        list(SCENE_EVALUATION),
    )


def kfold_counts(n_rows: int, clips: Sequence[Clip]) -> dict[str, int]:
    """What a single-label k-fold dataset holds: metadata rows, classes and folds found."""
    return {
        "clips": n_rows,
        "classes": len({clip.labels[0] for clip in clips}),
        "folds": len({clip.split for clip in clips}),
    }
