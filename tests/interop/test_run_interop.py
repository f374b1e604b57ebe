"""The checks run_interop.py applies to what heareval writes, on hand-made heareval output."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from atst_hear.tasks.folder import TaskFolder
from atst_hear.tasks.writing import task_metadata, write_task_files

SCENE_SIZE, TIMESTAMP_SIZE = 6, 4


def make_task(root: Path, event: bool, kfold: bool = False) -> TaskFolder:
    splits = ["fold00", "fold01", "fold02"] if kfold else ["train", "valid", "test"]
    labels = {
        split: {
            f"{split}_{i}.wav": (
                [{"label": "beep", "start": 100.0, "end": 300.0}] if event else ["beep"]
            )
            for i in range(2)
        }
        for split in splits
    }
    metadata = task_metadata(
        "toy",
        "event" if event else "scene",
        "multilabel" if event else "multiclass",
        "new_split_kfold" if kfold else "trainvaltest",
        splits,
        1.0,
        ["event_onset_200ms_fms"] if event else ["top1_acc", "d_prime"],
    )
    write_task_files(root, metadata, labels, labels=["beep", "buzz"])
    return TaskFolder.open(root)


def write_heareval_embeddings(task: TaskFolder, out: Path, first_ms: float = 15.0) -> None:
    """What heareval.embeddings.runner writes, as far as the checks look."""
    size = TIMESTAMP_SIZE if task.is_event else SCENE_SIZE
    (out / ".done.embeddings").parent.mkdir(parents=True, exist_ok=True)
    (out / ".done.embeddings").touch()
    for split in task.splits:
        rows = []
        for filename in task.split_labels(split):
            shape = (25, size) if task.is_event else (size,)
            array = np.ones(shape, np.float32)
            (out / split).mkdir(exist_ok=True)
            np.save(out / split / f"{filename}.embedding.npy", array)
            if task.is_event:
                stamps = (first_ms + 40.0 * np.arange(25)).tolist()
                (out / split / f"{filename}.timestamps.json").write_text(json.dumps(stamps))
            rows.append(array.reshape(-1, size))
        stacked = np.concatenate(rows)
        stacked.tofile(out / f"{split}.embeddings.npy")
        (out / f"{split}.embedding-dimensions.json").write_text(json.dumps(list(stacked.shape)))


def config(interop, mode: str):
    return interop.Config("frame", Path("frame.ckpt"), mode)


@pytest.mark.parametrize("event", [False, True])
def test_heareval_embeddings_pass(interop, tmp_path, event):
    task = make_task(tmp_path / "task", event)
    write_heareval_embeddings(task, tmp_path / "emb")
    sizes = (SCENE_SIZE, TIMESTAMP_SIZE)
    problems = interop.check_embedding_files(
        task, tmp_path / "emb", config(interop, "default"), sizes
    )
    assert problems == []


def test_wrong_shapes_and_non_finite_values_are_found(interop, tmp_path):
    task = make_task(tmp_path / "task", event=False)
    emb = tmp_path / "emb"
    write_heareval_embeddings(task, emb)
    np.save(emb / "train" / "train_0.wav.embedding.npy", np.ones(SCENE_SIZE + 1, np.float32))
    broken = np.fromfile(emb / "test.embeddings.npy", np.float32)
    broken[0] = np.nan
    broken.tofile(emb / "test.embeddings.npy")
    (emb / ".done.embeddings").unlink()

    problems = interop.check_embedding_files(
        task, emb, config(interop, "default"), (SCENE_SIZE, TIMESTAMP_SIZE)
    )
    assert len(problems) == 3
    assert any("train_0.wav.embedding.npy: shape (7,)" in p for p in problems)
    assert any("test.embeddings.npy: non-finite" in p for p in problems)
    assert any(".done.embeddings" in p for p in problems)


def test_timestamps_follow_the_mode(interop, tmp_path):
    task = make_task(tmp_path / "task", event=True)
    write_heareval_embeddings(task, tmp_path / "emb", first_ms=15.0)
    sizes = (SCENE_SIZE, TIMESTAMP_SIZE)
    official = interop.check_embedding_files(
        task, tmp_path / "emb", config(interop, "official"), sizes
    )
    assert len(official) == 6  # every file: token centres where token starts were expected
    assert "official mode" in official[0]

    stamps = tmp_path / "stamps.json"
    stamps.write_text(json.dumps([15.0, 55.0, 95.0]))
    assert interop._check_timestamps(stamps, 3, 100.0, "default") == []
    assert "beyond" in interop._check_timestamps(stamps, 3, 90.0, "default")[0]
    assert "are not" in interop._check_timestamps(stamps, 4, 200.0, "default")[0]


def write_scores(path: Path, scores: dict) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "prediction-done.json").write_text("{}")
    (path / "test.predicted-scores.json").write_text(json.dumps(scores))
    for fold in scores:
        if fold.startswith(("fold", "test")):
            (path / f"{fold}.predictions.pkl").write_bytes(b"")


def fold_scores(score: float, d_prime: float) -> dict:
    return {"test_loss": 1.0, "test_score": score, "test_top1_acc": score, "test_d_prime": d_prime}


def test_prediction_scores_must_be_finite_except_d_prime(interop, tmp_path):
    task = make_task(tmp_path / "task", event=False, kfold=True)
    folds = {f: fold_scores(0.5, math.inf if f == "fold01" else 1.0) for f in task.splits}
    write_scores(tmp_path / "ok", {**folds, "aggregated_scores": {"test_score_mean": 0.5}})
    problems, notes = interop.check_prediction_files(task, tmp_path / "ok")
    assert problems == []
    assert notes == ["toy fold01: heareval's test_d_prime is inf"]

    folds["fold02"] = fold_scores(math.nan, 1.0)
    del folds["fold00"]
    write_scores(tmp_path / "bad", {**folds, "aggregated_scores": {"test_score_mean": math.nan}})
    problems, _ = interop.check_prediction_files(task, tmp_path / "bad")
    assert any("no entry 'fold00'" in p for p in problems)
    assert any("fold02 test_score is nan" in p for p in problems)
    assert any("primary score is not finite" in p for p in problems)


def test_primary_score_reads_both_layouts(interop, tmp_path):
    scene = make_task(tmp_path / "scene", event=False)
    kfold = make_task(tmp_path / "kfold", event=False, kfold=True)
    assert interop.primary_score({"test": {"test_score": 0.25}}, scene) == 0.25
    assert interop.primary_score({"aggregated_scores": {"test_score_mean": 0.5}}, kfold) == 0.5


def test_distance_outside_the_noise_band(interop):
    seeds = [0.40, 0.42, 0.44, 0.46, 0.48]  # mean 0.44, std 0.0316
    band = interop.NOISE_SIGMAS * 0.0316228
    assert interop.distance_outside(0.44 + band - 0.001, seeds) == 0.0
    assert interop.distance_outside(0.44 - band - 0.05, seeds) == pytest.approx(0.05, abs=1e-6)
    assert interop.distance_outside(0.44 + band + 0.02, seeds) == pytest.approx(0.02, abs=1e-6)
    assert math.isnan(interop.distance_outside(math.nan, seeds))
    assert math.isnan(interop.distance_outside(0.4, [0.4, math.nan]))


def test_validator_summary_drops_the_model_repr(interop):
    output = (
        "Importing atst_hear.hear.frame\nChecking load_model\n"
        "  - Received torch Module: ATSTEmbedder(\n    (encoder): ATSTEncoder(...)\n)\n"
        "  - Model sample rate is: 16000\n"
        "/x/validate.py:266: UserWarning: Your timestamps end at 1935.0ms\n  warnings.warn(\n"
        "Looks good!\n"
    )
    assert interop.validator_summary(output) == [
        "Checking load_model",
        "  - Model sample rate is: 16000",
        "/x/validate.py:266: UserWarning: Your timestamps end at 1935.0ms",
        "Looks good!",
    ]
