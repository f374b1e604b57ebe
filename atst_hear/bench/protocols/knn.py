"""``knn``: cosine k-nearest neighbours on standardised frozen scene embeddings.

Nothing is trained and nothing is selected, so it needs no validation split: every non-test
clip is a neighbour candidate, embeddings are standardised with their statistics, and a test
clip's class scores are the cosine-similarity-weighted mean of its ``k`` nearest neighbours'
(multi-hot) labels. A parameter-free sanity check of what the embedding space holds.
"""

from __future__ import annotations

import numpy as np

from ...tasks.scores import compute_scores, score_spec
from .base import FoldResult, Protocol, UnitContext
from .data import FileSelection, load_scene


def knn_scores(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int, chunk: int = 1024
) -> np.ndarray:
    """``[n_test, C]`` similarity-weighted label means of the ``k`` nearest training clips."""
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-8

    def unit(x):
        z = (x - mean) / std
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)

    train_u, k = unit(train_x), min(k, len(train_x))
    out = np.zeros((len(test_x), train_y.shape[1]))
    for start in range(0, len(test_x), chunk):
        similarity = unit(test_x[start : start + chunk]) @ train_u.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.clip(np.take_along_axis(similarity, nearest, axis=1), 1e-6, None)
        out[start : start + chunk] = np.einsum(
            "nk,nkc->nc", weights, train_y[nearest]
        ) / weights.sum(axis=1, keepdims=True)
    return out


class KNN(Protocol):
    name = "knn"
    version = 1
    description = "cosine k-NN (k=10) on standardised frozen embeddings; nothing trained"
    embedding_kind = "scene"
    seeded = False
    defaults = {"k": 10}
    deviations = ("knn: atst-hear's own sanity check; no published recipe to compare with",)

    def supports(self, task) -> str | None:
        return "k-NN runs on scene tasks only" if task.is_event else None

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task = ctx.task
        if score_spec(task.primary_score).event:
            raise ValueError(f"{task.path}: primary score {task.primary_score!r} needs events")
        pool = tuple(s for s in task.splits if s != ctx.fold)
        train = load_scene(ctx.cache, ctx.model, task, FileSelection(pool))
        test = load_scene(ctx.cache, ctx.model, task, FileSelection((ctx.fold,)))
        scores = knn_scores(train.x, train.y, test.x, int(ctx.params["k"]))
        return [
            FoldResult(
                fold=ctx.fold,
                scores=compute_scores(task.evaluation, scores, test.y),
                primary=task.primary_score,
                valid_source="none",
                details={"n_neighbour_pool": len(train.files), "n_test": len(test.files)},
            )
        ]
