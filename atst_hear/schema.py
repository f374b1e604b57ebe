"""Declared schemas of what users write: suites, pre-training recipes and protocol parameters.

One pydantic v2 configuration for all of them: unknown keys are errors (a typo must not fall
back to a default), and types are strict: YAML ``"false"``, ``"1e-3"`` or ``true`` never stand
in for a bool, a number or an integer. The one conversion allowed is an integer where a number
is expected (``1`` -> ``1.0``). :func:`validation_message` turns pydantic's errors into one line
naming each field, the value given and what was expected; callers prefix the file or protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from .options import describe_value

STRICT = ConfigDict(extra="forbid", strict=True)

# pydantic error types -> what the field expected
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "True or False (a bool)",
    "bool_parsing": "True or False (a bool)",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
}


def expected(description: str) -> PydanticCustomError:
    """The error a validator raises for a value that is not ``description`` (e.g. "a pair of
    numbers [a, b]"); :func:`validation_message` words it like the built-in type errors."""
    return PydanticCustomError("expected", "expected {expected}", {"expected": description})


def unknown_keys(given: Iterable[Any], known: Iterable[str], noun: str = "keys") -> str | None:
    """``"unknown <noun> [...]; known: [...]"`` if ``given`` holds names outside ``known``."""
    known = list(known)
    unknown = sorted(str(key) for key in given if key not in known)
    if not unknown:
        return None
    return f"unknown {noun} {unknown}; known: {sorted(known)}"


class Schema(BaseModel):
    """A mapping of declared keys and types (see the module docstring)."""

    model_config = STRICT
    key_noun: ClassVar[str] = "keys"  # how an unknown-key error names the keys

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        # one error listing every unknown key and the known ones, not one per key
        if isinstance(data, Mapping):
            problem = unknown_keys(data, cls.model_fields, cls.key_noun)
            if problem:
                raise ValueError(problem)
        return data


def _as_pair(value: Any) -> Any:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise expected("a pair of numbers [a, b]")
    return tuple(value)


def _empty_if_none(value: Any) -> Any:
    return {} if value is None else value


# a YAML list of two numbers, kept as a tuple
NumberPair = Annotated[tuple[float, float], BeforeValidator(_as_pair)]
# a mapping that may be left empty in YAML (``options:`` with nothing after it)
OptionalMapping = Annotated[dict[str, Any], BeforeValidator(_empty_if_none)]


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text


_BOUNDS = {
    "greater_than": (">", "gt"),
    "greater_than_equal": (">=", "ge"),
    "less_than": ("<", "lt"),
    "less_than_equal": ("<=", "le"),
}


def _describe_error(error: Mapping[str, Any]) -> str:
    kind, loc = error["type"], tuple(error["loc"])
    path = _path(loc)
    given = describe_value(error.get("input"))
    wanted = error.get("ctx", {}).get("expected") if kind == "expected" else _EXPECTED.get(kind)
    if wanted is not None:
        return (
            f"{path} must be {wanted}, got {given}" if path else f"expected {wanted}, got {given}"
        )
    if kind == "missing":
        parent = _path(loc[:-1])
        return f"{parent + ': ' if parent else ''}{str(loc[-1])!r} is required"
    if kind == "too_short":
        count = error["ctx"]["min_length"]
        return f"{path or 'value'} must hold at least {count} item{'s' * (count > 1)}, got {given}"
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        return f"{path or 'value'} must be {symbol} {error['ctx'][key]}, got {given}"
    if kind in ("value_error", "assertion_error"):
        message = str(error["ctx"]["error"])
    else:
        message = f"{error['msg']}, got {given}"
    return f"{path}: {message}" if path else message


def validation_message(err: ValidationError) -> str:
    """Every problem of ``err`` on one line, e.g. ``epochs must be an integer, got 'ten' (str)``."""
    return "; ".join(_describe_error(error) for error in err.errors())
