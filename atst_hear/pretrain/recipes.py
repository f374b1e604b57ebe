"""Pre-training recipes: every hyper-parameter of a run, read from YAML with command-line overrides.

The official recipes (``atst-reference.md`` §4.2, §4.3) ship as package data,
``atst_hear/resources/recipes/<flavour>-<arch>.yaml``. ``learning_rate`` is the value of the official shell scripts; the optimiser uses
``learning_rate · devices · batch_size / 256`` (the official batch scaling), so a recipe keeps
its meaning on any number of GPUs.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..models.encoder import ARCHS, FLAVOURS, ATSTConfig
from ..options import require_bool
from ..resources import shipped
from ..yamlio import load_yaml, parse_key_values

TEACHER_MODES = ("train", "eval")


class RecipeError(ValueError):
    """A recipe file or override that cannot be used; the message names it."""


def _typed(value: Any, annotation: str, name: str) -> Any:
    """``value`` checked against a recipe field's annotation: a quoted YAML ``"false"`` is
    truthy and ``"4e-4"`` is no number, so nothing is converted except an integer where a
    float is expected."""
    if annotation.endswith(" | None"):
        if value is None:
            return None
        annotation = annotation[: -len(" | None")]
    if annotation == "bool":
        return require_bool(value, name)
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
        return value
    if annotation == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RecipeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if annotation == "str":
        if not isinstance(value, str):
            raise RecipeError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
        return value
    if annotation == "tuple[float, float]":
        if not isinstance(value, tuple) or len(value) != 2:
            raise RecipeError(f"{name} must be a pair of numbers [a, b], got {value!r}")
        return tuple(_typed(v, "float", name) for v in value)
    raise TypeError(f"{name}: recipe field type {annotation} has no check")


class RecipeFields:
    """Reading, writing and comparing a frozen recipe dataclass."""

    # fields that change how a run is executed, not what it computes: a resume may alter them
    RUN_FIELDS: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "recipe"):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown recipe fields {unknown}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        for f in dataclasses.fields(cls):
            if f.name in values:
                values[f.name] = _typed(values[f.name], str(f.type), f"{source}: {f.name}")
        try:
            return cls(**values)
        except (TypeError, RecipeError) as err:
            raise RecipeError(f"{source}: {err}") from None

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


@dataclass(frozen=True)
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
    adam_betas: tuple[float, float] = (0.9, 0.999)
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
    freq_scale: tuple[float, float] = (0.6, 1.5)
    time_scale: tuple[float, float] = (0.6, 1.5)  # Clip only (Frame keeps time)
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
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)
