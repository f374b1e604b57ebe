"""Linear heads on frozen clip embeddings: the ATST paper's probe and EVAR's.

* :class:`LinearProbeClassifier` (audiossl ``atst/downstream/train_freeze.py``):
  ``BatchNorm1d(affine=False)`` + ``Linear`` with N(0, 0.01) weights and zero bias, SGD with
  momentum and a per-epoch cosine schedule, shuffled batches, a learning-rate grid whose heads
  train together as one batch; the checkpoint with the best validation score over epochs and the
  grid is kept.
* :class:`EvarLinearClassifier` (EVAR ``lineareval.py`` and its ``TorchMLPClassifier2``): inputs
  standardised with the training set's statistics, one ``Linear`` with PyTorch's default
  initialisation, Adam at a constant rate, batches of ``min(max_batch_size, n_train)`` shuffled
  every epoch, selection on accuracy or mAP (ties going to the later epoch) and early stopping.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...options import OptionError
from ...tasks.scores import MAP_ALL_CLASSES, MAP_CONVENTIONS
from .base import (
    TorchHead,
    check_bool,
    check_clip_score,
    check_fit_arrays,
    check_float,
    check_int,
    check_sequence,
    clip_scorer,
    keep_params,
    seed_labels,
)
from .batched import (
    BatchedHeads,
    BatchedOptimizer,
    HeadConfig,
    HeadRun,
    as_tensor,
    best_run,
    cosine_scale,
    fit_heads,
    seeded_generator,
)


def _fit_linear(
    head: TorchHead,
    runs: list[HeadRun],
    heads: BatchedHeads,
    optimizer: BatchedOptimizer,
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    **options: Any,
) -> HeadRun:
    """Train ``heads`` on ``(x_train, y_train, x_valid)``, keep the best run's weights in
    ``head.head_`` and return that run."""
    x_train, y_train, x_valid = (as_tensor(a, head.device) for a in arrays)
    fit_heads(runs, heads, optimizer, x_train, y_train, x_valid, head.multilabel, **options)
    best = best_run(runs)
    head.head_ = BatchedHeads.from_snapshots(heads.config, [best.snapshot], head.device)
    head.n_features_in_ = x_train.shape[1]
    return best


class LinearProbeClassifier(TorchHead):
    """The ATST paper's linear evaluation head, one per learning rate of ``lr_grid``.

    ``lr_grid`` holds the official shell values; each is scaled by
    ``batch_size / lr_reference_batch`` as the official code does. ``scoring`` names the clip
    score selecting the checkpoint (``map_convention`` for mAP). ``random_state`` labels every
    random draw: heads are seeded from ``("paper-linear", *random_state, lr)``, the batch order
    from ``("paper-linear-order", *random_state)``.

    Fitted: ``best_lr_``, ``effective_lr_`` (scaled), ``best_epoch_``, ``best_score_``,
    ``validation_scores_`` (best validation value per learning rate), ``head_``.
    """

    def __init__(
        self,
        lr_grid: tuple[float, ...] | list[float] = (5e-4, 1e-3, 2e-3),
        epochs: int = 100,
        batch_size: int = 1024,
        lr_reference_batch: int = 256,
        momentum: float = 0.9,
        multilabel: bool = False,
        scoring: str = "top1_acc",
        map_convention: str = MAP_ALL_CLASSES,
        random_state: Any = 0,
        device: str = "cpu",
        progress: bool = False,
        description: str = "paper-linear",
    ):
        keep_params(self, locals())

    def _check_params(self) -> None:
        for lr in check_sequence(self, "lr_grid", self.lr_grid):
            check_float(self, "lr_grid", lr)
        for name in ("epochs", "batch_size", "lr_reference_batch"):
            check_int(self, name, getattr(self, name))
        check_float(self, "momentum", self.momentum, 0.0, 1.0, low_inclusive=True)
        check_bool(self, "multilabel", self.multilabel)
        check_clip_score(self, self.scoring)
        if self.map_convention not in MAP_CONVENTIONS:
            raise OptionError(
                f"LinearProbeClassifier: map_convention must be one of {MAP_CONVENTIONS}, "
                f"got {self.map_convention!r}"
            )

    def fit(self, X, y, X_valid=None, y_valid=None) -> LinearProbeClassifier:
        self._check_params()
        X, y, X_valid, y_valid = check_fit_arrays(X, y, X_valid, y_valid, self.multilabel)
        score, maximize = clip_scorer(self, self.scoring, y_valid, self.map_convention)
        labels = seed_labels(self.random_state)
        lrs = [float(lr) for lr in self.lr_grid]
        scale = self.batch_size / self.lr_reference_batch
        generators = [seeded_generator("paper-linear", *labels, lr) for lr in lrs]
        config = HeadConfig(X.shape[1], y.shape[1], input_norm=True)
        heads = BatchedHeads(config, ["normal_0.01"] * len(lrs), generators, self.device)
        optimizer = BatchedOptimizer(
            heads, [lr * scale for lr in lrs], "sgd", momentum=float(self.momentum)
        )
        epochs = int(self.epochs)
        runs = [HeadRun(i, {"lr": lr}, maximize, epochs) for i, lr in enumerate(lrs)]
        best = _fit_linear(
            self,
            runs,
            heads,
            optimizer,
            (X, y, X_valid),
            evaluate=score,
            batch_size=int(self.batch_size),
            shuffle=seeded_generator("paper-linear-order", *labels),
            lr_scale=cosine_scale(epochs),
            progress=self.progress,
            description=self.description,
        )
        self.best_lr_ = best.conf["lr"]
        self.effective_lr_ = best.conf["lr"] * scale
        self.best_epoch_ = best.best_epoch
        self.best_score_ = best.best_value
        self.validation_scores_ = {run.conf["lr"]: run.best_value for run in runs}
        return self


class EvarLinearClassifier(TorchHead):
    """EVAR's linear evaluation head.

    Selects on accuracy (single-label) or mAP over all classes (``multilabel``), whatever the
    task's primary score, as EVAR does; ``early_stop_epochs`` 0 trains all ``epochs``. The
    single-label loss is EVAR's ``-mean(one_hot * log_softmax)``: cross-entropy divided by the
    number of classes. Seeded from ``("evar-linear", *random_state)`` (weights) and
    ``("evar-linear-order", *random_state)`` (batch order).

    Fitted: ``mean_`` and ``scale_`` (the standardisation, scikit-learn's ``StandardScaler``:
    population std, constant features divided by 1), ``scoring_``, ``batch_size_``,
    ``best_epoch_``, ``best_score_``, ``head_``.
    """

    def __init__(
        self,
        lr: float = 3e-4,
        epochs: int = 200,
        early_stop_epochs: int = 20,
        weight_decay: float = 1e-8,
        max_batch_size: int = 200,
        multilabel: bool = False,
        random_state: Any = 0,
        device: str = "cpu",
        progress: bool = False,
        description: str = "evar-linear",
    ):
        keep_params(self, locals())

    def _check_params(self) -> None:
        check_float(self, "lr", self.lr)
        check_int(self, "epochs", self.epochs)
        check_int(self, "early_stop_epochs", self.early_stop_epochs, minimum=0)
        check_float(self, "weight_decay", self.weight_decay, low_inclusive=True)
        check_int(self, "max_batch_size", self.max_batch_size)
        check_bool(self, "multilabel", self.multilabel)

    def fit(self, X, y, X_valid=None, y_valid=None) -> EvarLinearClassifier:
        self._check_params()
        X, y, X_valid, y_valid = check_fit_arrays(X, y, X_valid, y_valid, self.multilabel)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0
        self.scale_ = scale
        self.scoring_ = "mAP" if self.multilabel else "top1_acc"
        score, _ = clip_scorer(self, self.scoring_, y_valid)
        labels = seed_labels(self.random_state)
        lr = float(self.lr)
        heads = BatchedHeads(
            HeadConfig(X.shape[1], y.shape[1]),
            ["torch_default"],
            [seeded_generator("evar-linear", *labels)],
            self.device,
        )
        optimizer = BatchedOptimizer(heads, [lr], "adam", weight_decay=float(self.weight_decay))
        run = HeadRun(
            0,
            {"lr": lr},
            True,
            int(self.epochs),
            patience=int(self.early_stop_epochs) or None,
            ties_improve=True,
        )
        self.batch_size_ = min(int(self.max_batch_size), len(X))
        _fit_linear(
            self,
            [run],
            heads,
            optimizer,
            (self._standardised(X), y, self._standardised(X_valid)),
            evaluate=score,
            batch_size=self.batch_size_,
            shuffle=seeded_generator("evar-linear-order", *labels),
            progress=self.progress,
            description=self.description,
            loss_scale=1.0 if self.multilabel else 1.0 / y.shape[1],
        )
        self.best_epoch_ = run.best_epoch
        self.best_score_ = run.best_value
        return self

    def _standardised(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _inputs(self, X: Any) -> np.ndarray:
        return self._standardised(super()._inputs(X))
