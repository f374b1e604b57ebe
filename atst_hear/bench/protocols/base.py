"""What every protocol provides to the runner, and what the runner gives a protocol to run.

A protocol is a named, versioned recipe with default hyper-parameters (overridable in a suite).
The runner asks it which units a task needs (:meth:`Protocol.fold_units`: one per test fold, or
one for all folds when the folds are not independent) and runs each with a :class:`UnitContext`.
A unit returns one :class:`FoldResult` per test fold it covers; it may keep partial state in
``ctx.workdir`` so that an interrupted unit resumes where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from ...schema import Schema, validation_message
from ...tasks.folder import TaskFolder
from ...tasks.scores import MAP_ALL_CLASSES
from ..cache import EmbeddingCache, ModelSpec

logger = logging.getLogger(__name__)


@dataclass
class UnitContext:
    task: TaskFolder
    model: ModelSpec  # embedding options of the protocol already merged in
    cache: EmbeddingCache
    params: dict[str, Any]
    seed: int
    fold: str
    workdir: Path
    device: str = "cpu"
    progress: bool = True

    def log(self, message: str) -> None:
        logger.info("[%s %s fold %s] %s", self.model.name, self.task.name, self.fold, message)


@dataclass
class FoldResult:
    fold: str
    scores: dict[str, float]
    primary: str
    valid_source: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "primary": self.primary,
            "valid_source": self.valid_source,
            "scores": {k: _json_float(v) for k, v in self.scores.items()},
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FoldResult:
        scores = {k: float("nan") if v is None else float(v) for k, v in data["scores"].items()}
        return cls(
            data["fold"], scores, data["primary"], data["valid_source"], dict(data["details"])
        )


def _json_float(value: float) -> float | str | None:
    """JSON has no NaN/Inf: NaN becomes null, infinities the strings "inf" / "-inf"."""
    value = float(value)
    if np.isnan(value):
        return None
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


ALL_FOLDS = "all"


class ProtocolParams(Schema):
    """A protocol's hyper-parameters, each with its default; a suite overrides them by name."""

    key_noun = "parameters"


class Protocol:
    name: str = ""
    version: int = 1
    description: str = ""
    Params: type[ProtocolParams] = ProtocolParams  # each protocol declares its own
    embedding_kind: str | None = None  # "scene" | "timestamp" | "task" (by task) | None (raw audio)
    seeded: bool = True  # False: results do not depend on the seed, one seed is enough
    # how mAP treats classes without positives in the evaluated split (tasks.scores.MAP_CONVENTIONS);
    # recorded in every result's recipe
    map_convention: str = MAP_ALL_CLASSES
    # how the recipe departs from the published one it reproduces (shown in the report; a unit
    # adds its task-specific ones as ``details["deviations"]``), and the parameters whose
    # defaults are the published values: a suite that sets them otherwise is reported as
    # deviating
    deviations: tuple[str, ...] = ()
    published_params: tuple[str, ...] = ()

    def supports(self, task: TaskFolder) -> str | None:
        """None if the protocol can run on the task, else the reason it cannot."""
        return None

    def kind_for(self, task: TaskFolder) -> str | None:
        if self.embedding_kind == "task":
            return "timestamp" if task.is_event else "scene"
        return self.embedding_kind

    def embedding_models(
        self, model: ModelSpec, task: TaskFolder, params: Mapping[str, Any]
    ) -> list[ModelSpec]:
        """The model specs (crops) whose embeddings a unit reads: the runner computes them before
        the units run, one model on the device at a time."""
        return [model]

    def fold_units(self, task: TaskFolder, params: Mapping[str, Any]) -> list[str]:
        """Test folds run as separate units (default: one per test split)."""
        return sorted(task.splits) if task.is_kfold else ["test"]

    @property
    def defaults(self) -> dict[str, Any]:
        """The parameters a suite leaves unset (a fresh dict each time)."""
        return self.Params().model_dump()

    def resolve_params(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """The defaults with a suite's ``overrides``, checked against :attr:`Params`: a new plain
        dict (``model_dump`` copies every container) in the order the parameters are declared,
        which unit keys hash."""
        try:
            params = self.Params.model_validate(dict(overrides or {}))
        except ValidationError as err:
            raise ValueError(f"protocol {self.name!r}: {validation_message(err)}") from None
        return params.model_dump()

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        raise NotImplementedError


def seed_everything(seed: int) -> None:
    """Seed the global generators too (code that does not take a generator uses them)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
