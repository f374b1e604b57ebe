"""Shared test fixtures: paths into ../shared (read in place, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures" / "official"


@pytest.fixture(scope="session")
def official_fixtures() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"official fixtures not found at {FIXTURES} (../shared beside the checkout)")
    return FIXTURES
