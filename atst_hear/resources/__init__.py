"""Data shipped inside the package: benchmark suites, pre-training recipes, published tables.

They are read through :mod:`importlib.resources`, so a wheel install finds them as a source
checkout does. ``suites/`` holds benchmark suites (``atst-hear bench --suite NAME``),
``recipes/`` the pre-training and distillation recipes, ``reference/`` the published numbers
the report puts beside ours.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KINDS = {"suites": ".yaml", "recipes": ".yaml", "reference": ".csv"}


def shipped(kind: str, name: str) -> Path:
    """The path of a shipped file, e.g. ``shipped("suites", "paper")``.

    Raises ``FileNotFoundError`` naming what exists when there is no such file.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown resource kind {kind!r}; expected one of {sorted(KINDS)}")
    path = Path(str(files(__name__) / kind / f"{name}{KINDS[kind]}"))
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped {kind[:-1] if kind.endswith('s') else kind} named {name!r}; "
            f"shipped: {', '.join(names(kind))}"
        )
    return path


def names(kind: str) -> list[str]:
    """The names of the shipped files of one kind."""
    suffix = KINDS[kind]
    folder = Path(str(files(__name__) / kind))
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))
