"""A unit resolves its protocol and opens its task folder once, and takes both to a worker."""

from __future__ import annotations

import dataclasses
import pickle

from atst_hear.bench import planning, runner
from atst_hear.bench.cache import ModelSpec
from atst_hear.bench.protocols import get_protocol
from atst_hear.tasks.folder import TaskFolder

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")


def test_a_unit_opens_its_task_folder_once_and_pickles_it(make_task, monkeypatch):
    task_dir = make_task("multiclass")
    unit = planning.Unit("m", BASELINE, "t", str(task_dir), "knn", {"k": 3}, 0, "fold00")
    opened = []
    original = TaskFolder.open.__func__
    monkeypatch.setattr(
        TaskFolder,
        "open",
        classmethod(lambda cls, path: opened.append(path) or original(cls, path)),
    )
    specs = runner._embedding_specs(unit)
    assert runner._embedding_specs(unit) == specs and unit.key() == unit.key()
    assert unit.resolved_protocol is get_protocol("knn") and len(opened) == 1
    worker_copy = pickle.loads(pickle.dumps(unit))
    assert worker_copy.task_folder.labels == unit.task_folder.labels and len(opened) == 1
    # the resolved objects are no fields: unit.json (asdict) stays as it was
    assert not {"resolved_protocol", "task_folder"} & set(dataclasses.asdict(unit))
