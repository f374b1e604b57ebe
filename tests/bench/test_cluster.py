"""Many processes on one output folder: ``--shard I/N``, the per-unit and per-entry locks, and
the submitit job array (``--launcher``), on generated tasks with the log-mel baseline."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from atst_hear import cli
from atst_hear.bench import planning, runner
from atst_hear.bench.api import run_benchmark
from atst_hear.bench.cache import EmbeddingCache, ModelSpec
from atst_hear.bench.launch import LaunchOptions
from atst_hear.bench.outlock import exclusive_output
from atst_hear.bench.planning import Shard
from atst_hear.bench.suite import load_suite
from atst_hear.tasks.folder import TaskFolder

LOGMEL = ModelSpec("logmel", "atst_hear.bench.baselines")
QUICK_MLP = {"grid_points": 1, "grid_overrides": {"max_epochs": [6], "hidden_dim": [16]}}


@pytest.fixture
def small_suite(make_task, tmp_path) -> Path:
    make_task("multiclass", name="scene")
    make_task("kfold", name="folds", n_folds=3)
    suite = {
        "name": "toy",
        "seeds": [0],
        "tasks_dir": str(tmp_path / "tasks"),
        "models": {"logmel": {"module": "atst_hear.bench.baselines"}},
        "tasks": {"scene": {}, "folds": {}},
        "protocols": [{"protocol": "hear-mlp", "params": QUICK_MLP}, {"protocol": "knn"}],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def scores(out: Path) -> dict[str, float]:
    frame = pd.read_csv(out / "scores.csv")
    return {
        f"{r.model}/{r.task}/{r.protocol}/{r.seed}/{r.fold}/{r.metric}": r.value
        for r in frame.itertuples()
    }


def test_shard_parsing_and_partition(small_suite):
    assert Shard.parse("1/3") == Shard(1, 3) and Shard(1, 3).label == "1-of-3"
    for bad in ("3/3", "-1/2", "a/2", "2", "1/0"):
        with pytest.raises(ValueError, match="0 <= I < N"):
            Shard.parse(bad)
    selection = planning.plan(load_suite(small_suite))
    parts = [selection.shard(Shard(i, 3)).units for i in range(3)]
    ids = [u.id for part in parts for u in part]
    assert sorted(ids) == sorted(u.id for u in selection.units) and len(set(ids)) == len(ids)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.slow
def test_two_concurrent_shards_end_with_the_single_run_scores(small_suite, tmp_path, capsys):
    single = tmp_path / "single"
    common = ["bench", "--suite", str(small_suite), "--quiet", "--threads", "1"]
    assert cli.main(common + ["--out", str(single)]) == 0
    sharded = tmp_path / "sharded"
    script = "import sys; from atst_hear import cli; sys.exit(cli.main(sys.argv[1:]))"
    shards = [
        subprocess.Popen(
            [sys.executable, "-c", script, *common, "--out", str(sharded), "--shard", f"{i}/2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [shard.communicate(timeout=600)[0] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], outputs
    # both shards read the same embeddings: one computed each entry, the other waited for it
    entries = sorted(p.parent for p in (sharded / "embeddings").rglob("done.json"))
    assert entries == sorted(
        sharded / p.parent.relative_to(single) for p in single.rglob("embeddings/**/done.json")
    )
    # the last shard to finish wrote the report, with every unit of the plan in it
    assert sum("writes the report" in text for text in outputs) == 1
    assert scores(sharded) == scores(single)
    status = json.loads((sharded / "status.json").read_text())
    assert status["shards"] == {"count": 2, "finished": [0, 1]} and not status["failed"]
    assert sorted(status["done"]) == sorted(
        json.loads((single / "status.json").read_text())["done"]
    )
    # a second copy of a running shard is refused, the other shards are not
    with exclusive_output(sharded / "shards" / "0-of-2"):
        assert cli.main(common + ["--out", str(sharded), "--shard", "0/2"]) == 2
        assert "0-of-2 is in use by another atst-hear bench run" in capsys.readouterr().err
        assert cli.main(common + ["--out", str(sharded), "--shard", "1/2"]) == 0


def test_concurrent_caches_compute_an_entry_once(make_task, tmp_path, monkeypatch):
    task = TaskFolder.open(make_task("multiclass", n_train=4))
    computed, running, overlap = [], [], []
    original = EmbeddingCache._embed_files

    def slow_embed(self, *args):
        running.append(1)
        overlap.append(len(running) > 1)
        time.sleep(0.3)  # long enough for the other thread to reach the entry
        computed.append(args[2])
        result = original(self, *args)
        running.pop()
        return result

    monkeypatch.setattr(EmbeddingCache, "_embed_files", slow_embed)
    results = [None, None]

    def get(slot: int) -> None:
        cache = EmbeddingCache(tmp_path / "cache", device="cpu", progress=False)
        results[slot] = cache.get(LOGMEL, task, "train", "scene")

    threads = [threading.Thread(target=get, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert computed == ["train"] and not any(overlap)
    np.testing.assert_array_equal(results[0].embeddings, results[1].embeddings)


def test_a_unit_finished_elsewhere_is_reused(small_suite, tmp_path, monkeypatch):
    selection = planning.plan(load_suite(small_suite))
    unit = next(u for u in selection.units if u.protocol == "knn")
    out = tmp_path / "out"
    assert runner.execute_unit(unit, str(out), "cpu", 1, False) == ("done", "")
    monkeypatch.setattr(runner, "_execute_unit_locked", lambda *a: pytest.fail("recomputed"))
    assert runner.execute_unit(unit, str(out), "cpu", 1, False) == ("reused", "")


def test_submitit_local_job_array_matches_the_local_run(small_suite, tmp_path):
    # two units, two jobs of the array (each one a fresh Python process)
    common = {"tasks": ["scene"], "progress": False, "threads": 1}
    local = run_benchmark(small_suite, tmp_path / "local", **common)
    options = {"gpus_per_job": 0, "cpus_per_job": 1, "timeout_min": 10}
    arrayed = run_benchmark(
        small_suite,
        tmp_path / "array",
        launcher="submitit-local",
        launcher_options=options,
        **common,
    )
    assert arrayed.summary.ok and sorted(arrayed.summary.done) == sorted(local.summary.done)
    assert len(local.summary.done) == 2
    assert scores(tmp_path / "array") == scores(tmp_path / "local")
    assert len(list((tmp_path / "array" / "jobs").rglob("*_log.out"))) == 2  # one log per job
    again = run_benchmark(
        small_suite,
        tmp_path / "array",
        launcher="submitit-local",
        launcher_options=options,
        **common,
    )
    assert not again.summary.done and len(again.summary.reused) == 2  # nothing submitted


def test_launcher_options_are_checked():
    with pytest.raises(ValueError, match="launcher must be one of local, slurm"):
        LaunchOptions("pbs")
    with pytest.raises(ValueError, match="timeout_min must be an integer >= 1, got 0"):
        LaunchOptions("slurm", timeout_min=0)
    with pytest.raises(ValueError, match=r"launcher options \['partition'\] need a cluster"):
        run_benchmark("demo", "unused", launcher_options={"partition": "gpu"})
