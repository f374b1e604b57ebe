"""`make benchmark`'s path end to end through the CLI, on a reduced demo (one seed, two tasks)."""

from __future__ import annotations

import csv
import json

import pytest

from atst_hear.cli import main
from atst_hear.resources import shipped
from atst_hear.tasks.validation import validate_task_folder

SUITE = shipped("suites", "demo")


@pytest.mark.slow
def test_demo_benchmark_runs_end_to_end(tmp_path, capsys):
    tasks, out = tmp_path / "tasks", tmp_path / "run"
    assert (
        main(["demo-tasks", str(tasks), "--scale", "0.5", "--tasks", "demo_words", "demo_events"])
        == 0
    )
    for task in ("demo_words", "demo_events"):
        assert not [p for p in validate_task_folder(tasks / task) if p.severity == "error"]
    args = [
        "bench",
        "--suite",
        str(SUITE),
        "--tasks-dir",
        str(tasks),
        "--out",
        str(out),
        "--tasks",
        "demo_words,demo_events",
        "--seeds",
        "0",
        "--quiet",
        "--models",
        "tiny-frame-random,tiny-clip-random,logmel",
    ]
    assert main(args) == 0

    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    protocols = {(r["model"], r["task"], r["protocol"]) for r in rows}
    for model in ("tiny-frame-random", "tiny-clip-random", "logmel"):
        assert {(model, "demo_words", p) for p in ("paper-linear", "hear-mlp", "knn")} <= protocols
        assert {(model, "demo_events", p) for p in ("hear-mlp", "sed")} <= protocols
    summary = (out / "summary.md").read_text()
    assert "measures the pipeline, not the models" in summary
    assert (out / "plots" / "task-demo_words.png").is_file()
    # the sed units store PSD-ROC curves; the figure is drawn only when one of them detects
    curve_files = list((out / "units").rglob("psd_roc.json"))
    assert curve_files
    detects = any(
        max(curve["etpr"], default=0) > 0
        for path in curve_files
        for curve in json.loads(path.read_text()).values()
    )
    assert (out / "plots" / "psd-roc-demo_events.png").is_file() == detects

    # a second invocation resumes: nothing is recomputed
    capsys.readouterr()
    assert main(args) == 0
    assert any(line.startswith("0 units run") for line in capsys.readouterr().out.splitlines())
