"""Strict checks for user-given options (HEAR ``load_model`` options, suite YAML, JSON).

Options arrive from JSON (``--model-options``), YAML and Python alike, so a value may be a string
where a bool or an integer was meant. Nothing here converts: ``"false"`` is truthy and ``2.7``
truncates silently, so every check accepts only the intended type and names the option, the
value and what was expected otherwise.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


class OptionError(TypeError, ValueError):
    """An option of the wrong type or value; a ``ValueError`` too, so CLIs report it plainly."""


def describe_value(value: Any) -> str:
    """``value`` and its type, as error messages show what was given: ``'10' (str)``."""
    return f"{value!r} ({type(value).__name__})"


def require_bool(value: Any, name: str) -> bool:
    """``value`` if it is a real ``bool``: a string such as ``"false"`` must never switch a
    safety check off."""
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be True or False (a bool), got {describe_value(value)}")
    return value


def require_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool, a float or a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionError(f"{name} must be an integer, got {describe_value(value)}")
    if minimum is not None and value < minimum:
        raise OptionError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def require_number(
    value: Any,
    name: str,
    *,
    at_least: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool or string) within the
    bounds given: ``>= at_least``, ``> above``, ``< below``."""
    bounds = [
        f"{symbol} {bound:g}"
        for symbol, bound in ((">=", at_least), (">", above), ("<", below))
        if bound is not None
    ]
    wanted = "a finite number" + (f" {', '.join(bounds)}" if bounds else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"{name} must be {wanted}, got {describe_value(value)}")
    inside = math.isfinite(value) and not (
        (at_least is not None and value < at_least)
        or (above is not None and value <= above)
        or (below is not None and value >= below)
    )
    if not inside:
        raise OptionError(f"{name} must be {wanted}, got {value!r}")
    return float(value)


def require_positive(value: Any, name: str) -> float:
    """``value`` as a ``float`` if it is a finite positive real number (not a bool or string)."""
    return require_number(value, name, above=0.0)


def require_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise OptionError(f"{name} must be one of {tuple(choices)}, got {describe_value(value)}")
    return value
