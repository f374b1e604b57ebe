"""``finetune``: the ATST paper's fine-tuning of the whole encoder on a scene task.

Recipe (``docs/fidelity.md``), run by the shared stack :mod:`atst_hear.finetuning`:

* model: the pre-trained (teacher) encoder, last block after the final norm pooled (ATST-Clip:
  ``[cls, token mean]``; ATST-Frame: token mean), then ``BatchNorm1d(affine=False)`` +
  ``Linear`` (N(0, 0.01) weights, zero bias);
* input: the centre ``crop_seconds`` (12 s, ``FinetuneTrainTransform`` /
  ``FinetuneEvalTransform``) of every clip, unpadded, for training, validation and test alike;
* stochastic depth ``drop_path`` 0.1 (linear in depth, as the official encoders' default
  ``drop_path_rate``) while training;
* SGD, momentum 0.9, no weight decay, gradient norm clipped at 3, per-step linear warm-up then
  cosine to 1e-6, learning rate = shell value x ``batch_size / 256`` (total batch 512, reached
  with gradient accumulation over ``micro_batch``-sized steps);
* layer-wise learning-rate decay 0.75: embeddings ``0.75^depth``, block ``i`` ``0.75^(depth-i)``,
  final norm 0.75, head 1;
* ``mixup_alpha`` set: mixup in the normalised log-mel domain against a memory bank of the
  ``mixup_memory`` (5000) latest clips, labels mixed (and BCE loss), clips of other lengths mixed
  at a random offset; then random-resize-crop (canvas F x 1, T x 1.5, scales 0.6-1.5, bicubic),
  as the paper does for non-AudioSet tasks; unset: no augmentation;
* ``balanced_sampling``: draw training clips with the official label-balanced weights, with
  replacement (AudioSet-2M), instead of shuffled passes.

Difference: the checkpoint tested is the best on the validation split (the official code tests
the last one for these tasks), because this benchmark selects on validation only. The memory
bank is filled batch by batch (the official one clip by clip in each loader worker). The unit
saves its training state (mixup bank included) after every epoch and resumes from it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ...fileio import atomic_output
from ...finetuning import (
    ClipDataset,
    FinetuneAugment,
    PadTo,
    TaskClassifier,
    balanced_sampler,
    probabilities,
    set_learning_rate,
    set_stochastic_depth,
    sgd_with_layer_decay,
    training_loss,
)
from ...models.checkpoints import load_encoder
from ...models.encoder import ATSTConfig, ATSTEncoder
from ...tasks.folder import TaskFolder
from ...tasks.scores import MAP_PRESENT_CLASSES, clip_score, compute_scores, score_spec
from ..cache import ModelSpec, audio_source
from ..heads.batched import seeded_generator
from .base import FoldResult, Protocol, UnitContext
from .data import FileSelection, holdout_rotation, multi_hot, select_folds

_FLAVOUR_OF_MODULE = {
    "atst_hear.hear.frame": "frame",
    "atst_hear.hear.c2f": "frame",
    "atst_hear.hear.clip": "clip",
}


def trainable_encoder(spec: ModelSpec) -> ATSTEncoder:
    """The encoder behind a suite model: its checkpoint, or ``random_init`` for tests/demos."""
    options = spec.options
    if spec.checkpoint:
        encoder = load_encoder(
            spec.checkpoint,
            encoder=options.get("encoder", "teacher"),
            trust_checkpoint=options.get("trust_checkpoint", False),
        )
    elif options.get("random_init"):
        flavour = _FLAVOUR_OF_MODULE.get(spec.module)
        if flavour is None:
            raise ValueError(f"finetune: cannot tell the ATST flavour of module {spec.module!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(options.get("seed", 0)))
            encoder = ATSTEncoder(ATSTConfig.preset(flavour, str(options["random_init"])))
    else:
        raise ValueError(
            f"finetune: model {spec.name!r} needs an ATST checkpoint (or random_init) to train; "
            f"module {spec.module} alone is not enough"
        )
    return encoder.train()


class Finetune(Protocol):
    name = "finetune"
    version = 2  # 2: also mAP over present classes; validation slices by group; drop path 0.1
    map_convention = MAP_PRESENT_CLASSES
    description = "ATST paper fine-tuning: whole encoder, layer-wise lr decay 0.75, SGD, mixup+RRC"
    embedding_kind = None
    deviations = (
        "finetune: the best validation epoch is tested (official: the last epoch; AudioSet: "
        "the best on the eval set)",
        "finetune: the mixup bank is filled batch by batch (official: clip by clip in each "
        "data-loader worker)",
    )
    published_params = (
        "batch_size",
        "lr_reference_batch",
        "layer_decay",
        "momentum",
        "grad_clip",
        "mixup_memory",
        "crop_seconds",
        "drop_path",
    )

    class Params(Protocol.Params):
        lr: float = 0.5  # shell value; effective = lr * batch_size / 256
        epochs: int = 50
        warmup_epochs: int = 5
        batch_size: int = 512
        micro_batch: int = 64
        lr_reference_batch: int = 256
        layer_decay: float = 0.75
        momentum: float = 0.9
        grad_clip: float = 3.0
        mixup_alpha: float | None = None  # None: no mixup
        mixup_memory: int = 5000
        mixup_ratio: float = Field(1.0, ge=0, le=1)  # share of clips mixed (official --mixup_ratio)
        crop_seconds: float = Field(12.0, gt=0)
        drop_path: float = 0.1  # the official encoders' drop_path_rate, active while fine-tuning
        balanced_sampling: bool = False
        val_every: int = 1
        num_workers: int = 2
        valid_fraction: float = 0.1
        valid_seed: int = 0

    def supports(self, task) -> str | None:
        return "finetune runs on scene tasks (use sed for events)" if task.is_event else None

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        _check_params(params)
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        if score_spec(task.primary_score).event:
            raise ValueError(f"{task.path}: primary score {task.primary_score!r} needs events")
        model = TaskClassifier(
            set_stochastic_depth(trainable_encoder(ctx.model), params["drop_path"]),
            len(task.labels),
            generator=seeded_generator("finetune-head", ctx.seed, fold.name),
        ).to(ctx.device)
        train, valid, test = (
            clip_dataset(task, s, params) for s in (fold.train, fold.valid, fold.test)
        )
        best_epoch, best_value = self._train(ctx, model, train, valid)
        model.load_state_dict(torch.load(ctx.workdir / "best.pt", weights_only=True))
        probs = self._predict(ctx, model, test)
        return [
            FoldResult(
                fold=fold.name,
                scores=compute_scores(
                    task.evaluation, probs, test.targets, map_convention=self.map_convention
                ),
                primary=task.primary_score,
                valid_source=fold.valid_source,
                details={
                    "best_epoch": best_epoch,
                    "validation_score": best_value,
                    "crop_seconds": float(params["crop_seconds"]),
                    "balanced_sampling": bool(params["balanced_sampling"]),
                    "drop_path": float(params["drop_path"]),
                    "deviations": unit_deviations(params),
                    "n_train": len(train),
                    "n_valid": len(valid),
                    "n_test": len(test),
                },
            )
        ]

    def _train(self, ctx, model, train: ClipDataset, valid: ClipDataset):
        params, task = ctx.params, ctx.task
        spec = score_spec(task.primary_score)
        accumulate = params["batch_size"] // params["micro_batch"]
        steps_per_epoch = max(1, math.ceil(len(train) / params["batch_size"]))
        epochs = int(params["epochs"])
        total, warmup = epochs * steps_per_epoch, int(params["warmup_epochs"]) * steps_per_epoch
        base_lr = params["lr"] * params["batch_size"] / params["lr_reference_batch"]
        optimizer = sgd_with_layer_decay(
            model, model.encoder, params["layer_decay"], params["momentum"]
        )
        generator = seeded_generator("finetune-augment", ctx.seed, ctx.fold)
        augment = (
            None
            if params["mixup_alpha"] is None
            else FinetuneAugment(
                params["mixup_alpha"], params["mixup_memory"], float(params["mixup_ratio"])
            )
        )
        state_file = ctx.workdir / "finetune-state.pt"
        start_epoch, step, best = 0, 0, (-1, -math.inf if spec.maximize else math.inf)
        if state_file.is_file():  # resume an interrupted unit
            state = torch.load(state_file, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            _set_global_rng(state["global_rng"])
            if augment is not None:
                augment.load_state_dict(state["augment"])
            start_epoch, step, best = state["epoch"] + 1, state["step"], tuple(state["best"])
            ctx.log(f"resuming fine-tuning after epoch {state['epoch']}")
        soft_binary = augment is not None or task.is_multilabel
        collate = PadTo(train.longest_frames())
        for epoch in tqdm(
            range(start_epoch, epochs), desc=f"finetune {task.name}", disable=not ctx.progress
        ):
            order = seeded_generator("finetune-order", ctx.seed, epoch)
            sampling = (
                {"sampler": balanced_sampler(train.targets, order)}
                if params["balanced_sampling"]
                else {"shuffle": True, "generator": order}
            )
            loader = DataLoader(
                train,
                batch_size=params["micro_batch"],
                num_workers=params["num_workers"],
                collate_fn=collate,
                drop_last=False,
                **sampling,
            )
            model.train()
            for index, batch in enumerate(loader):
                batch = {k: v.to(ctx.device) for k, v in batch.items()}
                loss, _ = training_loss(model, batch, soft_binary, generator, augment)
                (loss / accumulate).backward()
                if (index + 1) % accumulate == 0 or index + 1 == len(loader):
                    set_learning_rate(optimizer, step, base_lr, warmup, total)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), params["grad_clip"])
                    optimizer.step()
                    optimizer.zero_grad()
                    step += 1
            if (epoch + 1) % int(params["val_every"]) == 0 or epoch + 1 == epochs:
                probs = self._predict(ctx, model, valid)
                value = float(clip_score(spec.name, probs, valid.targets, self.map_convention))
                if best[0] < 0 or (value > best[1] if spec.maximize else value < best[1]):
                    best = (epoch, value)
                    _save(ctx.workdir / "best.pt", model.state_dict())
            _save(
                state_file,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    # stochastic depth draws from torch's global generators
                    "global_rng": _global_rng(),
                    "augment": None if augment is None else augment.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "best": list(best),
                },
            )
        return best

    @torch.no_grad()
    def _predict(self, ctx, model, clips: ClipDataset) -> np.ndarray:
        """Class probabilities of every clip's centre crop."""
        model.eval()
        loader = DataLoader(
            clips,
            batch_size=ctx.params["micro_batch"],
            num_workers=ctx.params["num_workers"],
            collate_fn=PadTo(clips.longest_frames()),
        )
        out = [
            probabilities(
                model(batch["mel"].to(ctx.device), batch["frames"].to(ctx.device)),
                ctx.task.is_multilabel,
            ).cpu()
            for batch in loader
        ]
        return torch.cat(out).numpy()


def _check_params(params: dict[str, Any]) -> None:
    if params["batch_size"] % params["micro_batch"]:
        raise ValueError("finetune: batch_size must be a multiple of micro_batch")


def unit_deviations(params: dict[str, Any]) -> list[str]:
    """How this unit's recipe departs from the official one beyond :attr:`Finetune.deviations`."""
    found = []
    if params["micro_batch"] < params["batch_size"]:
        found.append(
            f"finetune: the head's BatchNorm normalises over {params['micro_batch']} clips at a "
            f"time (official: the whole synchronised batch of {params['batch_size']})"
        )
    if params["mixup_alpha"] is not None and float(params["mixup_ratio"]) < 1.0:
        # only the official AudioSet path mixes a share of the clips, with a random partner
        found.append(
            "finetune: mixup partners come from the bank of the latest clips (official "
            "AudioSet: a random training clip)"
        )
    return found


def clip_dataset(task: TaskFolder, selection: FileSelection, params: dict[str, Any]) -> ClipDataset:
    paths, labels = [], []
    for split in selection.splits:
        split_labels = task.split_labels(split)
        for name in sorted(split_labels):
            if selection.files is None or name in selection.files:
                paths.append(audio_source(task, split, name))
                labels.append(split_labels[name])
    targets = multi_hot(task, labels, f"{task.path} ({selection.describe()})")
    return ClipDataset(paths, targets, float(params["crop_seconds"]), task.sample_duration)


def _global_rng() -> dict[str, Any]:
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_global_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save(path, obj) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
