"""``paper-linear``: the ATST paper's linear evaluation on frozen scene embeddings.

Recipe (audiossl ``atst/downstream/train_freeze.py``): ``BatchNorm1d(affine=False)`` + ``Linear`` (N(0, 0.01)
weights, zero bias), cross-entropy or BCE, SGD with momentum 0.9 and no weight decay, cosine
schedule over ``epochs`` (100) stepped per epoch, batch 1024, a learning-rate grid whose values
are the official shell values scaled by ``batch_size / 256`` as the official code does. The
checkpoint with the best validation score over epochs and the grid is tested.

Every clip is embedded from its centre ``crop_seconds`` (12 s, unpadded, for training,
validation and test alike), as the official ``FreezingTransform`` (``CentralCrop(sr * 12,
pad=False)``) does; ``crop_seconds: null`` embeds whole clips. The crop is part of the embedding
cache key. The embeddings (the last 12 blocks concatenated in the paper) are the model's
business: set ``n_blocks: 12`` in the suite's ``embedding_options`` for this protocol. The whole learning-rate
grid trains as one batch of heads; k-fold tasks train on all other folds (as the paper does) and
validate on a seeded slice of them, never on the test fold.
"""

from __future__ import annotations

from typing import Any

from ...tasks.scores import MAP_PRESENT_CLASSES, clip_score, compute_scores, score_spec
from .base import FoldResult, Protocol, UnitContext, as_tensor
from .batched import (
    BatchedHeads,
    BatchedOptimizer,
    HeadConfig,
    HeadRun,
    cosine_scale,
    fit_heads,
    head_probabilities,
    seeded_generator,
)
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
    defaults: dict[str, Any] = {
        "lr_grid": [5e-4, 1e-3, 2e-3],  # shell values; suites set the paper's per-task grid
        "epochs": 100,
        "batch_size": 1024,
        "lr_reference_batch": 256,
        "momentum": 0.9,
        "crop_seconds": 12.0,
        "valid_fraction": 0.1,
        "valid_seed": 0,
    }

    def embedding_models(self, model, task, params) -> list:
        return [model.with_centre_crop(params["crop_seconds"])]

    def supports(self, task) -> str | None:
        return "event tasks need frame-level heads (use sed or hear-mlp)" if task.is_event else None

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        (model,) = self.embedding_models(ctx.model, task, params)
        train, valid, test = (
            load_scene(ctx.cache, model, task, s) for s in (fold.train, fold.valid, fold.test)
        )
        primary = task.primary_score
        spec = score_spec(primary)
        if spec.event:
            raise ValueError(f"{task.path}: primary score {primary!r} is not a clip-level score")
        lr_grid = [float(lr) for lr in params["lr_grid"]]
        scale = params["batch_size"] / params["lr_reference_batch"]
        config = HeadConfig(train.x.shape[1], train.y.shape[1], input_norm=True)
        generators = [seeded_generator("paper-linear", ctx.seed, fold.name, lr) for lr in lr_grid]
        heads = BatchedHeads(config, ["normal_0.01"] * len(lr_grid), generators, ctx.device)
        optimizer = BatchedOptimizer(
            heads, [lr * scale for lr in lr_grid], "sgd", momentum=params["momentum"]
        )
        epochs = int(params["epochs"])
        runs = [HeadRun(i, {"lr": lr}, spec.maximize, epochs) for i, lr in enumerate(lr_grid)]
        ctx.log(f"training {len(lr_grid)} linear heads for {epochs} epochs ({len(train.x)} clips)")
        fit_heads(
            runs,
            heads,
            optimizer,
            as_tensor(train.x, ctx.device),
            as_tensor(train.y, ctx.device),
            as_tensor(valid.x, ctx.device),
            task.is_multilabel,
            lambda probs, logits: (
                float(clip_score(primary, probs, valid.y, self.map_convention)),
                None,
            ),
            batch_size=int(params["batch_size"]),
            shuffle=seeded_generator("paper-linear-order", ctx.seed, fold.name),
            lr_scale=cosine_scale(epochs),
            progress=ctx.progress,
            description=f"paper-linear {task.name} {fold.name}",
        )
        best = sorted(runs, key=lambda r: r.best_value, reverse=spec.maximize)[0]
        best_heads = BatchedHeads.from_snapshots(config, [best.snapshot], ctx.device)
        logits = best_heads.predict_logits(as_tensor(test.x, ctx.device))[0]
        probs = head_probabilities(logits, task.is_multilabel).cpu().numpy()
        return [
            FoldResult(
                fold=fold.name,
                scores=compute_scores(
                    task.evaluation, probs, test.y, map_convention=self.map_convention
                ),
                primary=primary,
                valid_source=fold.valid_source,
                details={
                    "selected_lr": best.conf["lr"],
                    "effective_lr": best.conf["lr"] * scale,
                    "best_epoch": best.best_epoch,
                    "validation_score": best.best_value,
                    "validation_by_lr": {str(r.conf["lr"]): r.best_value for r in runs},
                    "crop_seconds": params["crop_seconds"],
                    "n_train": len(train.files),
                    "n_valid": len(valid.files),
                    "n_test": len(test.files),
                },
            )
        ]
