"""A reduced demo suite, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from atst_hear.bench.demo.suite import generate_suite

SCALE = 0.1


@pytest.fixture(scope="session")
def scale() -> float:
    """The reduced scale of the session's suite (and of other suites tests compare with it)."""
    return SCALE


@pytest.fixture(scope="session")
def suite(tmp_path_factory, scale) -> Path:
    """Every demo task at ``scale``, seed 0."""
    out = tmp_path_factory.mktemp("demo") / "tasks"
    generate_suite(out, seed=0, scale=scale, progress=False)
    return out
