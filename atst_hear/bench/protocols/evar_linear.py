"""``evar-linear``: EVAR's linear evaluation (nttcslab/eval-audio-repr ``lineareval.py``).

Most published linear numbers of ATST-Clip and ATST-Frame are EVAR's (its README's results
table), so this protocol reproduces its recipe on frozen scene embeddings, following
``lineareval.py`` and the ``TorchMLPClassifier2`` it trains (daisukelab/general-learning
``MLP/torch_mlp_clf2.py``):

* embeddings standardised with the training set's mean and (population) standard deviation;
* one ``nn.Linear`` with PyTorch's default initialisation;
* loss: ``-mean(one_hot * log_softmax)`` for single-label tasks (cross-entropy divided by the
  number of classes), binary cross-entropy for multi-label tasks;
* Adam (betas 0.9/0.999, eps 1e-8, weight decay 1e-8), a constant learning rate (EVAR's
  ``lr_lineareval``: 3e-4 in ``config/atst.yaml``, 3e-5 in ``config/atst_frame.yaml``; set it
  per model in the suite), batches of min(200, n_train) shuffled every epoch;
* up to 200 epochs, validated every epoch on accuracy (single-label) or mAP over all classes
  (multi-label); the best epoch is kept, ties going to the later one, and training stops after
  20 epochs without improvement;
* seeds 42, 43 and 44 in EVAR's runs (set them in the suite);
* clips cropped or zero-padded to EVAR's per-task length before embedding (``evar/ds_tasks.py``,
  ``evar/data.py``): training and validation clips to a random window (drawn once per clip from
  its name, where EVAR draws one per run), test clips to their start. Where every clip of a task
  already lasts that long (ESC-50, US8K, SPC-V2, NSynth, GTZAN as our converters write them),
  the whole clip is the same input and is embedded as it is.

Model selection never sees the test split: tasks with a validation split use it; k-fold tasks
train on all other folds and validate on a seeded slice of them (by group where the task records
groups), where EVAR draws an unseeded file-level 10 % slice; this and the other departures from
EVAR are listed in :attr:`EvarLinear.deviations` and in each result's ``details``. The head is
:class:`~atst_hear.bench.heads.EvarLinearClassifier`.
"""

from __future__ import annotations

from ...tasks.scores import MAP_ALL_CLASSES, compute_scores, score_spec
from ..cache import ModelSpec
from ..heads import EvarLinearClassifier
from .base import FoldResult, Protocol, UnitContext
from .data import holdout_rotation, load_scene, select_folds

# EVAR's unit duration per task (``evar/ds_tasks.py`` ``_defs``), by our converters' task names:
# each clip is cropped (train and valid: a random window; test: the start) or zero-padded to it
# before embedding. Where our clips all last exactly that long, embedding them whole is the same.
EVAR_UNIT_SECONDS = {
    "esc50": 5.0,
    "us8k": 4.0,
    "fsd50k": 7.6358,
    "gtzan_filtered": 30.0,
    "gtzan_folds": 30.0,
    "nsynth_family": 4.0,
    "spcv2_35": 1.0,
    "voxceleb1": 8.2,
    "audioset_20k": 10.0,
}
EVAR_MAX_BATCH = 200


def needs_crop(task_name: str, clip_seconds: float | None) -> bool:
    """Whether EVAR's crop changes this task's clips (not where all last its unit length)."""
    unit = EVAR_UNIT_SECONDS.get(task_name)
    return unit is not None and (clip_seconds is None or abs(clip_seconds - unit) >= 1e-3)


def evar_models(model: ModelSpec, task, crop: bool) -> tuple[ModelSpec, ModelSpec]:
    """``(train and valid, test)`` model specs: EVAR's random and start windows where they
    change the input, the model as it is otherwise."""
    if not crop or not needs_crop(task.name, task.sample_duration):
        return model, model
    unit = EVAR_UNIT_SECONDS[task.name]
    return model.with_window_crop("random", unit), model.with_window_crop("start", unit)


def crop_deviations(task_name: str, clip_seconds: float | None, crop: bool) -> list[str]:
    """How the input departs from EVAR's crop for this task."""
    if task_name not in EVAR_UNIT_SECONDS:
        return [f"evar-linear: EVAR defines no clip length for task {task_name!r}; clips whole"]
    if crop or not needs_crop(task_name, clip_seconds):
        return []
    length = "variable-length" if clip_seconds is None else f"{clip_seconds:g} s"
    unit = EVAR_UNIT_SECONDS[task_name]
    return [
        f"evar-linear: {task_name} clips ({length}) embedded whole (crop: false); EVAR crops "
        f"or pads them to {unit:g} s"
    ]


class EvarLinear(Protocol):
    name = "evar-linear"
    version = 1
    description = "EVAR linear evaluation: standardised frozen embeddings, Linear, Adam, 200 epochs"
    embedding_kind = "scene"
    map_convention = MAP_ALL_CLASSES

    class Params(Protocol.Params):
        lr: float = 3e-4
        epochs: int = 200
        early_stop_epochs: int = 20
        weight_decay: float = 1e-8
        max_batch_size: int = EVAR_MAX_BATCH
        valid_fraction: float = 0.1
        valid_seed: int = 0
        crop: bool = True  # EVAR's per-task crop (EVAR_UNIT_SECONDS)

    published_params = ("epochs", "early_stop_epochs", "weight_decay", "max_batch_size", "crop")
    deviations = (
        "evar-linear: tasks without a validation split validate on a seeded slice of the "
        "training data; EVAR's slice is unseeded and file-level (train_test_sure_split)",
    )

    def supports(self, task) -> str | None:
        return "EVAR's linear evaluation runs on scene tasks only" if task.is_event else None

    def embedding_models(self, model, task, params) -> list[ModelSpec]:
        fit_model, test_model = evar_models(model, task, bool(params["crop"]))
        return [fit_model] if fit_model is test_model else [fit_model, test_model]

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        if score_spec(task.primary_score).event:
            raise ValueError(f"{task.path}: primary score {task.primary_score!r} needs events")
        head = EvarLinearClassifier(
            lr=params["lr"],
            epochs=params["epochs"],
            early_stop_epochs=params["early_stop_epochs"],
            weight_decay=params["weight_decay"],
            max_batch_size=params["max_batch_size"],
            multilabel=task.is_multilabel,
            random_state=(ctx.seed, fold.name),
            device=ctx.device,
            progress=ctx.progress,
            description=f"evar-linear {task.name} {fold.name}",
        )
        fit_model, test_model = evar_models(ctx.model, task, params["crop"])
        train = load_scene(ctx.cache, fit_model, task, fold.train)
        valid = load_scene(ctx.cache, fit_model, task, fold.valid)
        test = load_scene(ctx.cache, test_model, task, fold.test)
        ctx.log(f"training a linear head for up to {head.epochs} epochs ({len(train.x)} clips)")
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
                primary=task.primary_score,
                valid_source=fold.valid_source,
                details={
                    "lr": float(head.lr),
                    "best_epoch": head.best_epoch_,
                    "selection_score": head.scoring_,
                    "validation_score": head.best_score_,
                    "batch_size": head.batch_size_,
                    "evar_unit_seconds": EVAR_UNIT_SECONDS.get(task.name),
                    "cropped": fit_model is not ctx.model,
                    "deviations": crop_deviations(task.name, task.sample_duration, params["crop"]),
                    "n_train": len(train.files),
                    "n_valid": len(valid.files),
                    "n_test": len(test.files),
                },
            )
        ]
