"""The heads as scikit-learn-style estimators, on synthetic arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from atst_hear.bench.cache import EmbeddingCache, ModelSpec
from atst_hear.bench.heads import (
    EvarLinearClassifier,
    HearMLPClassifier,
    KNNClassifier,
    LinearProbeClassifier,
)
from atst_hear.bench.protocols import get_protocol
from atst_hear.bench.protocols.base import UnitContext
from atst_hear.bench.protocols.data import holdout_rotation, load_scene
from atst_hear.bench.protocols.hear_mlp import grid_points
from atst_hear.options import OptionError
from atst_hear.tasks.clip_metrics import top1_accuracy
from atst_hear.tasks.folder import TaskFolder
from atst_hear.tasks.scores import compute_scores

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")
MLP_GRID = grid_points(
    {"task_name": "synthetic"},
    "faster",
    2,
    {"hidden_dim": [16], "max_epochs": [15], "batch_size": [16], "patience": [5], "lr": [1e-2]},
)
FACTORIES = {
    "paper-linear": lambda **kw: LinearProbeClassifier(lr_grid=[0.01, 0.1], epochs=8, **kw),
    "evar-linear": lambda **kw: EvarLinearClassifier(lr=1e-2, epochs=8, max_batch_size=16, **kw),
    "hear-mlp": lambda **kw: HearMLPClassifier(MLP_GRID, **kw),
}
TRAINED = sorted(FACTORIES)


def clusters(n, classes=3, dim=8, multilabel=False, seed=0):
    """Gaussian classes (multi-label: the sum of two class centroids per clip)."""
    rng = np.random.default_rng(seed)
    centroids = 3.0 * np.random.default_rng(99).standard_normal((classes, dim))
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    if multilabel:
        y[np.arange(n), rng.integers(0, classes, n)] = 1.0
    x = y @ centroids + rng.standard_normal((n, dim))
    return x.astype(np.float32), y


TRAIN, VALID, TEST = clusters(90, seed=1), clusters(30, seed=2), clusters(30, seed=3)


def fitted(name, **kw):
    head = FACTORIES[name](**kw) if name in FACTORIES else KNNClassifier(n_neighbors=5)
    if name == "knn":
        return head.fit(*TRAIN)
    return head.fit(*TRAIN, *VALID)


@pytest.mark.parametrize("name", [*TRAINED, "knn"])
def test_heads_learn_and_give_probabilities(name):
    head = fitted(name)
    probs = head.predict_proba(TEST[0])
    assert probs.shape == (30, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert top1_accuracy(probs, TEST[1]) > 0.9  # well-separated classes; chance is 1/3


@pytest.mark.parametrize("name", TRAINED)
def test_multilabel_heads_give_per_class_probabilities(name):
    train, valid = clusters(90, multilabel=True, seed=4), clusters(30, multilabel=True, seed=5)
    head = FACTORIES[name](multilabel=True).fit(*train, *valid)
    probs = head.predict_proba(valid[0])
    assert probs.shape == (30, 3) and ((probs >= 0) & (probs <= 1)).all()
    assert not np.allclose(probs.sum(axis=1), 1.0)  # sigmoids, not a softmax
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-head.decision_function(valid[0]))), 1e-5)


@pytest.mark.parametrize("name", TRAINED)
def test_same_random_state_same_model_and_another_differs(name):
    first = fitted(name, random_state=(3, "fold"))
    again = fitted(name, random_state=(3, "fold"))
    other = fitted(name, random_state=(4, "fold"))
    np.testing.assert_array_equal(first.predict_proba(TEST[0]), again.predict_proba(TEST[0]))
    assert not np.array_equal(first.predict_proba(TEST[0]), other.predict_proba(TEST[0]))


@pytest.mark.parametrize("name", [*TRAINED, "knn"])
def test_predicting_before_fit_raises_not_fitted(name):
    head = FACTORIES[name]() if name in FACTORIES else KNNClassifier()
    with pytest.raises(NotFittedError):
        head.predict_proba(TEST[0])
    assert clone(head).get_params() == head.get_params()  # scikit-learn's estimator contract


@pytest.mark.parametrize("name", [*TRAINED, "knn"])
def test_bad_arrays_are_named(name):
    head = FACTORIES[name]() if name in FACTORIES else KNNClassifier()
    x, y = TRAIN
    valid = VALID if name in FACTORIES else ()
    with pytest.raises(ValueError, match="y has 89 rows but its features have 90"):
        head.fit(x, y[:-1], *valid)
    with pytest.raises(ValueError, match="y must be a 2-D indicator array"):
        head.fit(x, y.argmax(axis=1), *valid)
    with pytest.raises(ValueError, match="X must hold finite numbers"):
        head.fit(np.where(np.arange(8) == 2, np.nan, x), y, *valid)
    fitted_head = fitted(name)
    with pytest.raises(ValueError, match="X has 7 features"):
        fitted_head.predict_proba(TEST[0][:, :7])


@pytest.mark.parametrize("name", TRAINED)
def test_trained_heads_check_targets_and_validation(name):
    head = FACTORIES[name]()
    x, y = TRAIN
    two_labels = y.copy()
    two_labels[5] = 1.0
    with pytest.raises(ValueError, match="multilabel=False needs exactly one class per row; row 5"):
        head.fit(x, two_labels, *VALID)
    with pytest.raises(ValueError, match="X_valid and y_valid are required"):
        head.fit(x, y)
    with pytest.raises(ValueError, match="X_valid has 7 features, X has 8"):
        head.fit(x, y, VALID[0][:, :7], VALID[1])


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: LinearProbeClassifier(epochs=0),
            "LinearProbeClassifier: epochs must be at least 1, got 0",
        ),
        (
            lambda: LinearProbeClassifier(epochs=True),
            r"epochs must be an integer, got True \(bool\)",
        ),
        (
            lambda: LinearProbeClassifier(lr_grid="0.1"),
            "lr_grid must be a non-empty list, got '0.1'",
        ),
        (
            lambda: LinearProbeClassifier(lr_grid=[0.1, -1]),
            "lr_grid must be a finite number > 0, got -1",
        ),
        (
            lambda: LinearProbeClassifier(momentum=1.0),
            "momentum must be a finite number >= 0, < 1, got 1.0",
        ),
        (lambda: LinearProbeClassifier(map_convention="some"), "map_convention must be one of"),
        (lambda: LinearProbeClassifier(scoring="accuracy"), "scoring: unknown score 'accuracy'"),
        (lambda: HearMLPClassifier(MLP_GRID, scoring="psds1"), "scoring must be a clip-level"),
        (
            lambda: EvarLinearClassifier(lr="1e-3"),
            "EvarLinearClassifier: lr must be a finite number > 0, got '1e-3'",
        ),
        (
            lambda: EvarLinearClassifier(early_stop_epochs=-1),
            "early_stop_epochs must be at least 0, got -1",
        ),
        (lambda: EvarLinearClassifier(multilabel=1), "multilabel must be True or False"),
        (
            lambda: KNNClassifier(n_neighbors=0),
            "KNNClassifier: n_neighbors must be at least 1, got 0",
        ),
        (lambda: HearMLPClassifier([]), "param_grid must be a non-empty list"),
        (
            lambda: HearMLPClassifier([{"lr": 1e-3}]),
            r"param_grid\[0\]: missing keys \['hidden_layers'",
        ),
        (
            lambda: HearMLPClassifier([{**MLP_GRID[0], "optim": "torch.optim.SGD"}]),
            "optim='torch.optim.SGD' is not supported",
        ),
        (
            lambda: HearMLPClassifier([{**MLP_GRID[0], "initialization": "zeros"}]),
            "initialization 'zeros' is not one of",
        ),
        (
            lambda: HearMLPClassifier(MLP_GRID, scoring=lambda p, lg: (0.0, None)),
            "needs greater_is_better",
        ),
        (
            lambda: HearMLPClassifier(MLP_GRID, point_ids=[0]),
            "2 grid points need 2 point_ids, got 1",
        ),
    ],
)
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises(OptionError, match=message):
        make()


def test_set_params_is_checked_again_at_fit():
    head = LinearProbeClassifier(lr_grid=[0.1], epochs=2).set_params(epochs=-3)
    with pytest.raises(OptionError, match="epochs must be at least 1, got -3"):
        head.fit(*TRAIN, *VALID)


def test_linear_probe_keeps_the_best_learning_rate():
    head = fitted("paper-linear")
    assert set(head.validation_scores_) == {0.01, 0.1}
    assert head.best_score_ == max(head.validation_scores_.values())
    assert head.validation_scores_[head.best_lr_] == head.best_score_
    assert head.effective_lr_ == head.best_lr_ * 1024 / 256


def test_hear_mlp_retrains_a_point_alone_as_in_the_search():
    """A point retrained alone with its search number draws the same heads (hear-mlp's other
    folds reuse the first fold's selection this way)."""
    grid = fitted("hear-mlp", random_state=(0, "fold"))
    index = grid.best_index_
    alone = HearMLPClassifier([grid.best_params_], random_state=(0, "fold"), point_ids=[index]).fit(
        *TRAIN, *VALID
    )
    np.testing.assert_array_equal(alone.predict_proba(TEST[0]), grid.predict_proba(TEST[0]))
    assert alone.grid_results_[0] == grid.grid_results_[index]


def test_paper_linear_protocol_result_is_its_estimators(make_task, tmp_path):
    task = TaskFolder.open(make_task("multiclass"))
    protocol = get_protocol("paper-linear")
    params = protocol.resolve_params({"epochs": 12, "lr_grid": [0.01, 0.1]})
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    ctx = UnitContext(task, BASELINE, cache, params, 5, "test", tmp_path, progress=False)
    (result,) = protocol.run(ctx)
    (fold,) = holdout_rotation(task, params["valid_fraction"], params["valid_seed"])
    (model,) = protocol.embedding_models(BASELINE, task, params)
    train, valid, test = (
        load_scene(cache, model, task, s) for s in (fold.train, fold.valid, fold.test)
    )
    head = LinearProbeClassifier(
        lr_grid=[0.01, 0.1],
        epochs=12,
        scoring=task.primary_score,
        map_convention=protocol.map_convention,
        random_state=(5, fold.name),
    ).fit(train.x, train.y, valid.x, valid.y)
    expected = compute_scores(
        task.evaluation, head.predict_proba(test.x), test.y, map_convention=protocol.map_convention
    )
    assert result.scores == expected
    assert (result.details["selected_lr"], result.details["best_epoch"]) == (
        head.best_lr_,
        head.best_epoch_,
    )
