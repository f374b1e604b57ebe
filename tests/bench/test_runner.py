"""Runner, suite files, report and the ``bench`` / ``report`` commands on generated tasks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from atst_hear import cli
from atst_hear.bench import planning, runner
from atst_hear.bench.report import write_report
from atst_hear.bench.suite import SuiteError, load_suite

QUICK_MLP = {"grid_points": 2, "grid_overrides": {"max_epochs": [12], "hidden_dim": [32]}}


def write_suite(path: Path, tasks_dir: Path, **changes) -> Path:
    suite = {
        "name": "toy",
        "seeds": [0, 1],
        "tasks_dir": str(tasks_dir),
        "references": [str(path.parent / "reference.csv")],
        "models": {
            "logmel": {"module": "atst_hear.bench.baselines", "reference": "LogMel"},
            "broken": {"module": "atst_hear.bench.baselines", "options": {"n_mels": -1}},
        },
        "tasks": {"scene": {"reference": "Toy"}, "folds": {}},
        "protocols": [
            {"protocol": "hear-mlp", "params": QUICK_MLP},
            {"protocol": "paper-linear", "params": {"epochs": 8}, "models": ["logmel"]},
            {"protocol": "knn", "models": ["logmel"]},
        ],
    }
    suite.update(changes)
    path.write_text(yaml.safe_dump(suite))
    (path.parent / "reference.csv").write_text(
        "model,task,metric,value,plus_minus,unit,protocol,published_protocol,source,verified,note\n"
        "LogMel,Toy,top1_acc,50.0,1.5,percent,paper-linear,linear,a README,yes,\n"
    )
    return path


@pytest.fixture
def toy_suite(make_task, tmp_path):
    make_task("multiclass", name="scene")
    make_task("kfold", name="folds", n_folds=3)
    return write_suite(tmp_path / "suite.yaml", tmp_path / "tasks")


def scores(out: Path) -> dict[str, float]:
    frame = pd.read_csv(out / "scores.csv")
    return {
        f"{r.model}/{r.task}/{r.protocol}/{r.seed}/{r.fold}": r.value for r in frame.itertuples()
    }


def test_bench_end_to_end_with_failure_isolation(toy_suite, tmp_path):
    out = tmp_path / "out"
    code = cli.main(["bench", "--suite", str(toy_suite), "--out", str(out), "--quiet"])
    assert code == 1  # the broken model's units failed ...
    status = json.loads((out / "status.json").read_text())
    assert status["failed"] and all(unit.startswith("broken/") for unit in status["failed"])
    assert "n_mels must be a positive int" in next(iter(status["failed"].values()))
    # ... and every other unit finished: hear-mlp 2 seeds x 2 tasks, paper-linear 2 seeds x
    # (1 + 3 folds), knn 1 seed x (1 + 3 folds)
    frame = pd.read_csv(out / "scores.csv")
    assert set(frame.model) == {"logmel"}
    counts = frame.groupby("protocol").size().to_dict()
    assert counts == {"hear-mlp": 2 * (1 + 3), "paper-linear": 2 * (1 + 3), "knn": 1 + 3}
    assert set(frame[frame.protocol == "paper-linear"].valid_source) == {"valid", "train-slice"}
    assert frame.git_commit.notna().all() or frame.git_commit.isna().all()
    assert frame.task_checksum.str.len().eq(64).all() and (frame.toolkit_version == "0.1.0").all()
    result_file = next((out / "units").rglob("result.json"))
    result = json.loads(result_file.read_text())
    assert {"toolkit_version", "git_commit", "machine", "libraries"} <= set(result["provenance"])
    assert result["recipe"]["params"] and result["task"]["checksum"]
    summary = (out / "summary.md").read_text()
    assert "| logmel | scene | knn | top1_acc |" in summary
    # the published number stands beside the same protocol only, and the shortened recipe is named
    assert "| logmel | scene | paper-linear | top1_acc |" in summary and "50 ± 1.5 %" in summary
    assert summary.count("50 ± 1.5 %") == 1 and "epochs = 8 (published: 100)" in summary
    assert "## Failed units" in summary and "broken/scene/hear-mlp/seed-0/all" in summary
    assert "†" in summary  # k-fold paper-linear validates on a slice of train
    assert (out / "plots" / "task-scene.png").stat().st_size > 1000


def test_rerun_resumes_and_recomputes_nothing_finished(toy_suite, tmp_path, monkeypatch):
    args = [
        "bench",
        "--suite",
        str(toy_suite),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
        "--models",
        "logmel",
    ]
    assert cli.main(args) == 0
    first = scores(tmp_path / "out")
    ran = []
    original = runner.execute_unit
    monkeypatch.setattr(
        runner, "execute_unit", lambda unit, *a: ran.append(unit.id) or original(unit, *a)
    )
    victim = next((tmp_path / "out" / "units").rglob("knn/seed-0/fold01/result.json"))
    victim.unlink()
    assert cli.main(args) == 0
    assert ran == ["logmel/folds/knn/seed-0/fold01"]
    assert scores(tmp_path / "out") == first


class Killed(BaseException):
    """Stands in for kill -9: nothing in the runner may catch it."""


def test_interrupted_run_resumes_to_identical_scores(toy_suite, tmp_path, monkeypatch):
    clean = tmp_path / "clean"
    assert (
        cli.main(
            [
                "bench",
                "--suite",
                str(toy_suite),
                "--out",
                str(clean),
                "--quiet",
                "--models",
                "logmel",
            ]
        )
        == 0
    )
    out = tmp_path / "out"
    original = runner.execute_unit
    calls = []

    def dies_on_fourth_unit(unit, *args):
        calls.append(unit.id)
        if len(calls) == 4:
            raise Killed
        return original(unit, *args)

    monkeypatch.setattr(runner, "execute_unit", dies_on_fourth_unit)
    with pytest.raises(Killed):
        cli.main(
            ["bench", "--suite", str(toy_suite), "--out", str(out), "--quiet", "--models", "logmel"]
        )
    assert len(list((out / "units").rglob("result.json"))) == 3
    monkeypatch.setattr(runner, "execute_unit", original)
    assert (
        cli.main(
            ["bench", "--suite", str(toy_suite), "--out", str(out), "--quiet", "--models", "logmel"]
        )
        == 0
    )
    assert scores(out) == scores(clean)


def test_changed_recipe_is_recomputed(toy_suite, tmp_path):
    out = tmp_path / "out"
    base = [
        "bench",
        "--out",
        str(out),
        "--quiet",
        "--models",
        "logmel",
        "--protocols",
        "knn",
        "--tasks",
        "scene",
    ]
    assert cli.main(base + ["--suite", str(toy_suite)]) == 0
    suite = yaml.safe_load(toy_suite.read_text())
    suite["protocols"][2]["params"] = {"k": 3}
    toy_suite.write_text(yaml.safe_dump(suite))
    summary = runner.run(
        load_suite(toy_suite),
        out,
        planning.plan(load_suite(toy_suite), ["logmel"], ["scene"], ["knn"]),
        progress=False,
    )
    assert summary.done == ["logmel/scene/knn/seed-0/test"] and not summary.reused
    result = json.loads(next((out / "units").rglob("knn/seed-0/test/result.json")).read_text())
    assert result["recipe"]["params"] == {"k": 3}


def test_suite_errors_name_the_entry(toy_suite, tmp_path):
    suite = yaml.safe_load(toy_suite.read_text())
    bad = tmp_path / "bad.yaml"
    for change, message in [
        ({"protocols": [{"protocol": "linear"}]}, r"protocols\[0\]: unknown protocol 'linear'"),
        ({"protocols": [{"protocol": "knn", "tasks": ["nope"]}]}, r"unknown tasks \['nope'\]"),
        ({"protocols": [{"protocol": "knn", "params": {"kk": 1}}]}, r"unknown parameters \['kk'\]"),
        ({"models": {"m": {"modul": "x"}}}, r"models.m: unknown keys \['modul'\]"),
        ({"seeds": "zero"}, r"seeds must be a non-empty list of integers, got 'zero'"),
    ]:
        bad.write_text(yaml.safe_dump({**suite, **change}))
        with pytest.raises(SuiteError, match=message):
            load_suite(bad)
    bad.write_text(
        yaml.safe_dump(
            {
                **suite,
                "protocols": [{"protocol": "knn"}],
                "models": {
                    "atst": {"module": "atst_hear.bench.baselines", "checkpoint": "atst_frame"}
                },
            }
        )
    )
    with pytest.raises(FileNotFoundError, match="pass --checkpoint atst_frame=PATH"):
        planning.plan(load_suite(bad))
    weights = tmp_path / "frame.ckpt"
    weights.write_bytes(b"x")
    loaded = load_suite(bad, checkpoints={"atst_frame": str(weights)})
    assert loaded.models["atst"].spec.checkpoint == str(weights)
    with pytest.raises(FileNotFoundError, match=r"task '\w+': folder .*missing.* does not exist"):
        planning.plan(load_suite(toy_suite, tasks_dir=tmp_path / "missing"))


def test_cli_reports_user_errors(tmp_path, capsys):
    assert cli.main(["bench", "--suite", str(tmp_path / "none.yaml"), "--out", str(tmp_path)]) == 2
    assert "suite file" in capsys.readouterr().err
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "not a benchmark output folder" in capsys.readouterr().err


def test_sweep_writes_per_layer_curves(make_task, tmp_path):
    make_task("multiclass", name="scene")
    suite = write_suite(
        tmp_path / "suite.yaml",
        tmp_path / "tasks",
        seeds=[0],
        models={
            "logmel": {"module": "atst_hear.bench.baselines", "sweep": {"n_mels": [8, 16, 32]}}
        },
        tasks={"scene": {}},
        protocols=[{"protocol": "knn"}],
    )
    out = tmp_path / "out"
    assert cli.main(["bench", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    assert (out / "plots" / "layers-logmel-scene.png").is_file()
    frame = pd.read_csv(out / "scores.csv")
    assert sorted(frame.model) == ["logmel@n_mels=16", "logmel@n_mels=32", "logmel@n_mels=8"]
    written = write_report(out)  # the report can be re-run on its own
    assert written["summary"].read_text().count("| logmel@n_mels=") == 3


@pytest.mark.slow
def test_parallel_jobs_match_serial_scores(toy_suite, tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    common = ["bench", "--suite", str(toy_suite), "--quiet", "--models", "logmel", "--threads", "1"]
    assert cli.main(common + ["--out", str(serial)]) == 0
    assert cli.main(common + ["--out", str(parallel), "--jobs", "2"]) == 0
    assert scores(parallel) == scores(serial)


@pytest.mark.slow
def test_kill_9_then_rerun_ends_with_identical_scores(toy_suite, tmp_path):
    command = [
        sys.executable,
        "-m",
        "atst_hear.cli",
        "bench",
        "--suite",
        str(toy_suite),
        "--quiet",
        "--models",
        "logmel",
        "--threads",
        "1",
    ]
    assert (
        subprocess.run(command + ["--out", str(tmp_path / "clean")], capture_output=True).returncode
        == 0
    )
    out = tmp_path / "out"
    process = subprocess.Popen(
        command + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("result.json"))) < 3:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished_before = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    assert finished_before, "the run was killed before any unit finished"
    assert len(finished_before) < 16, "the run ended before the kill"
    assert subprocess.run(command + ["--out", str(out)], capture_output=True).returncode == 0
    for path, mtime in finished_before.items():
        assert path.stat().st_mtime_ns == mtime  # finished units were not recomputed
    assert scores(out) == scores(tmp_path / "clean")


def test_shipped_suites_and_references_load():
    from atst_hear.bench.report import load_references

    paper = {"paper-linear", "evar-linear", "finetune", "sed"}
    for name, protocols in [("paper", paper), ("hear", {"hear-mlp"})]:
        suite = load_suite(name)
        assert {p.protocol for p in suite.protocols} == protocols
        references = load_references(suite.references)
        tasks = {t.reference for t in suite.tasks.values()}
        assert tasks & set(references.task), name


def test_sed_units_get_psd_roc_plots(make_task, tmp_path):
    make_task("event", name="events", n_train=8, n_eval=4, weak_clips=4)
    suite = write_suite(
        tmp_path / "suite.yaml",
        tmp_path / "tasks",
        seeds=[0],
        tasks={"events": {}},
        models={"logmel": {"module": "atst_hear.bench.baselines"}},
        protocols=[
            {"protocol": "sed", "params": {"epochs": 3, "warmup_epochs": 1, "batch_size": 4}},
            {"protocol": "knn"},
        ],
    )
    out = tmp_path / "out"
    assert cli.main(["bench", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    assert (out / "plots" / "psd-roc-events.png").stat().st_size > 1000
    # the embedding stage covered the weakly labelled splits too
    weak = sorted(p.parent.name for p in (out / "embeddings").rglob("weak_*/done.json"))
    assert weak == ["weak_train.timestamp", "weak_valid.timestamp"]
    frame = pd.read_csv(out / "scores.csv")
    assert {"psds1", "psds1_sed_scores_eval", "intersection_f1"} <= set(frame.columns)
    status = json.loads((out / "status.json").read_text())
    assert status["skipped"] == [
        {"protocol": "knn", "task": "events", "reason": "k-NN runs on scene tasks only"}
    ]
