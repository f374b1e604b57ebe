"""Pre-training recipes: every hyper-parameter of a run, read from YAML with command-line overrides.

The official recipes (``docs/pretraining.md``) ship as package data,
``atst_hear/resources/recipes/<flavour>-<arch>.yaml``. ``learning_rate`` is the value of the
official shell scripts; the optimiser uses ``learning_rate · devices · batch_size / 256`` (the
official batch scaling), so a recipe keeps its meaning on any number of GPUs. Every field is
declared with its type (:func:`recipe_dataclass`, ``atst_hear/schema.py``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic.dataclasses import dataclass

from ..models.encoder import ARCHS, FLAVOURS, ATSTConfig
from ..resources import shipped
from ..schema import STRICT, NumberPair, unknown_keys, validation_message
from ..yamlio import dump_yaml, load_yaml, parse_key_values

TEACHER_MODES = ("train", "eval")
_Recipe = TypeVar("_Recipe")


class RecipeError(ValueError):
    """A recipe file or override that cannot be used; the message names it."""


def recipe_dataclass(cls: type[_Recipe]) -> type[_Recipe]:
    """A frozen recipe class whose fields are checked on construction against their declared
    types (``schema.STRICT``: a quoted ``"false"`` or ``"4e-4"`` is refused, an integer where a
    float is expected is converted); value ranges are checked by its ``__post_init__``."""
    return dataclass(frozen=True, config=STRICT)(cls)


class RecipeFields:
    """Reading, writing and comparing a recipe class made with :func:`recipe_dataclass`."""

    # fields that change how a run is executed, not what it computes: a resume may alter them
    RUN_FIELDS: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "recipe"):
        """The recipe of ``values``; :class:`RecipeError` names ``source`` and each bad field."""
        known = [f.name for f in dataclasses.fields(cls)]
        problem = unknown_keys(values, known, "recipe fields")
        if problem:
            raise RecipeError(f"{source}: {problem}")
        try:
            return cls(**values)
        except ValidationError as err:
            raise RecipeError(f"{source}: {validation_message(err)}") from None

    def replace(self, source: str = "recipe", **changes: Any):
        """A copy with ``changes``, checked as :meth:`from_dict` checks (errors name ``source``)."""
        return self.from_dict({**self.to_dict(), **changes}, source)

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def compute_differences(self, other: RecipeFields) -> list[str]:
        """Fields (outside :attr:`RUN_FIELDS`) whose values differ, as ``name: a -> b``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [
            f"{name}: {mine[name]!r} -> {theirs[name]!r}"
            for name in mine
            if name not in self.RUN_FIELDS and mine[name] != theirs[name]
        ]


@recipe_dataclass
class PretrainRecipe(RecipeFields):
    flavour: str
    arch: str = "small"
    # optimisation
    batch_size: int = 256  # per device
    learning_rate: float = 5e-4  # before batch scaling
    lr_reference_batch: int = 256
    warmup_steps: int = 1300
    max_steps: int = 39000
    ema: float = 0.99  # teacher momentum at step 0; a cosine takes it to 1
    weight_decay_start: float = 0.04
    weight_decay_end: float = 0.4
    adam_betas: NumberPair = (0.9, 0.999)
    adam_eps: float = 1e-6
    # model
    drop_path: float = 0.1
    head_hidden: int = 4096  # projector and predictor hidden width
    head_out: int = 256
    # "train" as the official code (DropPath and BatchNorm batch statistics in the teacher)
    teacher_mode: str = "train"
    # views: the crop (Frame) or anchor crop (Clip, the model's train_len), in seconds
    crop_seconds: float = 10.0
    positive_seconds: float = 6.0  # Clip only: the second crop (fixed 6 s officially)
    mixup_ratio: float = 0.4
    mixup_memory: int = 2000
    freq_scale: NumberPair = (0.6, 1.5)
    time_scale: NumberPair = (0.6, 1.5)  # Clip only (Frame keeps time)
    virtual_time: float = 1.5  # Clip only
    mask_prob: float = 0.65  # Frame only
    mask_span: int = 5  # Frame only
    # run
    seed: int = 0
    num_workers: int = 4
    checkpoint_every: int = 1000  # steps
    log_every: int = 50  # steps
    description: str = ""
    RUN_FIELDS = ("num_workers", "checkpoint_every", "log_every", "description")

    def __post_init__(self) -> None:
        problems = []
        if self.flavour not in FLAVOURS:
            problems.append(f"flavour must be one of {FLAVOURS}, got {self.flavour!r}")
        if self.arch not in ARCHS:
            problems.append(f"arch must be one of {sorted(ARCHS)}, got {self.arch!r}")
        if self.teacher_mode not in TEACHER_MODES:
            problems.append(
                f"teacher_mode must be one of {TEACHER_MODES}, got {self.teacher_mode!r}"
            )
        for name in ("batch_size", "max_steps", "head_hidden", "head_out", "checkpoint_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_steps < self.max_steps:
            problems.append(
                f"warmup_steps must be in [0, max_steps={self.max_steps}), got {self.warmup_steps}"
            )
        if not 0.0 <= self.ema <= 1.0:
            problems.append(f"ema must be in [0, 1], got {self.ema}")
        if self.crop_seconds <= 0 or self.positive_seconds <= 0:
            problems.append("crop_seconds and positive_seconds must be positive")
        if max(self.crop_seconds, self.positive_seconds) > 10.0 + 1e-9:
            problems.append(
                "crops longer than 10 s exceed the 250-token positional table "
                f"(crop_seconds={self.crop_seconds}, positive_seconds={self.positive_seconds})"
            )
        if problems:
            raise RecipeError("; ".join(problems))

    def encoder_config(self) -> ATSTConfig:
        return ATSTConfig.preset(
            self.flavour, self.arch, drop_path=self.drop_path, train_len=float(self.crop_seconds)
        )

    def peak_learning_rate(self, world_size: int) -> float:
        """The official batch scaling: ``learning_rate · devices · batch_size / 256``."""
        return self.learning_rate * world_size * self.batch_size / self.lr_reference_batch

    def crop_lengths(self) -> tuple[float, ...]:
        """Seconds of each waveform crop a data worker cuts from one clip."""
        if self.flavour == "frame":
            return (self.crop_seconds,)
        return (self.crop_seconds, self.positive_seconds)


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: recipe file does not exist")
    try:
        values = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise RecipeError(
            f"{path}: expected a mapping of recipe fields, got {type(values).__name__}"
        )
    return values


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["key=value", ...]`` with YAML values (``batch_size=64``, ``freq_scale=[0.6,1.5]``)."""
    return parse_key_values(overrides, "--set", RecipeError)


def recipe_path(flavour: str, arch: str) -> Path:
    """The shipped recipe of a flavour and size (package data, ``atst_hear/resources/recipes``)."""
    try:
        return shipped("recipes", f"{flavour}-{arch}")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}; pass --recipe FILE") from None


def load_recipe(
    path: str | os.PathLike | None = None,
    flavour: str | None = None,
    arch: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> PretrainRecipe:
    """A recipe file (or the shipped one for ``flavour``/``arch``) with ``overrides`` applied."""
    if path is None:
        if flavour is None or arch is None:
            raise RecipeError("give a recipe file, or both flavour and arch")
        path = recipe_path(flavour, arch)
    values = read_yaml_mapping(path)
    for name, given in (("flavour", flavour), ("arch", arch)):
        if given is not None and values.get(name, given) != given:
            raise RecipeError(f"{path}: recipe is for {name} {values[name]!r}, not {given!r}")
        if given is not None:
            values[name] = given
    values.update(overrides or {})
    return PretrainRecipe.from_dict(values, str(path))


def read_recipe(cls: type, path: str | os.PathLike, overrides: dict[str, Any] | None = None):
    """Any recipe class from a YAML file, with ``overrides`` applied."""
    values = read_yaml_mapping(path)
    values.update(overrides or {})
    return cls.from_dict(values, str(path))


def recipe_yaml(recipe: RecipeFields) -> str:
    return dump_yaml(recipe.to_dict())
