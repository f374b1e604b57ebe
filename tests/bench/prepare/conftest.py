"""Fixtures: a fresh miniature replica of each raw dataset for every test."""

from __future__ import annotations

from pathlib import Path

import pytest
from prepare_replicas import (
    GTZAN_FOLD_STEMS,
    build_desed,
    build_esc50,
    build_fsd50k,
    build_gtzan,
    build_nsynth,
    build_spcv2,
    build_us8k,
    build_voxceleb1,
)


@pytest.fixture
def esc50_raw(tmp_path: Path) -> Path:
    return build_esc50(tmp_path / "raw")


@pytest.fixture
def us8k_raw(tmp_path: Path) -> Path:
    return build_us8k(tmp_path / "raw")


@pytest.fixture
def spcv2_raw(tmp_path: Path) -> Path:
    return build_spcv2(tmp_path / "raw")


@pytest.fixture
def nsynth_raw(tmp_path: Path) -> Path:
    return build_nsynth(tmp_path / "raw")


@pytest.fixture
def fsd50k_raw(tmp_path: Path) -> Path:
    return build_fsd50k(tmp_path / "raw")


@pytest.fixture
def voxceleb1_raw(tmp_path: Path) -> Path:
    return build_voxceleb1(tmp_path / "raw")


@pytest.fixture
def gtzan_raw(tmp_path: Path) -> Path:
    return build_gtzan(tmp_path / "raw", GTZAN_FOLD_STEMS)


@pytest.fixture
def desed_raw(tmp_path: Path) -> Path:
    return build_desed(tmp_path / "raw")
