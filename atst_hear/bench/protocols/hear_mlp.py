"""``hear-mlp``: hear-eval-kit's downstream predictor, grid and scoring, computed faster.

What is kept from hear-eval-kit 2021.1.3 (``hear-contract.md`` §3.3-3.7):

* the grid (``default`` / ``fast`` / ``faster``, task overrides from ``TASK_SPECIFIC_PARAM_GRID``
  and ``evaluation_params``), enumerated in scikit-learn ``ParameterGrid`` order and shuffled
  with Python's ``random`` seeded 42; the first ``grid_points`` (8) are searched;
* the fold rotation (k-fold: test i, valid i+1, train the rest), grid search on the first split
  only, then the best configuration retrained on every split;
* the predictor (``Linear -> BatchNorm1d -> Dropout(0.1) -> ReLU`` blocks, xavier init with
  linear/ReLU gains, softmax + cross-entropy or sigmoid + BCE), Adam at the grid's rate, batch
  1024, training rows in one fixed order (files shuffled once with ``random.Random(0)``, frames of
  a file contiguous, never reshuffled);
* validation every ``check_val_every_n_epoch`` epochs on the primary score (or the loss when
  ``use_scoring_for_early_stopping`` is false), early stopping after ``patience`` checks without
  strict improvement, testing the best check's weights;
* event tasks: every frame is a training instance; events decoded with a 0.5 threshold after a
  median filter, runs shorter than ``min_duration`` dropped, the post-processing grid searched at
  every check and the best check's choice used at test time;
* ``test.predicted-scores.json`` in hear-eval-kit's layout.

What is faster: the grid's heads train together (:class:`~atst_hear.bench.heads.HearMLPClassifier`,
on :mod:`atst_hear.bench.heads.batched`), embeddings stay in memory,
checkpoints are in-memory snapshots of the best check, and early-stopped heads leave the batch.

Known differences: initialisation and dropout draw from per-head generators seeded from
(seed, fold, grid point) rather than Lightning's global seed, so scores match hear-eval-kit's
distribution, not its exact numbers; post-processing selection respects ``maximize`` (hear-eval-kit
always picks the largest value).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...fileio import atomic_output, write_json_atomic
from ...tasks.scores import EventPredictions, compute_scores, score_spec
from ..heads import HearMLPClassifier
from ..heads.base import main_value
from ..heads.batched import head_losses
from .base import ALL_FOLDS, FoldResult, Protocol, UnitContext
from .data import (
    EventData,
    Fold,
    SceneData,
    events_as_dicts,
    hear_rotation,
    load_events,
    load_scene,
)

PARAM_GRID: dict[str, list] = {
    "hidden_layers": [1, 2],
    "hidden_dim": [1024],
    "dropout": [0.1],
    "lr": [3.2e-3, 1e-3, 3.2e-4, 1e-4],
    "patience": [20],
    "max_epochs": [500],
    "check_val_every_n_epoch": [3],
    "batch_size": [1024],
    "hidden_norm": ["torch.nn.BatchNorm1d"],
    "norm_after_activation": [False],
    "embedding_norm": ["torch.nn.Identity"],
    "initialization": ["xavier_uniform", "xavier_normal"],
    "optim": ["torch.optim.Adam"],
}
GRIDS = {
    "default": PARAM_GRID,
    "fast": {**PARAM_GRID, "max_epochs": [10, 50], "check_val_every_n_epoch": [3, 10]},
    "faster": {
        **PARAM_GRID,
        "hidden_layers": [0, 1],
        "hidden_dim": [64, 128],
        "patience": [1, 3],
        "max_epochs": [10],
        "check_val_every_n_epoch": [1],
    },
}
TASK_SPECIFIC_PARAM_GRID = {"dcase2016_task2": {"check_val_every_n_epoch": [10]}}
EVENT_POSTPROCESSING_GRID = {"median_filter_ms": [250], "min_duration": [125, 250]}
EVENT_THRESHOLD = 0.5
GRID_SEED = 42
ROW_ORDER_SEED = 0

Postprocessing = tuple[tuple[str, Any], ...]


def grid_points(
    metadata: Mapping[str, Any], grid: str, n_points: int, overrides=None
) -> list[dict]:
    """hear-eval-kit's grid points for a task, in its order (``overrides`` replace value lists)."""
    from sklearn.model_selection import ParameterGrid

    if grid not in GRIDS:
        raise ValueError(f"unknown hear-mlp grid {grid!r}; known: {sorted(GRIDS)}")
    final = copy.deepcopy(GRIDS[grid])
    final.update(TASK_SPECIFIC_PARAM_GRID.get(metadata["task_name"], {}))
    final.update(metadata.get("evaluation_params", {}).get("task_specific_param_grid", {}))
    for key, values in (overrides or {}).items():
        if key not in final:
            raise ValueError(
                f"hear-mlp grid_overrides: unknown key {key!r}; known: {sorted(final)}"
            )
        final[key] = list(values) if isinstance(values, list | tuple) else [values]
    confs = list(ParameterGrid(final))
    random.Random(GRID_SEED).shuffle(confs)
    return confs[:n_points]


def postprocessing_grid(metadata: Mapping[str, Any]) -> list[Postprocessing]:
    from sklearn.model_selection import ParameterGrid

    grid = metadata.get("evaluation_params", {}).get(
        "event_postprocessing_grid", EVENT_POSTPROCESSING_GRID
    )
    return [tuple(point.items()) for point in ParameterGrid(grid)]


# --- evaluation of predictions ---------------------------------------------------------------
@dataclass
class Evaluator:
    """Scores one split's predictions the way hear-eval-kit does."""

    names: list[str]
    labels: list[str]
    multilabel: bool
    data: SceneData | EventData
    postprocessing: list[Postprocessing] = field(default_factory=list)
    use_scoring: bool = True

    @property
    def is_event(self) -> bool:
        return isinstance(self.data, EventData)

    @property
    def maximize(self) -> bool:
        return score_spec(self.names[0]).maximize if self.use_scoring else False

    def loss(self, logits: torch.Tensor) -> float:
        y = torch.as_tensor(self.data.y, device=logits.device)
        return float(head_losses(logits[None], y, self.multilabel)[0])

    def _event_inputs(
        self, probs: np.ndarray, pp: Postprocessing, names: Sequence[str]
    ) -> EventPredictions:
        """Events decoded with ``pp``; frame scores (smoothed by the same median filter) only
        when one of ``names`` needs them."""
        frames = self.data.frame_scores(probs, self.labels)
        settings = dict(pp)
        events = frames.decode(
            EVENT_THRESHOLD,
            extent="centres",
            median_filter_ms=settings["median_filter_ms"],
            min_duration_ms=settings["min_duration"],
        )
        smoothed = None
        if any(score_spec(n).frame_scores for n in names):
            width = int(round(settings["median_filter_ms"] / max(self.data.hop_ms, 1e-9)))
            smoothed = frames.median_filtered(width)
        return EventPredictions(
            events, self.data.reference, self.labels, smoothed, self.data.durations_ms
        )

    def select(self, probs: np.ndarray, logits: torch.Tensor) -> tuple[float, Postprocessing]:
        """Validation value (primary score or loss) and the best post-processing."""
        if not self.use_scoring:
            return self.loss(logits), self.postprocessing[0] if self.is_event else ()
        name = self.names[0]
        if not self.is_event:
            return main_value(score_spec(name).compute(probs, self.data.y)), ()
        sign = 1.0 if self.maximize else -1.0
        raw = {}
        for pp in self.postprocessing:
            raw[pp] = main_value(score_spec(name).compute(self._event_inputs(probs, pp, [name])))
        # hear-eval-kit ranks post-processings with NaN as 0 but logs the raw score, so a NaN
        # (nothing detected) reaches early stopping, which ends the run there
        best_pp = max(raw, key=lambda pp: (sign * (0.0 if np.isnan(raw[pp]) else raw[pp]), pp))
        return raw[best_pp], best_pp

    def test_scores(self, probs: np.ndarray, logits: torch.Tensor, pp: Postprocessing) -> dict:
        """``{"loss", <score>, <score>_<sub>, ...}`` and the predicted events (event tasks)."""
        if self.is_event:
            inputs = self._event_inputs(probs, pp, self.names)
            scores = compute_scores(self.names, inputs)
            return {"loss": self.loss(logits), **scores}, inputs.events
        return {"loss": self.loss(logits), **compute_scores(self.names, probs, self.data.y)}, None


# --- the protocol --------------------------------------------------------------------------
class HearMLP(Protocol):
    name = "hear-mlp"
    version = 1
    description = "hear-eval-kit's MLP grid on frozen embeddings (HEAR leaderboard protocol)"
    embedding_kind = "task"

    class Params(Protocol.Params):
        grid: str = "default"
        grid_points: int = 8
        grid_overrides: dict[str, Any] = {}  # e.g. {"max_epochs": [30]} for quick runs

    published_params = ("grid", "grid_points", "grid_overrides")

    def fold_units(self, task, params) -> list[str]:
        # the grid is searched on the first split and reused by the others: one unit
        return [ALL_FOLDS]

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        folds = hear_rotation(task)
        confs = grid_points(
            task.metadata, params["grid"], int(params["grid_points"]), params["grid_overrides"]
        )
        grid_file = ctx.workdir / "grid.json"
        fold_files = {fold.name: ctx.workdir / f"fold-{fold.name}.json" for fold in folds}
        if not grid_file.is_file():
            ctx.log(f"grid search: {len(confs)} points on split {folds[0].name}")
            head, test = self._fit(ctx, folds[0], confs, None, f"hear-mlp grid {task.name}")
            write_json_atomic(fold_files[folds[0].name], self._test(ctx, head, test, folds[0]))
            write_json_atomic(
                grid_file,
                {
                    "best_index": head.best_index_,
                    "conf": head.best_params_,
                    "postprocessing": [list(p) for p in head.best_extra_],
                    "grid": head.grid_results_,
                },
            )
        grid = json.loads(grid_file.read_text())
        for fold in folds[1:]:
            if fold_files[fold.name].is_file():
                continue
            ctx.log(f"training the selected configuration on split {fold.name}")
            head, test = self._fit(
                ctx, fold, [grid["conf"]], [grid["best_index"]], f"hear-mlp {task.name} {fold.name}"
            )
            write_json_atomic(fold_files[fold.name], self._test(ctx, head, test, fold))
        per_fold = {f.name: json.loads(fold_files[f.name].read_text()) for f in folds}
        write_json_atomic(
            ctx.workdir / "test.predicted-scores.json", self._hear_layout(ctx, per_fold, grid)
        )
        return [
            FoldResult(
                fold=f.name,
                scores=per_fold[f.name]["scores"],
                primary=task.primary_score,
                valid_source=f.valid_source,
                details={
                    "selected": _readable_conf(grid["conf"]),
                    "epoch": per_fold[f.name]["hear"]["epoch"],
                    "validation_score": per_fold[f.name]["hear"]["validation_score"],
                },
            )
            for f in folds
        ]

    def _fit(
        self,
        ctx: UnitContext,
        fold: Fold,
        confs: list[dict],
        point_ids: list[int] | None,
        description: str,
    ) -> tuple[HearMLPClassifier, Evaluator]:
        """The grid (or the selected point) trained on ``fold``, and the fold's test split."""
        task = ctx.task
        load = load_events if task.is_event else load_scene
        train, valid, test = (
            load(ctx.cache, ctx.model, task, s) for s in (fold.train, fold.valid, fold.test)
        )
        train = _hear_row_order(train)
        use_scoring = bool(task.metadata.get("use_scoring_for_early_stopping", True))
        pp = postprocessing_grid(task.metadata) if task.is_event else []
        if task.is_event and not use_scoring and len(pp) != 1:
            raise ValueError(
                f"{task.path}: use_scoring_for_early_stopping=false needs exactly one "
                f"post-processing point, got {len(pp)}"
            )

        def evaluator(data):
            return Evaluator(
                task.evaluation, task.labels, task.is_multilabel, data, pp, use_scoring
            )

        valid_scores = evaluator(valid)
        head = HearMLPClassifier(
            confs,
            multilabel=task.is_multilabel,
            scoring=valid_scores.select,
            greater_is_better=valid_scores.maximize,
            random_state=(ctx.seed, fold.name),
            point_ids=point_ids,
            device=ctx.device,
            progress=ctx.progress,
            description=description,
        )
        head.fit(train.x, train.y, valid.x, valid.y)
        return head, evaluator(test)

    def _test(self, ctx: UnitContext, head: HearMLPClassifier, test: Evaluator, fold: Fold) -> dict:
        logits = head.decision_function(test.data.x)
        probs = head.predict_proba(test.data.x)
        # the loss on the device, as the logits were computed
        logits_on_device = torch.as_tensor(logits, device=ctx.device)
        scores, events = test.test_scores(probs, logits_on_device, head.best_extra_)
        hear = {
            "test_loss": scores["loss"],
            "test_score": scores[test.names[0]],
            **{f"test_{k}": v for k, v in scores.items() if k != "loss"},
            "validation_score": head.best_score_,
            "epoch": head.best_epoch_,
            "time_in_min": head.time_in_min_,
        }
        arrays = {"target": test.data.y, "prediction": probs, "prediction_logit": logits}
        path = ctx.workdir / f"{fold.name}.predictions.npz"
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        if events is not None:
            write_json_atomic(
                ctx.workdir / f"{fold.name}.predicted-events.json", events_as_dicts(events)
            )
        return {"scores": {k: v for k, v in scores.items() if k != "loss"}, "hear": hear}

    def _hear_layout(self, ctx: UnitContext, per_fold: dict, grid: dict) -> dict:
        layout: dict[str, Any] = {name: result["hear"] for name, result in per_fold.items()}
        if len(per_fold) > 1:
            frame = pd.DataFrame.from_dict(layout, orient="index")
            aggregated = {}
            # pandas std (ddof 1), as hear-eval-kit: NaN where a fold's d_prime is inf
            with np.errstate(invalid="ignore"):
                for column in frame:
                    aggregated[f"{column}_mean"] = float(frame[column].mean())
                    aggregated[f"{column}_std"] = float(frame[column].std())
            layout["aggregated_scores"] = aggregated
        layout.update(
            {
                "hparams": _readable_conf(grid["conf"]),
                "postprocessing": grid["postprocessing"],
                "score_mode": "max" if score_spec(ctx.task.primary_score).maximize else "min",
                "embedding_path": str(
                    ctx.cache.split_dir(
                        ctx.model, ctx.task, ctx.task.splits[0], self.kind_for(ctx.task)
                    ).parent
                ),
            }
        )
        return layout


def _readable_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    names = {
        "xavier_uniform": "torch.nn.init.xavier_uniform_",
        "xavier_normal": "torch.nn.init.xavier_normal_",
    }
    return {k: names.get(v, v) if isinstance(v, str) else v for k, v in conf.items()}


def _hear_row_order(data: SceneData | EventData) -> SceneData | EventData:
    """Training rows as hear-eval-kit lays them out: files shuffled once, frames contiguous."""
    order = list(range(len(data.files)))
    random.Random(ROW_ORDER_SEED).shuffle(order)
    if isinstance(data, SceneData):
        return SceneData([data.files[i] for i in order], data.x[order], data.y[order])
    starts = np.concatenate([[0], np.cumsum(data.lengths)[:-1]])
    rows = np.concatenate([np.arange(starts[i], starts[i] + data.lengths[i]) for i in order])
    return EventData(
        [data.files[i] for i in order],
        data.x[rows],
        data.y[rows],
        data.timestamps[rows],
        data.lengths[order],
        data.reference,
        data.durations_ms,
        data.hop_ms,
    )
