"""hear-eval-kit's downstream MLP, a grid of them trained together, as one estimator.

Each grid point is a hear-eval-kit ``FullyConnectedPrediction`` configuration (``hidden_layers``,
``hidden_dim``, ``dropout``, ``lr``, ``initialization``, ``batch_size``, ``max_epochs``,
``check_val_every_n_epoch``, ``patience``): ``Linear -> BatchNorm1d -> Dropout -> ReLU`` blocks
and a ``Linear`` projection, Adam, training rows in their given order (never reshuffled),
validation every ``check_val_every_n_epoch`` epochs with early stopping after ``patience`` checks
without strict improvement. Points of equal shape and schedule train as one batch of heads
(:mod:`.batched`); the point with the best validation value (ties: the earlier) is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...options import OptionError
from .base import (
    Scorer,
    TorchHead,
    check_bool,
    check_clip_score,
    check_fit_arrays,
    check_sequence,
    clip_scorer,
    keep_params,
    seed_labels,
)
from .batched import (
    INITIALIZATIONS,
    BatchedHeads,
    BatchedOptimizer,
    HeadConfig,
    HeadRun,
    as_tensor,
    best_run,
    fit_heads,
    seeded_generator,
)

TRAINED_KEYS = (
    "hidden_layers",
    "hidden_dim",
    "dropout",
    "lr",
    "initialization",
    "batch_size",
    "max_epochs",
    "check_val_every_n_epoch",
    "patience",
)
# hear-eval-kit grid keys whose other values this head does not implement
FIXED_KEYS = {
    "hidden_norm": "torch.nn.BatchNorm1d",
    "norm_after_activation": False,
    "embedding_norm": "torch.nn.Identity",
    "optim": "torch.optim.Adam",
}
# points that may share one batch of heads: same shape, batches and validation schedule
_BATCH_KEYS = ("hidden_layers", "hidden_dim", "dropout", "batch_size", "check_val_every_n_epoch")


def head_config(conf: Mapping[str, Any], in_dim: int, out_dim: int) -> HeadConfig:
    return HeadConfig(
        in_dim=in_dim,
        out_dim=out_dim,
        hidden_layers=int(conf["hidden_layers"]),
        hidden_dim=int(conf["hidden_dim"]),
        dropout=float(conf["dropout"]),
    )


def check_grid_point(conf: Any, where: str) -> None:
    if not isinstance(conf, Mapping):
        raise OptionError(f"{where} must be a mapping, got {conf!r}")
    missing = [k for k in TRAINED_KEYS if k not in conf]
    unknown = sorted(set(conf) - set(TRAINED_KEYS) - set(FIXED_KEYS))
    if missing or unknown:
        raise OptionError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    for key, supported in FIXED_KEYS.items():
        if key in conf and conf[key] != supported:
            raise OptionError(f"{where}: {key}={conf[key]!r} is not supported (only {supported!r})")
    if conf["initialization"] not in INITIALIZATIONS:
        raise OptionError(
            f"{where}: initialization {conf['initialization']!r} is not one of {INITIALIZATIONS}"
        )
    if not (0 <= float(conf["dropout"]) < 1 and float(conf["lr"]) > 0):
        raise OptionError(f"{where}: needs 0 <= dropout < 1 and lr > 0, got {conf!r}")
    counts = ("hidden_dim", "batch_size", "max_epochs", "check_val_every_n_epoch", "patience")
    if int(conf["hidden_layers"]) < 0 or any(int(conf[k]) < 1 for k in counts):
        raise OptionError(
            f"{where}: hidden_layers must be >= 0 and {list(counts)} >= 1, got {conf!r}"
        )


class HearMLPClassifier(TorchHead):
    """hear-eval-kit's MLP grid: one head per point of ``param_grid``, the best one kept.

    ``scoring`` selects checkpoints and the grid point: a clip-score name (computed on
    ``y_valid``), or a :data:`.base.Scorer` ``(probabilities, logits) -> (value, extra)``, whose
    direction ``greater_is_better`` gives (hear-mlp's event tasks score decoded events and keep the
    best post-processing as ``extra``). Head ``i`` draws its initialisation and dropout from
    ``(*random_state, point_ids[i])``; ``point_ids`` defaults to the grid positions, so a point
    retrained alone with its search number draws as it did in the search.

    Fitted: ``best_index_`` (the kept point's id), ``best_params_``, ``best_score_``,
    ``best_epoch_``, ``best_extra_`` (what the scorer returned with the best check),
    ``time_in_min_`` (its training time), ``grid_results_`` (each point's ``conf``, best
    ``validation_score`` and ``epoch``), ``head_``.
    """

    def __init__(
        self,
        param_grid: Sequence[Mapping[str, Any]],
        multilabel: bool = False,
        scoring: str | Scorer = "top1_acc",
        greater_is_better: bool | None = None,
        random_state: Any = 0,
        point_ids: Sequence[int] | None = None,
        device: str = "cpu",
        progress: bool = False,
        description: str = "hear-mlp",
    ):
        keep_params(self, locals())

    def _check_params(self) -> None:
        grid = check_sequence(self, "param_grid", self.param_grid)
        for i, conf in enumerate(grid):
            check_grid_point(conf, f"HearMLPClassifier: param_grid[{i}]")
        check_bool(self, "multilabel", self.multilabel)
        if callable(self.scoring) and not isinstance(self.greater_is_better, bool):
            raise OptionError(
                "HearMLPClassifier: a callable scoring needs greater_is_better true or false, "
                f"got {self.greater_is_better!r}"
            )
        if not callable(self.scoring):
            check_clip_score(self, self.scoring)
            if self.greater_is_better is not None:
                raise OptionError(
                    f"HearMLPClassifier: scoring {self.scoring!r} knows its direction; leave "
                    "greater_is_better unset"
                )
        if self.point_ids is not None and len(self.point_ids) != len(grid):
            raise OptionError(
                f"HearMLPClassifier: {len(grid)} grid points need {len(grid)} point_ids, got "
                f"{len(self.point_ids)}"
            )

    def fit(self, X, y, X_valid=None, y_valid=None) -> HearMLPClassifier:
        self._check_params()
        X, y, X_valid, y_valid = check_fit_arrays(X, y, X_valid, y_valid, self.multilabel)
        if callable(self.scoring):
            score, maximize = self.scoring, bool(self.greater_is_better)
        else:
            score, maximize = clip_scorer(self, self.scoring, y_valid)
        ids = range(len(self.param_grid)) if self.point_ids is None else self.point_ids
        runs = [
            HeadRun(int(i), dict(c), maximize, int(c["max_epochs"]), int(c["patience"]))
            for i, c in zip(ids, self.param_grid)
        ]
        groups: dict[tuple, list[HeadRun]] = {}
        for run in runs:
            groups.setdefault(tuple(run.conf[k] for k in _BATCH_KEYS), []).append(run)
        labels = seed_labels(self.random_state)
        x_train, y_train = as_tensor(X, self.device), as_tensor(y, self.device)
        x_valid = as_tensor(X_valid, self.device)
        for group in groups.values():
            conf = group[0].conf
            heads = BatchedHeads(
                head_config(conf, X.shape[1], y.shape[1]),
                [run.conf["initialization"] for run in group],
                [seeded_generator(*labels, run.index) for run in group],
                self.device,
            )
            optimizer = BatchedOptimizer(heads, [run.conf["lr"] for run in group], "adam")
            fit_heads(
                group,
                heads,
                optimizer,
                x_train,
                y_train,
                x_valid,
                self.multilabel,
                score,
                batch_size=int(conf["batch_size"]),
                check_every=int(conf["check_val_every_n_epoch"]),
                progress=self.progress,
                description=self.description,
            )
        best = best_run(runs)
        config = head_config(best.conf, X.shape[1], y.shape[1])
        self.head_ = BatchedHeads.from_snapshots(config, [best.snapshot], self.device)
        self.n_features_in_ = X.shape[1]
        self.best_index_ = best.index
        self.best_params_ = best.conf
        self.best_score_ = best.best_value
        self.best_epoch_ = best.best_epoch
        self.best_extra_ = best.best_extra
        self.time_in_min_ = best.time_in_min
        self.grid_results_ = [
            {"conf": r.conf, "validation_score": r.best_value, "epoch": r.best_epoch} for r in runs
        ]
        return self
