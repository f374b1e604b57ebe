from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from atst_hear.bench.cache import EmbeddingCache, ModelSpec
from atst_hear.bench.heads import HearMLPClassifier, KNNClassifier
from atst_hear.bench.heads.batched import (
    BatchedHeads,
    BatchedOptimizer,
    HeadConfig,
    HeadRun,
    cosine_scale,
    head_losses,
    seeded_generator,
)
from atst_hear.bench.heads.reference_mlp import reference_head
from atst_hear.bench.protocols import get_protocol
from atst_hear.bench.protocols.base import UnitContext
from atst_hear.bench.protocols.data import hear_rotation, holdout_rotation
from atst_hear.bench.protocols.finetune import unit_deviations as finetune_unit_deviations
from atst_hear.bench.protocols.hear_mlp import grid_points
from atst_hear.tasks.folder import TaskFolder

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")
QUICK_MLP = {"grid_points": 2, "grid_overrides": {"max_epochs": [24], "hidden_dim": [64]}}


def run_unit(tmp_path, task_dir, protocol, params=None, seed=0, fold=None, workdir=None):
    task = TaskFolder.open(task_dir)
    proto = get_protocol(protocol)
    resolved = proto.resolve_params(params)
    fold = fold or proto.fold_units(task, resolved)[0]
    workdir = workdir or tmp_path / "units" / f"{protocol}-{task.name}-{seed}-{fold}"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = UnitContext(
        task,
        BASELINE,
        EmbeddingCache(tmp_path / "cache", progress=False),
        resolved,
        seed,
        fold,
        workdir,
        progress=False,
    )
    return proto.run(ctx), workdir


# --- hear-eval-kit's grid, rotation and decoding ------------------------------------------------
def test_grid_points_follow_hear_eval_kit():
    confs = grid_points({"task_name": "esc50"}, "default", 8)
    assert len(confs) == 8
    # ParameterGrid order shuffled by random.Random(42) (hear-eval-kit seeds 42 before shuffling)
    from sklearn.model_selection import ParameterGrid

    varied = {
        "hidden_layers": [1, 2],
        "initialization": ["xavier_uniform", "xavier_normal"],
        "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    }
    expected = list(ParameterGrid(varied))
    random.seed(42)
    random.shuffle(expected)
    assert [{k: c[k] for k in varied} for c in confs] == expected[:8]
    assert all(
        c["hidden_dim"] == 1024
        and c["max_epochs"] == 500
        and c["patience"] == 20
        and c["check_val_every_n_epoch"] == 3
        and c["batch_size"] == 1024
        for c in confs
    )
    dcase = grid_points({"task_name": "dcase2016_task2"}, "default", 8)
    assert {c["check_val_every_n_epoch"] for c in dcase} == {10}
    maestro = grid_points(
        {
            "task_name": "maestro",
            "evaluation_params": {"task_specific_param_grid": {"max_epochs": [50]}},
        },
        "default",
        8,
    )
    assert {c["max_epochs"] for c in maestro} == {50}
    faster = grid_points({"task_name": "x"}, "faster", 1)
    assert faster[0]["max_epochs"] == 10 and faster[0]["hidden_layers"] in (0, 1)
    with pytest.raises(ValueError, match="unknown hear-mlp grid 'huge'"):
        grid_points({"task_name": "x"}, "huge", 8)


def test_hear_rotation_and_holdout(make_task):
    task = TaskFolder.open(make_task("kfold", n_folds=5, n_eval=5))
    rotation = hear_rotation(task)
    assert [(f.name, f.valid.splits, f.train.splits) for f in rotation[:1] + rotation[-1:]] == [
        ("fold00", ("fold01",), ("fold02", "fold03", "fold04")),
        ("fold04", ("fold00",), ("fold01", "fold02", "fold03")),
    ]
    holdout = holdout_rotation(task, valid_fraction=0.2, valid_seed=0)
    for fold in holdout:
        assert fold.valid_source == "train-slice"
        assert fold.name not in fold.train.splits and fold.train.splits == fold.valid.splits
        assert not fold.train.files & fold.valid.files
        assert len(fold.valid.files) == 4 and len(fold.train.files) == 16
    assert holdout_rotation(task, 0.2, 0)[0].valid == holdout[0].valid  # fixed by its seed
    trainvaltest = holdout_rotation(TaskFolder.open(make_task("multiclass")), 0.2, 0)
    assert trainvaltest[0].valid_source == "valid" and trainvaltest[0].valid.splits == ("valid",)


# --- the batched trainer equals torch.nn + torch.optim, one model at a time -------------------
@pytest.mark.parametrize("hidden_layers", [1, 2])
def test_batched_adam_heads_equal_separate_torch_models(hidden_layers):
    torch.manual_seed(0)
    x, y = torch.randn(50, 12), torch.eye(3)[torch.randint(0, 3, (50,))]
    config = HeadConfig(12, 3, hidden_layers=hidden_layers, hidden_dim=16, dropout=0.1)
    inits, lrs = ["xavier_uniform", "xavier_normal"], [1e-2, 3e-3]
    heads = BatchedHeads(config, inits, [seeded_generator("t", i) for i in range(2)])
    optimizer = BatchedOptimizer(heads, lrs, "adam")
    models = [reference_head(config, inits[i], seeded_generator("t", i)) for i in range(2)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(models, lrs)]
    for step in range(4):
        rows = slice(step * 16, step * 16 + 16)
        loss = head_losses(heads.forward(x[rows], train=True), y[rows], False).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for model, opt in zip(models, optimizers):
            model.train()
            single = head_losses(model(x[rows])[None], y[rows], False)[0]
            opt.zero_grad()
            single.backward()
            opt.step()
    # A Linear bias right before BatchNorm has a zero gradient up to rounding noise, which Adam
    # turns into +-lr steps; that noise depends on the kernels, so those biases (and the running
    # means they shift) are not compared. Everything else matches torch.nn exactly.
    for i, model in enumerate(models):
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        norms = [m for m in model if isinstance(m, torch.nn.BatchNorm1d)]
        for layer, linear in enumerate(linears):
            np.testing.assert_allclose(
                heads.head_tensor(f"w{layer}", i).detach().t().numpy(),
                linear.weight.detach().numpy(),
                atol=1e-5,
            )
        np.testing.assert_allclose(
            heads.head_tensor(f"b{hidden_layers}", i).detach().numpy(),
            linears[-1].bias.detach().numpy(),
            atol=1e-5,
        )
        for layer, norm in enumerate(norms):
            np.testing.assert_allclose(
                heads.head_tensor(f"bn_weight{layer}", i).detach().numpy(),
                norm.weight.detach().numpy(),
                atol=1e-5,
            )
            np.testing.assert_allclose(
                heads.head_tensor(f"bn_var{layer}", i).numpy(), norm.running_var.numpy(), rtol=1e-4
            )


def test_batched_sgd_cosine_linear_heads_equal_torch():
    torch.manual_seed(1)
    x, y = torch.randn(40, 6) * 3 + 1, (torch.rand(40, 4) < 0.3).float()
    config = HeadConfig(6, 4, input_norm=True)
    lrs, epochs = [0.5, 0.05], 3
    heads = BatchedHeads(config, ["normal_0.01"] * 2, [seeded_generator("l", i) for i in range(2)])
    optimizer = BatchedOptimizer(heads, lrs, "sgd", momentum=0.9)
    models = [reference_head(config, "normal_0.01", seeded_generator("l", i)) for i in range(2)]
    optimizers = [
        torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9) for m, lr in zip(models, lrs)
    ]
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs) for o in optimizers]
    for epoch in range(epochs):
        optimizer.lr_scale = cosine_scale(epochs)(epoch)
        for start in range(0, 40, 16):
            rows = slice(start, start + 16)
            loss = head_losses(heads.forward(x[rows], train=True), y[rows], True).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for model, opt in zip(models, optimizers):
                model.train()
                single = head_losses(model(x[rows])[None], y[rows], True)[0]
                opt.zero_grad()
                single.backward()
                opt.step()
        for scheduler in schedulers:
            scheduler.step()
    batched = heads.predict_logits(x)
    for i, model in enumerate(models):
        model.eval()
        np.testing.assert_allclose(batched[i].numpy(), model(x).detach().numpy(), atol=1e-5)


def test_dropped_heads_leave_the_others_unchanged():
    torch.manual_seed(2)
    x, y = torch.randn(30, 5), torch.eye(2)[torch.randint(0, 2, (30,))]
    config = HeadConfig(5, 2, hidden_layers=1, hidden_dim=8, dropout=0.2)

    def train(keep_after_first_step):
        heads = BatchedHeads(
            config, ["xavier_uniform"] * 3, [seeded_generator("k", i) for i in range(3)]
        )
        optimizer = BatchedOptimizer(heads, [1e-2, 2e-2, 3e-2], "adam")
        for step in range(3):
            loss = head_losses(heads.forward(x, train=True), y, False).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step == 0 and keep_after_first_step:
                heads.keep(keep_after_first_step)
                optimizer.keep(keep_after_first_step)
        return heads.predict_logits(x)

    full, kept = train(None), train([0, 2])
    np.testing.assert_allclose(kept.numpy(), full[[0, 2]].numpy(), atol=1e-6)


# --- protocols end to end on tiny tasks ---------------------------------------------------------
def test_hear_mlp_scene_task_and_output_layout(make_task, tmp_path):
    results, workdir = run_unit(tmp_path, make_task("multiclass"), "hear-mlp", QUICK_MLP)
    (result,) = results
    assert result.fold == "test" and result.valid_source == "valid"
    assert result.scores["top1_acc"] >= 0.5  # 3 classes: chance is 1/3
    layout = json.loads((workdir / "test.predicted-scores.json").read_text())
    assert set(layout) == {"test", "hparams", "postprocessing", "score_mode", "embedding_path"}
    assert set(layout["test"]) == {
        "test_loss",
        "test_score",
        "test_top1_acc",
        "test_mAP",
        "test_d_prime",
        "test_aucroc",
        "validation_score",
        "epoch",
        "time_in_min",
    }
    assert layout["test"]["test_score"] == layout["test"]["test_top1_acc"]
    assert layout["score_mode"] == "max" and layout["postprocessing"] == []
    assert layout["hparams"]["hidden_dim"] == 64
    assert (workdir / "test.predictions.npz").is_file()


def test_hear_mlp_kfold_aggregates_and_resumes(make_task, tmp_path):
    task_dir = make_task("kfold", n_folds=3)
    results, workdir = run_unit(tmp_path, task_dir, "hear-mlp", QUICK_MLP)
    assert [r.fold for r in results] == ["fold00", "fold01", "fold02"]
    layout = json.loads((workdir / "test.predicted-scores.json").read_text())
    aggregated = layout["aggregated_scores"]
    values = [layout[f]["test_score"] for f in ("fold00", "fold01", "fold02")]
    assert aggregated["test_score_mean"] == pytest.approx(np.mean(values))
    assert aggregated["test_score_std"] == pytest.approx(np.std(values, ddof=1))
    # a unit interrupted after the grid search resumes with the stored selection
    grid_before = (workdir / "grid.json").read_text()
    (workdir / "fold-fold02.json").unlink()
    again, _ = run_unit(tmp_path, task_dir, "hear-mlp", QUICK_MLP, workdir=workdir)
    assert (workdir / "grid.json").read_text() == grid_before
    assert [r.scores for r in again] == [r.scores for r in results]


def test_hear_mlp_event_task(make_task, tmp_path):
    params = {
        "grid_points": 2,
        "grid_overrides": {"max_epochs": [30], "hidden_dim": [64], "lr": [1e-3]},
    }
    task_dir = make_task("event", n_train=10, n_eval=5)
    (result,), workdir = run_unit(tmp_path, task_dir, "hear-mlp", params)
    assert result.primary == "event_onset_200ms_fms"
    assert {"event_onset_200ms_fms_precision", "segment_1s_er"} <= set(result.scores)
    assert result.scores["event_onset_200ms_fms"] > 0.3
    layout = json.loads((workdir / "test.predicted-scores.json").read_text())
    assert [k for k, _ in layout["postprocessing"]] == ["median_filter_ms", "min_duration"]
    events = json.loads((workdir / "test.predicted-events.json").read_text())
    assert set(events) == set(TaskFolder.open(task_dir).split_labels("test"))
    assert all(set(e) == {"label", "start", "end"} for file in events.values() for e in file)


def test_paper_linear_kfold_uses_a_train_slice(make_task, tmp_path):
    task_dir = make_task("kfold", n_folds=3, n_eval=9)
    (result,), _ = run_unit(
        tmp_path, task_dir, "paper-linear", {"epochs": 30, "lr_grid": [0.01, 0.1]}
    )
    assert result.fold == "fold00" and result.valid_source == "train-slice"
    assert result.details["n_train"] == 16 and result.details["n_valid"] == 2
    assert result.details["selected_lr"] in (0.01, 0.1)
    assert result.scores["top1_acc"] >= 0.6


def test_paper_linear_multilabel(make_task, tmp_path):
    (result,), _ = run_unit(
        tmp_path,
        make_task("multilabel", n_train=24),
        "paper-linear",
        {"epochs": 40, "lr_grid": [0.05]},
    )
    assert result.primary == "mAP" and result.scores["mAP"] > 0.5


def test_paper_linear_embeds_the_centre_crop_of_every_clip(make_task, tmp_path):
    """As the official FreezingTransform: the centre crop_seconds of each clip, unpadded, and
    a cache entry of its own."""
    import atst_hear.bench.baselines as baselines
    from atst_hear.audio import read_audio
    from atst_hear.bench.cache import audio_source

    task_dir = make_task("multiclass", duration=3.0)
    (result,), _ = run_unit(
        tmp_path, task_dir, "paper-linear", {"epochs": 2, "lr_grid": [0.1], "crop_seconds": 1.0}
    )
    assert result.details["crop_seconds"] == 1.0
    task, cache = TaskFolder.open(task_dir), EmbeddingCache(tmp_path / "cache", progress=False)
    cropped = cache.get(BASELINE.with_centre_crop(1.0), task, "test", "scene")
    assert cropped.durations_ms.tolist() == [1000.0] * len(cropped.files)
    wave = read_audio(audio_source(task, "test", cropped.files[0]))
    centre = wave[len(wave) // 2 - 8000 : len(wave) // 2 + 8000]
    model = baselines.load_model()
    expected = baselines.get_scene_embeddings(centre[None], model).numpy()[0]
    np.testing.assert_allclose(cropped.embeddings[0], expected, rtol=1e-5, atol=1e-5)
    whole = BASELINE.with_centre_crop(None)
    assert cache.split_dir(whole, task, "test", "scene") != cache.split_dir(
        BASELINE.with_centre_crop(1.0), task, "test", "scene"
    )


def _shuffle_test_labels(task_dir):
    path = task_dir / "test.json"
    labels = json.loads(path.read_text())
    names = list(labels)
    values = [labels[n] for n in names]
    values = values[1:] + values[:1]
    path.write_text(json.dumps(dict(zip(names, values))))


@pytest.mark.parametrize(
    "protocol,params",
    [
        ("paper-linear", {"epochs": 12, "lr_grid": [0.001, 0.01, 0.1]}),
        ("hear-mlp", QUICK_MLP),
    ],
)
def test_model_selection_never_sees_test_labels(make_task, tmp_path, protocol, params):
    clean = make_task("multiclass", name="clean")
    poisoned = make_task("multiclass", name="clean", root=tmp_path / "poisoned")
    _shuffle_test_labels(poisoned)
    (a,), _ = run_unit(tmp_path / "a", clean, protocol, params)
    (b,), _ = run_unit(tmp_path / "b", poisoned, protocol, params)
    assert a.details == b.details  # same selection, epochs and validation scores
    assert a.scores != b.scores  # ... although the test labels (and scores) differ


def test_same_seed_same_scores(make_task, tmp_path):
    task_dir = make_task("multiclass")
    first, _ = run_unit(tmp_path / "1", task_dir, "hear-mlp", QUICK_MLP, seed=3)
    second, _ = run_unit(tmp_path / "2", task_dir, "hear-mlp", QUICK_MLP, seed=3)
    assert first[0].scores == second[0].scores and first[0].details == second[0].details


def test_knn_by_hand():
    train_x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    train_y = np.eye(2)[[0, 0, 1, 1]]
    knn = KNNClassifier(n_neighbors=2).fit(train_x, train_y)
    scores = knn.predict_proba(np.array([[0.95, 0.05], [0.0, 0.8]]))
    np.testing.assert_allclose(scores, [[1.0, 0.0], [0.0, 1.0]])


def test_knn_protocol(make_task, tmp_path):
    task_dir = make_task("kfold", n_folds=3)
    task = TaskFolder.open(task_dir)
    protocol = get_protocol("knn")
    assert protocol.fold_units(task, {}) == ["fold00", "fold01", "fold02"] and not protocol.seeded
    (result,), _ = run_unit(tmp_path, task_dir, "knn", {"k": 3}, fold="fold01")
    assert result.fold == "fold01" and result.valid_source == "none"
    assert result.details["n_neighbour_pool"] == 12 and result.scores["top1_acc"] > 0.8


def test_protocol_parameters_are_checked():
    with pytest.raises(ValueError, match=r"unknown parameters \['lr'\]"):
        get_protocol("paper-linear").resolve_params({"lr": 0.1})
    with pytest.raises(ValueError, match="unknown protocol 'linear'"):
        get_protocol("linear")


# --- sed and finetune ---------------------------------------------------------------------------
def test_sed_protocol_scores_and_curves(make_task, tmp_path):
    params = {"epochs": 12, "batch_size": 8, "lr": 0.5, "warmup_epochs": 1, "val_every": 4}
    task_dir = make_task("event", n_train=12, n_eval=4)
    (result,), workdir = run_unit(tmp_path, task_dir, "sed", params)
    assert result.primary == "event_onset_200ms_fms"
    for name in (
        "psds1",
        "psds2",
        "psds1_sed_scores_eval",
        "psds2_sed_scores_eval",
        "intersection_f1",
        "event_f1_macro",
        "segment_1s_er",
    ):
        assert 0.0 <= result.scores[name] <= 2.0, name
    assert result.scores["event_f1_macro"] > 0.5 and result.details["best_epoch"] in (3, 7, 11)
    assert "encoder frozen (finetune_mode: false)" in result.details["deviations"][0]
    curves = json.loads((workdir / "psd_roc.json").read_text())
    assert set(curves) == {"psds1", "psds2", "psds1_sed_scores_eval", "psds2_sed_scores_eval"}
    assert curves["psds1"]["value"] == result.scores["psds1"]
    again, _ = run_unit(tmp_path, task_dir, "sed", params, workdir=tmp_path / "again")
    assert again[0].scores == result.scores


def test_sed_uses_weakly_labelled_clips(make_task, tmp_path):
    params = {"epochs": 6, "batch_size": 8, "lr": 0.5, "warmup_epochs": 1, "val_every": 3}
    task_dir = make_task("event", n_train=8, n_eval=4, weak_clips=6)
    (result,), _ = run_unit(tmp_path, task_dir, "sed", params)
    assert result.details["n_weak_train"] == 6 and result.details["n_train"] == 8
    assert result.details["steps_per_epoch"] == 1  # 6 weak clips // 4 a step (not 8 // 4)
    assert result.scores["event_f1_macro"] > 0.3


def test_sed_head_pools_only_real_frames():
    from atst_hear.bench.protocols.sed import StrongWeakHead

    head = StrongWeakHead(4, 2, seeded_generator("h"))
    x = torch.randn(1, 5, 4)
    full_mask = torch.tensor([[True, True, True, False, False]])
    strong, weak = head(x, full_mask)
    strong_short, weak_short = head(x[:, :3], torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(weak, weak_short)
    torch.testing.assert_close(strong[:, :3], strong_short)


def test_sed_head_attention_is_a_softmax_over_classes_per_frame():
    """The official DCASE head normalises the attention over the classes of each frame (not
    over time), clamped to [1e-7, 1], and zeroes it on padded frames."""
    from atst_hear.bench.protocols.sed import StrongWeakHead

    head = StrongWeakHead(8, 5, seeded_generator("h"))
    x = 10 * torch.randn(3, 7, 8)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False
    attention = head.attention_weights(x, mask).detach()
    sums = attention.sum(-1)
    torch.testing.assert_close(sums[mask], torch.ones(int(mask.sum())), atol=5 * 1e-7, rtol=0)
    assert bool((sums[~mask] == 0).all())
    assert float(attention[mask].min()) >= 1e-7


def test_sed_head_initialisation_is_the_official_one():
    from atst_hear.bench.protocols.sed import StrongWeakHead

    head = StrongWeakHead(768, 10, seeded_generator("h"))
    for layer in (head.strong, head.attention):
        weight = layer.weight.detach()
        assert bool((layer.bias == 0).all())
        assert float(weight.mean()) == pytest.approx(0.0, abs=1e-3)
        assert float(weight.std()) == pytest.approx(0.01, rel=0.05)


def test_sed_epoch_length_is_set_by_the_weak_clips():
    """DESED: 1,420 weak training clips at 128 a step give 11 steps an epoch (1,100 in 100
    epochs, 55 of warm-up), whatever the number of strong clips."""
    from atst_hear.bench.protocols.sed import epoch_layout

    assert epoch_layout(10_000, 1_420, 256) == (128, 128, 11)
    assert epoch_layout(10_000, None, 256) == (256, None, 39)
    assert epoch_layout(3, 2, 8) == (3, 2, 1)


def test_sed_finetune_mode_trains_the_last_block(make_task, tmp_path):
    task_dir = make_task("event", n_train=8, n_eval=4, weak_clips=4)
    spec = ModelSpec(
        "frame", "atst_hear.hear.frame", options={"random_init": "tiny", "n_blocks": 1}
    )
    proto = get_protocol("sed")
    params = {
        "epochs": 2,
        "batch_size": 8,
        "warmup_epochs": 1,
        "val_every": 1,
        "finetune_mode": True,
    }
    ctx = UnitContext(
        TaskFolder.open(task_dir),
        spec,
        EmbeddingCache(tmp_path / "cache", progress=False),
        proto.resolve_params(params),
        0,
        "test",
        tmp_path / "unit",
        progress=False,
    )
    (result,) = proto.run(ctx)
    assert result.details["encoder"] == "last block and final norm trained"
    assert result.details["deviations"] == []
    assert 0.0 <= result.scores["psds1"] <= 1.0
    ctx.model = spec.with_options(n_blocks=2)
    with pytest.raises(ValueError, match="n_blocks: 1"):
        proto.run(ctx)


def test_layer_decay_groups_follow_the_paper():
    from atst_hear.finetuning import TaskClassifier
    from atst_hear.models.encoder import ATSTConfig, ATSTEncoder, layer_decay_groups

    model = TaskClassifier(ATSTEncoder(ATSTConfig.preset("frame", "tiny")), 3)
    scales = {
        id(p): g["lr_scale"]
        for g in layer_decay_groups(model, model.encoder, 0.75)
        for p in g["params"]
    }
    depth = model.encoder.config.depth  # 4 for tiny
    assert scales[id(model.head.linear.weight)] == 1.0
    assert scales[id(model.encoder.final_norm.weight)] == 0.75
    assert scales[id(model.encoder.blocks[depth - 1].mlp.fc1.weight)] == pytest.approx(0.75)
    assert scales[id(model.encoder.blocks[0].mlp.fc1.weight)] == pytest.approx(0.75**depth)
    assert scales[id(model.encoder.pos_embed)] == pytest.approx(0.75**depth)
    assert len(scales) == len(list(model.parameters()))


def test_finetune_trains_and_resumes(make_task, tmp_path, monkeypatch):
    from atst_hear.bench.protocols import finetune

    task_dir = make_task("multiclass", n_train=6, n_eval=3)
    spec = ModelSpec("frame", "atst_hear.hear.frame", options={"random_init": "tiny"})
    params = {
        "epochs": 2,
        "batch_size": 4,
        "micro_batch": 2,
        "lr": 0.05,
        "warmup_epochs": 1,
        "num_workers": 0,
        "mixup_alpha": 0.5,
    }

    def unit(workdir):
        task = TaskFolder.open(task_dir)
        proto = get_protocol("finetune")
        ctx = UnitContext(
            task,
            spec,
            EmbeddingCache(tmp_path / "cache", progress=False),
            proto.resolve_params(params),
            0,
            "test",
            workdir,
            progress=False,
        )
        return proto.run(ctx)

    (clean,) = unit(tmp_path / "clean")
    assert set(clean.scores) == {"top1_acc", "mAP", "d_prime", "aucroc"}
    assert clean.details["crop_seconds"] == 12.0 and clean.details["n_train"] == 6
    # interrupt after the first epoch's state is saved, then resume to the same result
    saves = []
    original = finetune._save

    def dies_at_second_state(path, obj):
        original(path, obj)
        saves.append(path.name)
        if saves.count("finetune-state.pt") == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "_save", dies_at_second_state)
    with pytest.raises(KeyboardInterrupt):
        unit(tmp_path / "resumed")
    monkeypatch.setattr(finetune, "_save", original)
    (resumed,) = unit(tmp_path / "resumed")
    assert resumed.scores == pytest.approx(clean.scores, nan_ok=True)


def test_finetune_balanced_sampling_and_its_option_check(make_task, tmp_path):
    task_dir = make_task("multilabel", n_train=6, n_eval=3)
    spec = ModelSpec("clip", "atst_hear.hear.clip", options={"random_init": "tiny"})
    proto = get_protocol("finetune")
    base = {"epochs": 1, "batch_size": 4, "micro_batch": 4, "warmup_epochs": 0, "num_workers": 0}

    def context(params, workdir):
        return UnitContext(
            TaskFolder.open(task_dir),
            spec,
            EmbeddingCache(tmp_path / "cache", progress=False),
            proto.resolve_params({**base, **params}),
            0,
            "test",
            workdir,
            progress=False,
        )

    (result,) = proto.run(context({"balanced_sampling": True}, tmp_path / "balanced"))
    assert result.details["balanced_sampling"] is True and "mAP" in result.scores
    with pytest.raises(ValueError, match=r"'finetune': balanced_sampling must be True or False"):
        context({"balanced_sampling": "yes"}, tmp_path / "bad")
    # the official AudioSet mixup (ratio 0.5) draws its partner from the whole training set
    audioset = proto.resolve_params({"mixup_alpha": 10.0, "mixup_ratio": 0.5})
    assert "random training clip" in finetune_unit_deviations(audioset)[-1]
    whole_batch = {"mixup_alpha": 0.5, "micro_batch": 512}
    assert finetune_unit_deviations(proto.resolve_params(whole_batch)) == []
    accumulated = finetune_unit_deviations(proto.resolve_params({"mixup_alpha": 0.5}))
    assert accumulated == [
        "finetune: the head's BatchNorm normalises over 64 clips at a time (official: the "
        "whole synchronised batch of 512)"
    ]
    for ratio in ("0.5", True):  # the wrong type fails when the suite is read
        with pytest.raises(ValueError, match=rf"mixup_ratio must be a number, got {ratio!r}"):
            context({"mixup_alpha": 10.0, "mixup_ratio": ratio}, tmp_path / "bad")
    with pytest.raises(ValueError, match=r"mixup_ratio must be <= 1.0, got 1.5 \(float\)"):
        context({"mixup_alpha": 10.0, "mixup_ratio": 1.5}, tmp_path / "bad")
    with pytest.raises(ValueError, match=r"crop_seconds must be > 0.0, got 0 \(int\)"):
        context({"crop_seconds": 0}, tmp_path / "bad")


def test_finetune_trains_with_the_official_stochastic_depth(make_task, tmp_path, monkeypatch):
    """The official fine-tuning encoders keep ``drop_path_rate`` 0.1 (linear in depth), never
    the 0 of a frozen encoder."""
    from atst_hear.bench.protocols import finetune

    rates, original = [], finetune.TaskClassifier

    def recording(encoder, *args, **kwargs):
        rates.append([block.drop_path.rate for block in encoder.blocks])
        return original(encoder, *args, **kwargs)

    monkeypatch.setattr(finetune, "TaskClassifier", recording)
    task_dir = make_task("multiclass", n_train=4, n_eval=2)
    spec = ModelSpec("frame", "atst_hear.hear.frame", options={"random_init": "tiny"})
    proto = get_protocol("finetune")
    params = {"epochs": 1, "batch_size": 4, "micro_batch": 4, "warmup_epochs": 0}
    ctx = UnitContext(
        TaskFolder.open(task_dir),
        spec,
        EmbeddingCache(tmp_path / "cache", progress=False),
        proto.resolve_params({**params, "num_workers": 0}),
        0,
        "test",
        tmp_path / "unit",
        progress=False,
    )
    (result,) = proto.run(ctx)
    (used,) = rates
    assert used == pytest.approx(torch.linspace(0, 0.1, len(used)).tolist())
    assert result.details["drop_path"] == 0.1 and result.details["deviations"] == []
    with pytest.raises(ValueError, match=r"'finetune': drop_path must be a number, got True"):
        proto.resolve_params({**params, "num_workers": 0, "drop_path": True})


def test_batched_grid_selects_like_one_model_at_a_time(tmp_path):
    """Early stopping and checkpoint selection of the batched trainer match a plain torch loop
    with checkpoint files (heads without BatchNorm, so the two are numerically identical)."""
    from atst_hear.bench.heads.mlp import head_config
    from atst_hear.bench.heads.reference_mlp import train_reference
    from atst_hear.bench.protocols.data import SceneData
    from atst_hear.bench.protocols.hear_mlp import Evaluator

    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((4, 16)).astype(np.float32)

    def split(n):
        labels = rng.integers(0, 4, n)
        x = centroids[labels] + 1.5 * rng.standard_normal((n, 16)).astype(np.float32)
        return SceneData([str(i) for i in range(n)], x, np.eye(4, dtype=np.float32)[labels])

    train, valid = split(120), split(60)
    evaluator = Evaluator(["top1_acc"], list("abcd"), False, valid)
    confs = grid_points(
        {"task_name": "x"},
        "faster",
        4,
        {"hidden_layers": [0], "max_epochs": [15], "patience": [3], "batch_size": [32]},
    )
    grid = HearMLPClassifier(
        confs, scoring=evaluator.select, greater_is_better=True, random_state=("s",)
    ).fit(train.x, train.y, valid.x, valid.y)
    for index, (result, conf) in enumerate(zip(grid.grid_results_, confs)):
        alone = HeadRun(index, dict(conf), True, 15, 3)
        train_reference(
            alone,
            head_config(conf, 16, 4),
            seeded_generator("s", index),
            train.x,
            train.y,
            valid.x,
            False,
            evaluator.select,
            tmp_path,
            32,
            1,
        )
        assert (alone.best_epoch, alone.best_value) == (result["epoch"], result["validation_score"])


def test_hear_mlp_with_threshold_free_event_scores(make_task, tmp_path):
    task_dir = make_task("event", n_train=8, n_eval=4)
    metadata = json.loads((task_dir / "task_metadata.json").read_text())
    metadata["evaluation"] = ["intersection_f1", "psds1"]  # as a DESED task folder lists them
    (task_dir / "task_metadata.json").write_text(json.dumps(metadata))
    params = {"grid_points": 1, "grid_overrides": {"max_epochs": [6], "hidden_dim": [32]}}
    (result,), _ = run_unit(tmp_path, task_dir, "hear-mlp", params)
    assert result.primary == "intersection_f1"
    assert 0.0 <= result.scores["intersection_f1"] <= 1.0 and 0.0 <= result.scores["psds1"] <= 1.0


def test_nan_validation_stops_but_keeps_a_first_checkpoint_like_lightning():
    """A NaN check (no event detected) ends the run, as Lightning's EarlyStopping does; when it
    is the first check its checkpoint is still the one tested (ModelCheckpoint ranks NaN last)."""
    config = HeadConfig(4, 2)
    heads = BatchedHeads(config, ["xavier_uniform"], [seeded_generator("nan", 0)])
    first_nan = HeadRun(0, {}, maximize=True, max_epochs=10, patience=3)
    first_nan.record(float("nan"), 0, None, heads, 0)
    assert first_nan.stopped and first_nan.snapshot is not None
    assert first_nan.best_value == float("-inf")

    later_nan = HeadRun(0, {}, maximize=True, max_epochs=10, patience=3)
    later_nan.record(0.4, 0, "pp", heads, 0)
    later_nan.record(float("nan"), 1, None, heads, 0)
    assert later_nan.stopped and later_nan.best_value == 0.4 and later_nan.best_epoch == 0
