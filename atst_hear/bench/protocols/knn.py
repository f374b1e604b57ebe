"""``knn``: cosine k-nearest neighbours on standardised frozen scene embeddings.

Nothing is trained and nothing is selected, so it needs no validation split: every non-test
clip is a neighbour candidate, embeddings are standardised with their statistics, and a test
clip's class scores are the cosine-similarity-weighted mean of its ``k`` nearest neighbours'
(multi-hot) labels (:class:`~atst_hear.bench.heads.KNNClassifier`). A parameter-free sanity
check of what the embedding space holds.
"""

from __future__ import annotations

from ...tasks.scores import compute_scores, score_spec
from ..heads import KNNClassifier
from .base import FoldResult, Protocol, UnitContext
from .data import FileSelection, load_scene


class KNN(Protocol):
    name = "knn"
    version = 1
    description = "cosine k-NN (k=10) on standardised frozen embeddings; nothing trained"
    embedding_kind = "scene"
    seeded = False

    class Params(Protocol.Params):
        k: int = 10

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
        scores = (
            KNNClassifier(n_neighbors=ctx.params["k"]).fit(train.x, train.y).predict_proba(test.x)
        )
        return [
            FoldResult(
                fold=ctx.fold,
                scores=compute_scores(task.evaluation, scores, test.y),
                primary=task.primary_score,
                valid_source="none",
                details={"n_neighbour_pool": len(train.files), "n_test": len(test.files)},
            )
        ]
