"""benchmarks/demo_baseline.py runs end to end on a reduced suite and prints a scored row per task."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "demo_baseline.py"


@pytest.fixture(scope="module")
def baseline():
    spec = importlib.util.spec_from_file_location("demo_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baseline_scores_scene_and_event_tasks(baseline, suite, capsys):
    names = ["demo_pitch", "demo_tags", "demo_events"]
    assert baseline.main([str(suite), "--tasks", *names]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| demo_")]
    assert [row.split(" | ")[0][2:] for row in rows] == names
    primaries = [re.search(r"\| (\w+) (\d\.\d{3})", row).groups() for row in rows]
    assert [name for name, _ in primaries] == ["pitch_acc", "mAP", "event_onset_200ms_fms"]
    assert all(0.0 <= float(value) <= 1.0 for _, value in primaries)
    assert "chroma_acc" in rows[0] and "psds1" in rows[2]


def test_baseline_refuses_tasks_the_suite_lacks(baseline, suite):
    with pytest.raises(SystemExit):
        baseline.main([str(suite), "--tasks", "demo_nope"])
