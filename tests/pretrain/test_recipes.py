"""Pre-training and distillation recipes through their schema (``recipe_dataclass``)."""

from __future__ import annotations

import dataclasses
import re

import pytest
from pydantic import ValidationError

from atst_hear.pretrain.distill import DistillRecipe
from atst_hear.pretrain.recipes import (
    PretrainRecipe,
    RecipeError,
    load_recipe,
    parse_overrides,
    read_recipe,
    recipe_yaml,
)
from atst_hear.resources import shipped
from atst_hear.yamlio import load_yaml

SHIPPED = [(flavour, arch) for flavour in ("frame", "clip") for arch in ("tiny", "small", "base")]
_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "NumberPair": tuple}


def _assert_matches_yaml(recipe, stated: dict) -> None:
    """Every field as the YAML states it (or its default), with the declared type."""
    values = recipe.to_dict()  # pairs as YAML lists
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if f.name in stated:
            assert values[f.name] == stated[f.name], f.name
        else:
            assert value == f.default, f.name
        declared = str(f.type).removesuffix(" | None")
        assert (value is None and str(f.type).endswith("| None")) or (
            type(value) is _TYPES[declared]
        ), f"{f.name}: {value!r} is no {f.type}"


@pytest.mark.parametrize(("flavour", "arch"), SHIPPED)
def test_shipped_pretraining_recipes_load_to_their_yaml_values(flavour, arch):
    recipe = load_recipe(flavour=flavour, arch=arch)
    _assert_matches_yaml(recipe, load_yaml(shipped("recipes", f"{flavour}-{arch}").read_text()))
    assert PretrainRecipe.from_dict(load_yaml(recipe_yaml(recipe))) == recipe


def test_the_shipped_distillation_recipe_loads_to_its_yaml_values():
    path = shipped("recipes", "c2f")
    recipe = read_recipe(DistillRecipe, path)
    _assert_matches_yaml(recipe, load_yaml(path.read_text()))
    assert DistillRecipe.from_dict(load_yaml(recipe_yaml(recipe))) == recipe
    teacher = recipe.teacher_stage()
    assert (teacher.lambda_d, teacher.epochs) == (0.0, recipe.epochs)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("max_steps=ten", r"max_steps must be an integer, got 'ten' \(str\)"),
        ("max_steps=true", r"max_steps must be an integer, got True \(bool\)"),
        ("max_steps=100.0", r"max_steps must be an integer, got 100\.0 \(float\)"),
        ("learning_rate='1e-3'", r"learning_rate must be a number, got '1e-3' \(str\)"),
        ("freq_scale=0.6", r"freq_scale must be a pair of numbers \[a, b\], got 0\.6 \(float\)"),
        ("freq_scale=[0.6, fast]", r"freq_scale\[1\] must be a number, got 'fast'"),
        ("teacher_mode=1", r"teacher_mode must be a string, got 1 \(int\)"),
        ("emma=0.9", r"unknown recipe fields \['emma'\]; known: \['adam_betas', "),
        ("ema=1.5", r"ema must be in \[0, 1\], got 1\.5"),
    ],
)
def test_bad_overrides_name_the_file_the_field_and_what_was_expected(item, message):
    path = shipped("recipes", "frame-tiny")
    with pytest.raises(RecipeError, match=rf"{re.escape(str(path))}: .*{message}"):
        load_recipe(flavour="frame", arch="tiny", overrides=parse_overrides([item]))


def test_overrides_convert_nothing_but_integers_to_floats():
    overrides = parse_overrides(["learning_rate=1e-3", "ema=1", "adam_betas=[0.9, 1]"])
    recipe = load_recipe(flavour="frame", arch="tiny", overrides=overrides)
    assert recipe.learning_rate == 1e-3 and recipe.ema == 1.0 and type(recipe.ema) is float
    assert recipe.adam_betas == (0.9, 1.0) and type(recipe.adam_betas[1]) is float
    distill = read_recipe(DistillRecipe, shipped("recipes", "c2f"), {"teacher_epochs": 8})
    assert distill.teacher_stage().epochs == 8
    short = dataclasses.replace(distill, teacher_epochs=3)  # shorter than the warm-up
    with pytest.raises(RecipeError, match=r"the teacher stage: warmup_epochs must be in \[0, "):
        short.teacher_stage()
    with pytest.raises(RecipeError, match=r"teacher_epochs must be an integer, got 2\.5"):
        read_recipe(DistillRecipe, shipped("recipes", "c2f"), {"teacher_epochs": 2.5})


def test_a_recipe_without_flavour_or_of_the_wrong_shape_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"mine: 'flavour' is required"):
        PretrainRecipe.from_dict({"arch": "tiny"}, source="mine")
    listed = tmp_path / "listed.yaml"
    listed.write_text("- flavour: frame\n")
    with pytest.raises(RecipeError, match=r"listed\.yaml: expected a mapping of recipe fields"):
        read_recipe(PretrainRecipe, listed)


def test_recipes_are_checked_however_they_are_built():
    recipe = PretrainRecipe(flavour="frame", arch="tiny")
    with pytest.raises(ValidationError, match="batch_size"):
        PretrainRecipe(flavour="frame", batch_size="8")
    with pytest.raises(ValidationError, match="max_steps"):
        dataclasses.replace(recipe, max_steps=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.max_steps = 5


@pytest.mark.parametrize("text", ["1e3", "4e-4", "12", "true", "null", "0.5"])
def test_a_saved_recipe_reads_back_strings_that_look_like_numbers_as_strings(text):
    # recipe.yaml is what --resume reads: a description such as "1e3" must stay a string
    recipe = load_recipe(flavour="frame", arch="tiny", overrides={"description": text})
    assert recipe.description == text
    assert PretrainRecipe.from_dict(load_yaml(recipe_yaml(recipe))) == recipe
