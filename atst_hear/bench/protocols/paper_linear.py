"""``paper-linear``: the ATST paper's linear evaluation on frozen scene embeddings.

Recipe (audiossl ``atst/downstream/train_freeze.py``): ``BatchNorm1d(affine=False)`` +
``Linear`` (N(0, 0.01) weights, zero bias), cross-entropy or BCE, SGD with momentum 0.9 and no weight decay, cosine
schedule over ``epochs`` (100) stepped per epoch, batch 1024, a learning-rate grid whose values
are the official shell values scaled by ``batch_size / 256`` as the official code does. The
checkpoint with the best validation score over epochs and the grid is tested.

Every clip is embedded from its centre ``crop_seconds`` (12 s, unpadded, for training,
validation and test alike), as the official ``FreezingTransform`` (``CentralCrop(sr * 12,
pad=False)``) does; ``crop_seconds: null`` embeds whole clips. The crop is part of the embedding
cache key. The embeddings (the last 12 blocks concatenated in the paper) are the model's
business: set ``n_blocks: 12`` in the suite's ``embedding_options`` for this protocol. The
whole learning-rate grid trains as one batch of heads; k-fold tasks train on all other folds (as the paper does) and
validate on a seeded slice of them, never on the test fold. The head is
:class:`~atst_hear.bench.heads.LinearProbeClassifier`.
"""

from __future__ import annotations

from ...tasks.scores import MAP_PRESENT_CLASSES, compute_scores, score_spec
from ..heads import LinearProbeClassifier
from .base import FoldResult, Protocol, UnitContext
from .data import holdout_rotation, load_scene, select_folds


class PaperLinear(Protocol):
    name = "paper-linear"
    version = 2  # 2: mAP over present classes; validation slices by group
    map_convention = MAP_PRESENT_CLASSES
    published_params = ("epochs", "batch_size", "lr_reference_batch", "momentum", "crop_seconds")
    deviations = (
        "paper-linear: model selection on a validation split or a slice of the training data; "
        "the official code validates on the test fold for US8K and on the eval set for AudioSet",
    )
    description = "ATST paper linear evaluation: frozen encoder, BN(affine=False) + Linear, SGD"
    embedding_kind = "scene"

    class Params(Protocol.Params):
        lr_grid: list[float] = [5e-4, 1e-3, 2e-3]  # shell values; suites set the paper's grid
        epochs: int = 100
        batch_size: int = 1024
        lr_reference_batch: int = 256
        momentum: float = 0.9
        crop_seconds: float | None = 12.0  # None: whole clips
        valid_fraction: float = 0.1
        valid_seed: int = 0

    def embedding_models(self, model, task, params) -> list:
        return [model.with_centre_crop(params["crop_seconds"])]

    def supports(self, task) -> str | None:
        return "event tasks need frame-level heads (use sed or hear-mlp)" if task.is_event else None

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        primary = task.primary_score
        if score_spec(primary).event:
            raise ValueError(f"{task.path}: primary score {primary!r} is not a clip-level score")
        head = LinearProbeClassifier(
            lr_grid=params["lr_grid"],
            epochs=params["epochs"],
            batch_size=params["batch_size"],
            lr_reference_batch=params["lr_reference_batch"],
            momentum=params["momentum"],
            multilabel=task.is_multilabel,
            scoring=primary,
            map_convention=self.map_convention,
            random_state=(ctx.seed, fold.name),
            device=ctx.device,
            progress=ctx.progress,
            description=f"paper-linear {task.name} {fold.name}",
        )
        (model,) = self.embedding_models(ctx.model, task, params)
        train, valid, test = (
            load_scene(ctx.cache, model, task, s) for s in (fold.train, fold.valid, fold.test)
        )
        ctx.log(
            f"training {len(head.lr_grid)} linear heads for {head.epochs} epochs "
            f"({len(train.x)} clips)"
        )
        head.fit(train.x, train.y, valid.x, valid.y)
        return [
            FoldResult(
                fold=fold.name,
                scores=compute_scores(
                    task.evaluation,
                    head.predict_proba(test.x),
                    test.y,
                    map_convention=self.map_convention,
                ),
                primary=primary,
                valid_source=fold.valid_source,
                details={
                    "selected_lr": head.best_lr_,
                    "effective_lr": head.effective_lr_,
                    "best_epoch": head.best_epoch_,
                    "validation_score": head.best_score_,
                    "validation_by_lr": {str(lr): v for lr, v in head.validation_scores_.items()},
                    "crop_seconds": params["crop_seconds"],
                    "n_train": len(train.files),
                    "n_valid": len(valid.files),
                    "n_test": len(test.files),
                },
            )
        ]
