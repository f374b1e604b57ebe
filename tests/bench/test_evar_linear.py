"""``evar-linear``: EVAR's linear evaluation (lineareval.py + TorchMLPClassifier2)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atst_hear.bench.cache import EmbeddingCache, ModelSpec, window_of
from atst_hear.bench.heads import EvarLinearClassifier
from atst_hear.bench.heads.batched import (
    BatchedHeads,
    BatchedOptimizer,
    HeadConfig,
    HeadRun,
    seeded_generator,
)
from atst_hear.bench.protocols import get_protocol
from atst_hear.bench.protocols.base import UnitContext
from atst_hear.bench.protocols.evar_linear import crop_deviations, evar_models
from atst_hear.bench.suite import load_suite
from atst_hear.tasks.folder import GROUP_FILE, TaskFolder

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")


def run_unit(tmp_path, task_dir, params=None, seed=42, fold=None):
    task = TaskFolder.open(task_dir)
    protocol = get_protocol("evar-linear")
    resolved = protocol.resolve_params(params)
    fold = fold or protocol.fold_units(task, resolved)[0]
    workdir = tmp_path / "units" / f"{task.name}-{seed}-{fold}"
    workdir.mkdir(parents=True, exist_ok=True)
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    ctx = UnitContext(task, BASELINE, cache, resolved, seed, fold, workdir, progress=False)
    return protocol.run(ctx)


def test_evar_head_standardises_as_scikit_learns_standard_scaler():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (50, 4))
    train[:, 2] = 5.0  # a constant feature keeps its scale
    y = np.eye(2)[rng.integers(0, 2, 50)]
    head = EvarLinearClassifier(epochs=1).fit(train, y, train[:10], y[:10])
    scaler = StandardScaler().fit(train)
    np.testing.assert_allclose(head.mean_, scaler.mean_, atol=1e-12)
    np.testing.assert_allclose(head.scale_, scaler.scale_, atol=1e-12)
    assert head.scale_[2] == 1.0


def test_evar_crops_only_where_it_changes_the_input():
    same = SimpleNamespace(name="esc50", sample_duration=5.0)  # every clip lasts EVAR's 5 s
    assert evar_models(BASELINE, same, crop=True) == (BASELINE, BASELINE)
    varied = SimpleNamespace(name="voxceleb1", sample_duration=None)
    fit, test = evar_models(BASELINE, varied, crop=True)
    assert (fit.window_crop, test.window_crop) == (("random", 8.2), ("start", 8.2))
    assert crop_deviations("voxceleb1", None, crop=True) == []
    (whole,) = crop_deviations("voxceleb1", None, crop=False)
    assert "variable-length" in whole and "8.2 s" in whole
    assert crop_deviations("esc50", 5.0, crop=False) == []
    assert "no clip length" in crop_deviations("demo_sounds", 1.25, crop=True)[0]


def test_windows_are_evars_start_or_a_reproducible_random_window():
    wave = torch.arange(100, dtype=torch.float32)
    assert torch.equal(window_of(wave, 40, "start", "a.wav"), wave[:40])
    first = window_of(wave, 40, "random", "a.wav")
    assert torch.equal(first, window_of(wave, 40, "random", "a.wav")) and len(first) == 40
    starts = {int(window_of(wave, 40, "random", f"{i}.wav")[0]) for i in range(50)}
    assert len(starts) > 10 and max(starts) < 60  # EVAR: randint(len - n), end exclusive
    padded = window_of(wave[:30], 40, "random", "a.wav")
    assert torch.equal(padded[:30], wave[:30]) and not padded[30:].any()


def test_cropped_task_embeds_train_and_test_windows_separately(make_task, tmp_path):
    task_dir = make_task("multiclass", name="spcv2_35", n_train=24, n_eval=9, duration=0.5)
    task = TaskFolder.open(task_dir)
    protocol = get_protocol("evar-linear")
    fit, test = protocol.embedding_models(BASELINE, task, protocol.resolve_params({}))
    assert fit.window_crop == ("random", 1.0) and test.window_crop == ("start", 1.0)
    (result,) = run_unit(tmp_path, task_dir, {"lr": 1e-2, "epochs": 20})
    assert result.details["cropped"] and result.details["deviations"] == []
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    emb = cache.get(test, task, "test", "scene")
    assert set(emb.durations_ms.tolist()) == {1000.0}  # 0.5 s clips zero-padded to EVAR's 1 s
    assert (
        cache.split_dir(fit, task, "train", "scene").parent
        != cache.split_dir(BASELINE, task, "train", "scene").parent
    )


def test_head_starts_as_torch_linear_and_adam_decays_as_torch():
    config = HeadConfig(64, 5)
    heads = BatchedHeads(config, ["torch_default"], [seeded_generator("init")])
    weight, bias = heads.head_tensor("w0", 0), heads.head_tensor("b0", 0)
    bound = 1 / math.sqrt(64)
    assert weight.abs().max() <= bound and bias.abs().max() <= bound
    assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)

    reference = torch.nn.Linear(64, 5)
    with torch.no_grad():
        reference.weight.copy_(weight.t())
        reference.bias.copy_(bias)
    adam = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=0.1)
    ours = BatchedOptimizer(heads, [1e-2], "adam", weight_decay=0.1)
    x, y = torch.randn(32, 64), torch.randint(0, 5, (32,))
    for _ in range(5):
        adam.zero_grad()
        torch.nn.functional.cross_entropy(reference(x), y).backward()
        adam.step()
        ours.zero_grad()
        torch.nn.functional.cross_entropy(heads.forward(x, train=True)[0], y).backward()
        ours.step()
    torch.testing.assert_close(heads.head_tensor("w0", 0).t(), reference.weight.detach())
    torch.testing.assert_close(heads.head_tensor("b0", 0), reference.bias.detach())


def test_early_stopping_counts_ties_as_improvements_like_evar():
    heads = BatchedHeads(HeadConfig(2, 2), ["torch_default"], [seeded_generator("tie")])
    run = HeadRun(0, {}, True, 200, patience=20, ties_improve=True)
    values = [0.5, 0.7, 0.7] + [0.6] * 20
    for epoch, value in enumerate(values):
        assert not run.stopped
        run.record(value, epoch, None, heads, 0)
    # the later of two equal epochs is kept, and 20 epochs without improvement stop training
    assert run.best_epoch == 2 and run.stopped
    strict = HeadRun(0, {}, True, 200, patience=20)
    for epoch, value in enumerate(values[:3]):
        strict.record(value, epoch, None, heads, 0)
    assert strict.best_epoch == 1


def test_evar_linear_learns_and_records_its_recipe(make_task, tmp_path):
    task_dir = make_task("multiclass", n_train=24, n_eval=9)
    (result,) = run_unit(tmp_path, task_dir, {"lr": 1e-2, "epochs": 40})
    assert result.valid_source == "valid" and result.fold == "test"
    assert result.scores["top1_acc"] > 0.6  # three tones, chance is 1/3
    details = result.details
    assert details["selection_score"] == "top1_acc" and details["batch_size"] == 24
    assert 0 <= details["best_epoch"] < 40 and details["n_valid"] == 9
    assert details["deviations"] == crop_deviations(TaskFolder.open(task_dir).name, 0.5, True)
    again = run_unit(tmp_path, task_dir, {"lr": 1e-2, "epochs": 40})[0]
    assert again.scores == result.scores  # seeded: the same unit gives the same numbers


def test_evar_linear_selects_multilabel_heads_on_map(make_task, tmp_path):
    task_dir = make_task("multilabel", n_train=24, n_eval=8)
    (result,) = run_unit(tmp_path, task_dir, {"lr": 1e-2, "epochs": 30})
    assert result.details["selection_score"] == "mAP" and result.primary == "mAP"
    assert result.scores["mAP"] > 0.5


def test_evar_linear_kfold_validates_on_whole_groups(make_task, tmp_path):
    import json

    task_dir = make_task("kfold", n_folds=3, n_eval=12)
    task = TaskFolder.open(task_dir)
    groups = {
        split: {
            name: f"{split}-{i // 4}" for i, name in enumerate(sorted(task.split_labels(split)))
        }
        for split in task.splits
    }
    (task_dir / GROUP_FILE).write_text(json.dumps(groups))
    (result,) = run_unit(tmp_path, task_dir, {"lr": 1e-2, "epochs": 10})
    assert result.valid_source == "train-slice-by-group" and result.fold == "fold00"
    assert result.details["n_valid"] == 4 and result.details["n_train"] == 20


def test_evar_linear_rejects_bad_settings(make_task, tmp_path):
    task_dir = make_task("multiclass")
    with pytest.raises(
        ValueError, match=r"EvarLinearClassifier: lr must be a finite number > 0, got 0\.0"
    ):
        run_unit(tmp_path, task_dir, {"lr": 0.0})
    with pytest.raises(ValueError, match="unknown parameters"):
        run_unit(tmp_path, task_dir, {"learning_rate": 1e-3})
    assert get_protocol("evar-linear").supports(TaskFolder.open(make_task("event"))) is not None


def test_paper_suite_runs_evar_linear_with_evar_settings():
    entries = [p for p in load_suite("paper").protocols if p.protocol == "evar-linear"]
    by_model = {tuple(p.models): p for p in entries}
    assert by_model[("atst-clip",)].params["lr"] == 3e-4  # config/atst.yaml lr_lineareval
    assert by_model[("atst-frame",)].params["lr"] == 3e-5  # config/atst_frame.yaml
    assert all(p.seeds == [42, 43, 44] for p in entries)
    defaults = get_protocol("evar-linear").defaults
    assert (defaults["epochs"], defaults["early_stop_epochs"]) == (200, 20)
