"""``result.json``: what a finished benchmark unit records, written by the runner, read by the report.

One :class:`UnitResult` per unit folder: which unit it is, the key hash that tells a resumed run
whether the result is still valid, the model and task descriptions, the recipe (protocol,
version, parameters, seed), one :class:`~.protocols.base.FoldResult` per test fold, the run time
and the provenance. Reading is strict: a missing or unknown field is an error naming the file,
so a result written by another layout is never half-read into a score table.

The keys on disk are those of the first toolkit versions, so that existing output folders still
load; ``format`` numbers the layout and changes with any incompatible change of it. Files
written before the field existed are format 1.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..fileio import write_json_atomic
from .protocols.base import FoldResult

RESULT_FILE = "result.json"
RESULT_FORMAT = 1


class ResultFileError(ValueError):
    """A ``result.json`` that is not a unit result of the layout this toolkit reads."""


@dataclass(frozen=True)
class UnitIdentity:
    """Which unit of the plan the result belongs to."""

    id: str
    model: str
    task: str
    protocol: str
    seed: int
    fold: str


@dataclass(frozen=True)
class RecipeRecord:
    """The protocol and settings that produced the scores."""

    protocol: str
    version: int
    description: str
    map_convention: str
    params: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class UnitResult:
    unit: UnitIdentity
    key_hash: str
    model: dict[str, Any]  # the suite's description of the model (reference, checksum, ...)
    task: dict[str, Any]  # the task folder's description (path, checksum, reference, ...)
    recipe: RecipeRecord
    folds: tuple[FoldResult, ...]
    elapsed_s: float
    provenance: dict[str, Any]
    format: int = RESULT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "unit": dataclasses.asdict(self.unit),
            "key_hash": self.key_hash,
            "model": self.model,
            "task": self.task,
            "recipe": dataclasses.asdict(self.recipe),
            "folds": [fold.to_json() for fold in self.folds],
            "elapsed_s": self.elapsed_s,
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: Any, source: str | Path) -> UnitResult:
        """The record of a parsed ``result.json``; ``source`` names the file in errors."""
        fields = _fields(cls, data, source, "", optional=frozenset({"format"}))
        version = fields.get("format", 1)
        if version != RESULT_FORMAT:
            raise ResultFileError(
                f"{source}: result format {version!r}, but this toolkit reads format "
                f"{RESULT_FORMAT}; run the benchmark again into a new folder, or report it "
                "with the atst-hear version that wrote it"
            )
        folds = fields["folds"]
        if not isinstance(folds, list):
            raise ResultFileError(f"{source}: 'folds' must be a list, got {type(folds).__name__}")
        try:
            return cls(
                unit=UnitIdentity(**_fields(UnitIdentity, fields["unit"], source, "unit.")),
                key_hash=fields["key_hash"],
                model=fields["model"],
                task=fields["task"],
                recipe=RecipeRecord(**_fields(RecipeRecord, fields["recipe"], source, "recipe.")),
                folds=tuple(
                    FoldResult.from_json(_fields(FoldResult, fold, source, f"folds[{i}]."))
                    for i, fold in enumerate(folds)
                ),
                elapsed_s=fields["elapsed_s"],
                provenance=fields["provenance"],
                format=version,
            )
        except (TypeError, ValueError, AttributeError) as err:  # e.g. a score that is no number
            raise ResultFileError(f"{source}: malformed unit result: {err}") from err

    @classmethod
    def read(cls, path: str | Path) -> UnitResult:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ResultFileError(f"{path}: not a JSON file: {err}") from err
        return cls.from_json(data, path)

    def write(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())


def _fields(
    record: type, data: Any, source: str | Path, prefix: str, optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``data`` as the keyword arguments of the dataclass ``record``: exactly its fields."""
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "the file"
        raise ResultFileError(f"{source}: {where} must be a JSON object, got {type(data).__name__}")
    expected = {field.name for field in dataclasses.fields(record)}
    missing = sorted(expected - optional - set(data))
    unknown = sorted(set(data) - expected)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(prefix + key for key in missing)}")
    if unknown:
        problems.append(f"unknown {', '.join(prefix + key for key in unknown)}")
    if problems:
        raise ResultFileError(
            f"{source}: not a unit result of format {RESULT_FORMAT}: {'; '.join(problems)}"
        )
    return dict(data)
