"""ATST-C2F: fine-tune ATST-Frame on a labelled task, distilling a fine-tuned ATST-Clip.

The recipe of ``train_distill_other.py`` (``docs/pretraining.md``, ``docs/fidelity.md``):

* teacher: ATST-Clip fine-tuned on the task, frozen; its embedding is ``[cls, token mean]`` of
  the last block over 6 s chunks (601 frames), then ``BatchNorm1d(affine=False) + Linear``;
* student: the pre-trained ATST-Frame encoder, embedding = token mean of the last block over
  1001-frame chunks (chunks weighted by ``chunk_mark``), with the same kind of head;
* loss ``λ·loss_d + (1 - λ)·loss_c`` with λ = 0.5: ``loss_d`` is BCE against the teacher's
  sigmoid (multi-label or mixup) or cross-entropy against its softmax (single-label), ``loss_c``
  the same loss against the ground truth;
* SGD (momentum 0.9, no weight decay), layer-wise learning-rate decay 0.75 (embeddings
  0.75^depth, block i 0.75^(depth-i), final norm 0.75, head 1), linear warm-up then cosine to
  1e-6 per step, learning rate × devices · batch / 256, gradient clipping at 3;
* audio: the centre 12 s, no padding; optional mixup against a memory bank of earlier
  (log-mel, label) pairs (λ ~ Beta(α, α), labels mixed too; a clip of another length is mixed
  at a random offset and every clip keeps its own length), always followed by
  random-resize-crop of each clip's own frames (:class:`atst_hear.finetuning.FinetuneAugment`).

Model, data, augmentation, loss and optimiser come from :mod:`atst_hear.finetuning`, shared
with the ``finetune`` benchmark protocol; this module adds the teacher, the Lightning loop and
the checkpoints.

``--finetune-teacher`` first fine-tunes a pre-trained ATST-Clip on the task with the same
recipe and no distillation term (the first step of C2F), then distils it.

The teacher runs in train mode by default, as the official code does (DropPath and its head's
BatchNorm on batch statistics); ``teacher_mode: eval`` makes its targets deterministic. The
official Clip pooling divides the token mean of every non-final chunk by too many tokens
(``docs/pretraining.md``); ``compat: official`` reproduces that for teachers trained with it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from torch import nn
from torch.utils.data import DataLoader

from ..embeddings import COMPAT_MODES, finetune_embedding
from ..fileio import write_json_atomic
from ..finetuning import (
    ClipDataset,
    FinetuneAugment,
    PadTo,
    TaskClassifier,
    classification_loss,
    load_classifier,
    probabilities,
    set_learning_rate,
    sgd_with_layer_decay,
    training_loss,
    warmup_steps,
)
from ..tasks.clip_metrics import mean_average_precision, top1_accuracy
from ..tasks.folder import TaskFolder
from ..tasks.scores import compute_scores
from .checkpoint import write_classifier_checkpoint
from .module import step_seed
from .recipes import TEACHER_MODES, RecipeError, RecipeFields, recipe_dataclass
from .training import Hardware, build_trainer, latest_checkpoint, resolve_recipe

logger = logging.getLogger(__name__)


@recipe_dataclass
class DistillRecipe(RecipeFields):
    lambda_d: float = 0.5  # weight of the distillation term
    learning_rate: float = 1e-2  # before batch scaling; the official value is per task
    lr_reference_batch: int = 256
    batch_size: int = 128  # per device
    epochs: int = 50
    warmup_epochs: int = 5
    layer_decay: float = 0.75
    momentum: float = 0.9
    gradient_clip: float = 3.0
    drop_path: float = 0.1
    max_seconds: float = 12.0  # centre crop
    mixup: bool = False
    mixup_alpha: float = 0.5
    mixup_memory: int = 5000
    teacher_mode: str = "train"
    compat: str = "default"
    # --finetune-teacher: the Clip stage; None = the student's value
    teacher_learning_rate: float | None = None
    teacher_epochs: int | None = None
    teacher_warmup_epochs: int | None = None
    seed: int = 0
    num_workers: int = 2
    description: str = ""
    RUN_FIELDS = ("num_workers", "description")

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 <= self.lambda_d <= 1.0:
            problems.append(f"lambda_d must be in [0, 1], got {self.lambda_d}")
        if self.teacher_mode not in TEACHER_MODES:
            problems.append(
                f"teacher_mode must be one of {TEACHER_MODES}, got {self.teacher_mode!r}"
            )
        if self.compat not in COMPAT_MODES:
            problems.append(f"compat must be one of {COMPAT_MODES}, got {self.compat!r}")
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_epochs < self.epochs:
            problems.append(
                f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}"
            )
        if self.max_seconds <= 0:
            problems.append(f"max_seconds must be positive, got {self.max_seconds}")
        if problems:
            raise RecipeError("; ".join(problems))

    def teacher_stage(self) -> DistillRecipe:
        """The recipe of fine-tuning the Clip teacher: ground truth only."""
        return self.replace(
            "the teacher stage",
            lambda_d=0.0,
            learning_rate=self.teacher_learning_rate or self.learning_rate,
            epochs=self.teacher_epochs or self.epochs,
            warmup_epochs=(
                self.warmup_epochs
                if self.teacher_warmup_epochs is None
                else self.teacher_warmup_epochs
            ),
        )


# --- data -----------------------------------------------------------------------------------
def task_clips(task: TaskFolder, splits: list[str], max_seconds: float) -> ClipDataset:
    """Labelled clips of a task's splits: the centre ``max_seconds``, as normalised log-mel."""
    paths, targets = [], []
    for split in splits:
        for file, labels in sorted(task.split_labels(split).items()):
            target = np.zeros(len(task.labels), np.float32)
            for label in labels:
                if label not in task.label_index:
                    raise ValueError(f"{task.path} ({split}/{file}): unknown label {label!r}")
                target[task.label_index[label]] = 1.0
            paths.append(task.audio_path(split, file))
            targets.append(target)
    if not paths:
        raise ValueError(f"{task.path}: no clips in splits {splits}")
    return ClipDataset(paths, np.stack(targets), max_seconds, task.sample_duration)


# --- training -------------------------------------------------------------------------------
class ClassifierTraining(L.LightningModule):
    """Fine-tunes ``encoder`` + ``head`` on a task, optionally distilling a frozen ``teacher``."""

    def __init__(
        self,
        student: TaskClassifier,
        recipe: DistillRecipe,
        multilabel: bool,
        teacher: TaskClassifier | None = None,
        hyper_parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # loaded encoders come in eval mode; fine-tuning trains with DropPath
        self.encoder = student.encoder.train()
        self.head = student.head.train()
        # nothing is masked in fine-tuning: a parameter without gradient would stall DDP
        self.encoder.mask_embed.requires_grad_(False)
        self.compat = student.compat
        self.recipe = recipe
        self.multilabel = multilabel
        if teacher is not None:
            self.teacher = teacher.requires_grad_(False).train(recipe.teacher_mode == "train")
        self.save_hyperparameters(hyper_parameters or {})
        self.augment = (
            FinetuneAugment(recipe.mixup_alpha, recipe.mixup_memory) if recipe.mixup else None
        )
        self._generator = torch.Generator()
        self._validation: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.head(finetune_embedding(self.encoder, mel, frames, self.compat))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return sgd_with_layer_decay(
            self, self.encoder, self.recipe.layer_decay, self.recipe.momentum
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        recipe, step = self.recipe, self.global_step
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = warmup_steps(total, recipe.warmup_epochs, recipe.epochs)
        world = self.trainer.world_size
        peak = recipe.learning_rate * world * recipe.batch_size / recipe.lr_reference_batch
        lr = set_learning_rate(self.optimizers(use_pl_optimizer=False), step, peak, warmup, total)
        # DropPath uses the global stream; mixup and crops draw from the generator
        torch.manual_seed(step_seed(recipe.seed, step, self.global_rank, purpose=2))
        self._generator.manual_seed(step_seed(recipe.seed, step, self.global_rank, purpose=3))
        self.log("lr", lr, prog_bar=True, on_step=True, batch_size=1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, parts = training_loss(
            self,
            batch,
            soft_binary=self.multilabel or self.recipe.mixup,
            generator=self._generator,
            augment=self.augment,
            teacher=getattr(self, "teacher", None),
            lambda_d=self.recipe.lambda_d,
        )
        self.log_dict(parts, prog_bar=True, on_step=True, batch_size=len(batch["mel"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["mel"], batch["frames"])
        self._validation.append((logits.float(), batch["target"]))

    def on_validation_epoch_end(self) -> None:
        if not self._validation:
            return
        logits = torch.cat([x for x, _ in self._validation])
        target = torch.cat([y for _, y in self._validation])
        self._validation.clear()
        if self.trainer.world_size > 1:
            # every process scored its share of the validation clips: score them all
            logits = self.all_gather(logits).flatten(0, 1)
            target = self.all_gather(target).flatten(0, 1)
        logits, target = logits.cpu(), target.cpu()
        loss = classification_loss(logits, target, self.multilabel)
        score = clip_score(logits, target, self.multilabel)
        self.log_dict(
            {"valid_loss": loss, "valid_score": score},
            prog_bar=True,
            batch_size=len(logits),
            rank_zero_only=True,
        )


def clip_score(logits: torch.Tensor, target: torch.Tensor, multilabel: bool) -> float:
    """Top-1 accuracy (multiclass) or mean average precision (multilabel) of a validation set."""
    probs = probabilities(logits, multilabel)
    scorer = mean_average_precision if multilabel else top1_accuracy
    return float(scorer(probs.numpy(), target.numpy()))


# --- checkpoints ----------------------------------------------------------------------------
def classifier_hyper_parameters(
    classifier: TaskClassifier, task: TaskFolder, recipe: DistillRecipe, role: str
) -> dict[str, Any]:
    config = classifier.encoder.config
    length_key = "train_len" if config.flavour == "clip" else "anchor_len"
    return {
        "role": role,
        "flavour": config.flavour,
        "task": task.name,
        "labels": list(task.labels),
        "num_classes": len(task.labels),
        "multilabel": task.is_multilabel,
        "n_mels": config.patch_height,
        "nprompt": config.n_prompt,
        "num_heads": config.heads,
        length_key: config.train_len,
        "compat": classifier.compat,
        "atst_hear_recipe": recipe.to_dict(),
    }


# --- running ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskSplits:
    train: list[str]
    valid: str | None
    test: str | None


def choose_splits(
    task: TaskFolder, train: list[str] | None, valid: str | None, test: str | None
) -> TaskSplits:
    """trainvaltest: train / valid / test; k-fold: the last fold tests, the one before validates."""
    splits = list(task.splits)
    if task.is_kfold:
        folds = sorted(splits)
        test = test or folds[-1]
        valid = valid or next((f for f in reversed(folds) if f != test), None)
        train = train or [f for f in folds if f not in (test, valid)]
    else:
        train = train or ["train"]
        valid = valid or ("valid" if "valid" in splits and task.split_labels("valid") else None)
        test = test or ("test" if "test" in splits else None)
    unknown = [s for s in [*train, valid, test] if s is not None and s not in splits]
    if unknown:
        raise ValueError(f"{task.path}: unknown splits {unknown}; the task has {splits}")
    if not train:
        raise ValueError(f"{task.path}: no training split left")
    return TaskSplits(train, valid, test)


def _fit_classifier(
    training: ClassifierTraining,
    task: TaskFolder,
    splits: TaskSplits,
    recipe: DistillRecipe,
    out_dir: Path,
    hardware: Hardware,
    resume: bool,
    progress: bool,
) -> L.Trainer:
    train_set = task_clips(task, splits.train, recipe.max_seconds)
    collate = PadTo(train_set.longest_frames())
    loader_args = {
        "batch_size": recipe.batch_size,
        "num_workers": recipe.num_workers,
        "collate_fn": collate,
        "persistent_workers": recipe.num_workers > 0,
    }
    # BatchNorm in the head needs more than one clip per training batch
    train_loader = DataLoader(
        train_set, shuffle=True, drop_last=len(train_set) > recipe.batch_size, **loader_args
    )
    valid_loader = (
        DataLoader(task_clips(task, [splits.valid], recipe.max_seconds), **loader_args)
        if splits.valid
        else None
    )
    saver = ModelCheckpoint(dirpath=out_dir / "checkpoints", save_last=True, save_top_k=0)
    trainer = build_trainer(
        out_dir,
        hardware,
        [saver],
        log_every=min(10, len(train_loader)),
        progress=progress,
        max_epochs=recipe.epochs,
        gradient_clip_val=recipe.gradient_clip,
        **({} if valid_loader else {"limit_val_batches": 0}),
    )
    trainer.fit(
        training,
        train_dataloaders=train_loader,
        val_dataloaders=valid_loader,
        ckpt_path=latest_checkpoint(out_dir) if resume else None,
    )
    return trainer


@torch.no_grad()
def evaluate(
    classifier: nn.Module,
    task: TaskFolder,
    split: str,
    recipe: DistillRecipe,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """The task's own scores (``task_metadata.json`` ``evaluation``) on one split."""
    dataset = task_clips(task, [split], recipe.max_seconds)
    loader = DataLoader(
        dataset, batch_size=recipe.batch_size, collate_fn=PadTo(dataset.longest_frames())
    )
    classifier.to(device).eval()
    logits, targets = [], []
    for batch in loader:
        logits.append(classifier(batch["mel"].to(device), batch["frames"].to(device)).float().cpu())
        targets.append(batch["target"])
    logits_all, target_all = torch.cat(logits), torch.cat(targets)
    probs = probabilities(logits_all, task.is_multilabel)
    return compute_scores(task.evaluation, probs.numpy(), target_all.numpy())


def run_classifier_stage(
    classifier: TaskClassifier,
    task: TaskFolder,
    splits: TaskSplits,
    recipe: DistillRecipe,
    out_dir: Path,
    output_name: str,
    role: str,
    hardware: Hardware,
    resume: bool,
    progress: bool,
    teacher: TaskClassifier | None = None,
) -> Path:
    """Train one classifier and write ``out_dir/output_name`` (on rank 0; every rank waits)."""
    resolve_recipe(out_dir, recipe, resume)
    hyper = classifier_hyper_parameters(classifier, task, recipe, role)
    training = ClassifierTraining(classifier, recipe, task.is_multilabel, teacher, hyper)
    trainer = _fit_classifier(training, task, splits, recipe, out_dir, hardware, resume, progress)
    output = out_dir / output_name
    if trainer.is_global_zero:
        state = {
            k: v for k, v in training.state_dict().items() if k.startswith(("encoder.", "head."))
        }
        write_classifier_checkpoint(output, state, hyper, L.__version__)
        logger.info("wrote %s", output)
    # the next stage reads this file on every rank
    trainer.strategy.barrier()
    return output


def run_distillation(
    clip_teacher: str | os.PathLike,
    frame_student: str | os.PathLike,
    task_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipe: DistillRecipe,
    finetune_teacher: bool = False,
    train_splits: list[str] | None = None,
    valid_split: str | None = None,
    test_split: str | None = None,
    hardware: Hardware | None = None,
    resume: bool = False,
    trust_checkpoint: bool = False,
    progress: bool = True,
) -> Path | None:
    """C2F on one task: (optionally fine-tune the Clip teacher, then) distil into ATST-Frame.

    Writes ``OUT/c2f.ckpt`` (loads with ``atst_hear.hear.c2f``) and ``OUT/scores.json`` (test
    scores of the student and the teacher). Returns the checkpoint path on rank 0.
    """
    out_dir = Path(out_dir)
    hardware = hardware or Hardware()
    task = TaskFolder.open(task_dir)
    if task.is_event:
        raise ValueError(f"{task.path}: C2F distillation needs a clip-level (scene) task")
    splits = choose_splits(task, train_splits, valid_split, test_split)
    n_classes = len(task.labels)
    L.seed_everything(recipe.seed, verbose=False)
    teacher_path = Path(clip_teacher)
    if finetune_teacher:
        stage_dir = out_dir / "clip-teacher"
        teacher_path = stage_dir / "clip_finetuned.ckpt"
        if not teacher_path.is_file():
            pretrained = load_classifier(
                clip_teacher,
                "clip",
                n_classes,
                recipe.drop_path,
                recipe.compat,
                trust_checkpoint,
                require_head=False,
            )
            run_classifier_stage(
                pretrained,
                task,
                splits,
                recipe.teacher_stage(),
                stage_dir,
                teacher_path.name,
                "clip-finetuned",
                hardware,
                resume,
                progress,
            )
    teacher = load_classifier(
        teacher_path, "clip", n_classes, recipe.drop_path, recipe.compat, trust_checkpoint
    )
    student = load_classifier(
        frame_student,
        "frame",
        n_classes,
        recipe.drop_path,
        recipe.compat,
        trust_checkpoint,
        require_head=False,
    )
    output = run_classifier_stage(
        student,
        task,
        splits,
        recipe,
        out_dir,
        "c2f.ckpt",
        "c2f",
        hardware,
        resume,
        progress,
        teacher=teacher,
    )
    if rank_zero_only.rank != 0:
        return None
    if splits.test:
        trained = load_classifier(output, "frame", n_classes, 0.0, recipe.compat)
        device = "cuda" if hardware.uses_gpu else "cpu"
        scores = {
            "task": task.name,
            "split": splits.test,
            "c2f": evaluate(trained, task, splits.test, recipe, device),
            "clip_teacher": evaluate(teacher, task, splits.test, recipe, device),
        }
        write_json_atomic(out_dir / "scores.json", scores)
        logger.info("test scores (also in %s): %s", out_dir / "scores.json", json.dumps(scores))
    return output
