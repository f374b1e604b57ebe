"""Bad suites, concurrent runs on one output folder, and unwritable or full output (issue 14)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atst_hear import cli, fileio
from atst_hear.bench import runner
from atst_hear.bench.outlock import OWNER_NAME, OutputInUseError, exclusive_output
from atst_hear.bench.suite import SuiteError, load_suite


def _suite(path: Path, tasks_dir: Path, models: dict, protocols=None) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "seeds": [0],
                "tasks_dir": str(tasks_dir),
                "models": models,
                "tasks": {"scene": {}},
                "protocols": protocols or [{"protocol": "knn"}],
            }
        )
    )
    return path


@pytest.mark.parametrize(
    ("models", "protocols", "message"),
    [
        (
            {"m": {"module": "atst_hear.hear.nonexistent"}},
            None,
            r"models\.m: cannot import HEAR module 'atst_hear\.hear\.nonexistent'",
        ),
        (
            {"m": {"module": "json"}},
            None,
            r"models\.m: json is not a HEAR module: it lacks \['load_model'",
        ),
        (
            {"m": {"module": "atst_hear.hear.frame", "options": {"trust_checkpoint": "false"}}},
            None,
            r"models\.m: .*trust_checkpoint must be True or False \(a bool\), got 'false'",
        ),
        (
            {"m": {"module": "atst_hear.hear.frame", "options": {"max_batch_tokens": "10000"}}},
            None,
            r"max_batch_tokens must be an integer, got '10000' \(str\)",
        ),
        (
            {"m": {"module": "atst_hear.hear.clip", "options": {"nblocks": 2}}},
            None,
            r"atst_hear\.hear\.clip\.load_model: unknown options \['nblocks'\]",
        ),
        (
            {"m": {"module": "atst_hear.bench.baselines", "options": {"mels": 32}}},
            None,
            r"models\.m: options \{'mels': 32\} rejected: .*'mels'",
        ),
        (
            {"m": {"module": "atst_hear.hear.frame", "sweep": {"n_blocks": [1, 2.5]}}},
            None,
            r"models\.m: sweep\.n_blocks: .*n_blocks must be an integer, got 2\.5",
        ),
        (
            {"m": {"module": "atst_hear.hear.frame", "options": {"random_init": "tiny"}}},
            [{"protocol": "knn", "embedding_options": {"n_blocks": "2"}}],
            r"protocols\[0\]: model m: .*n_blocks must be an integer, got '2'",
        ),
    ],
    ids=[
        "missing-module",
        "not-hear",
        "trust-string",
        "int-string",
        "unknown-option",
        "baseline-option",
        "sweep-value",
        "embedding-options",
    ],
)
def test_suite_models_and_options_are_checked_when_read(tmp_path, models, protocols, message):
    path = _suite(tmp_path / "suite.yaml", tmp_path / "tasks", models, protocols)
    with pytest.raises(SuiteError, match=message):
        load_suite(path)


def test_shipped_suites_pass_the_read_time_checks():
    for name in ("demo", "hear", "paper"):
        assert load_suite(name).models


# --- one run per output folder --------------------------------------------------------------
HOLD_LOCK = """
import sys, time
from atst_hear.bench.outlock import exclusive_output
with exclusive_output(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def _hold_lock(out: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_bench_on_one_out_is_refused_and_kill_9_frees_the_lock(make_task, tmp_path, capsys):
    make_task("multiclass", name="scene")
    suite = _suite(
        tmp_path / "suite.yaml",
        tmp_path / "tasks",
        {"logmel": {"module": "atst_hear.bench.baselines"}},
    )
    out = tmp_path / "out"
    holder = _hold_lock(out)
    try:
        owner = json.loads((out / OWNER_NAME).read_text())
        assert owner["pid"] == holder.pid
        with pytest.raises(OutputInUseError, match=rf"{out} is in use .*pid {holder.pid}"):
            runner.run(load_suite(suite), out, progress=False)
        code = cli.main(["bench", "--suite", str(suite), "--out", str(out), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and f"pid {holder.pid}" in err and "another --out" in err
        assert not (out / "units").exists()  # the refused run wrote nothing
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock with the process
        holder.wait()
    summary = runner.run(load_suite(suite), out, progress=False)
    assert summary.ok and summary.done
    assert not (out / OWNER_NAME).exists()


def test_lock_is_reentrant_across_sequential_runs(tmp_path):
    for _ in range(2):
        with exclusive_output(tmp_path / "out") as out:
            assert (out / OWNER_NAME).is_file()
    assert not (tmp_path / "out" / OWNER_NAME).exists()


# --- unwritable and full output ---------------------------------------------------------------
def test_out_below_a_file_fails_cleanly(make_task, tmp_path, capsys):
    make_task("multiclass", name="scene")
    suite = _suite(
        tmp_path / "suite.yaml",
        tmp_path / "tasks",
        {"logmel": {"module": "atst_hear.bench.baselines"}},
    )
    (tmp_path / "file").write_text("x")
    code = cli.main(["bench", "--suite", str(suite), "--out", str(tmp_path / "file" / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{tmp_path / 'file' / 'out'}: Not a directory" in err


def test_full_disk_leaves_nothing_half_written(make_task, tmp_path, monkeypatch):
    make_task("multiclass", name="scene")
    suite = load_suite(
        _suite(
            tmp_path / "suite.yaml",
            tmp_path / "tasks",
            {"logmel": {"module": "atst_hear.bench.baselines"}},
        )
    )
    out = tmp_path / "out"
    clean = runner.run(suite, tmp_path / "clean", progress=False)
    assert clean.done
    real_write = Path.write_text

    def disk_fills_up(self, text, *args, **kwargs):
        if self.name.startswith(".result.json."):
            real_write(self, text[: len(text) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, text, *args, **kwargs)

    monkeypatch.setattr(fileio.Path, "write_text", disk_fills_up)
    with pytest.raises(OSError, match="No space left on device"):
        runner.run(suite, out, progress=False)
    monkeypatch.undo()
    assert not list(out.rglob("result.json")) and not list(out.rglob(".*.tmp"))
    assert not (out / OWNER_NAME).exists()  # the lock was released on the way out
    again = runner.run(suite, out, progress=False)
    assert not again.reused and sorted(again.done) == sorted(clean.done)
    for unit in (tmp_path / "clean").rglob("result.json"):
        mine = out / unit.relative_to(tmp_path / "clean")
        assert json.loads(mine.read_text())["folds"] == json.loads(unit.read_text())["folds"]


def test_atomic_write_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    fileio.write_json_atomic(target, {"done": 1})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    with pytest.raises(OSError):
        fileio.write_json_atomic(target, {"done": 2})
    assert json.loads(target.read_text()) == {"done": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary left
