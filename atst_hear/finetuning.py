"""One fine-tuning stack for the ``finetune`` protocol and C2F distillation.

The pieces of the official fine-tuning (``atst/downstream/train_finetune.py``,
``atstframe/downstream/train_finetune.py``, ``atstframe/train_distill_other.py``):

* :class:`TaskClassifier` (:func:`load_classifier` from a checkpoint): encoder + :class:`LinearHead` (``BatchNorm1d(affine=False)`` +
  ``Linear`` with N(0, 0.01) weights and zero bias) on the fine-tuning embedding
  (:func:`atst_hear.embeddings.finetune_embedding`);
* :class:`ClipDataset` / :class:`PadTo`: the centre ``max_seconds`` (12 s officially, no
  padding) of each clip as normalised log-mel, zero-padded per batch in the normalised domain;
* :class:`FinetuneAugment`: mixup against a memory bank of earlier (log-mel, label) pairs, then
  random-resize-crop (:mod:`atst_hear.augment`);
* :func:`training_loss` (one step: augmentation, classification loss, C2F distillation term),
  :func:`classification_loss`, :func:`sgd_with_layer_decay` (SGD, momentum 0.9, no weight
  decay, layer-wise ``lr_scale`` from :func:`atst_hear.models.encoder.layer_decay_groups`),
  :func:`set_learning_rate` (the warm-up + cosine of :mod:`atst_hear.schedules`);
* :func:`balanced_weights` / :func:`balanced_sampler`: the AudioSet label-balanced sampler.

This module sits below both ``bench`` and ``pretrain`` and imports neither.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, WeightedRandomSampler

from . import schedules
from .audio import SAMPLE_RATE, audio_info, read_audio
from .augment import LabelMixup, centre_crop, random_resize_crop
from .embeddings import finetune_embedding
from .frontend import MIN_SAMPLES, LogMelFrontend, num_frames
from .models.checkpoints import CheckpointError, extract_encoder_weights, load_archive
from .models.encoder import ATSTEncoder, layer_decay_groups

# the official fine-tuning and linear-evaluation input: CentralCrop(sr * 12, pad=False)
OFFICIAL_CROP_SECONDS = 12.0


# --- model ----------------------------------------------------------------------------------
class LinearHead(nn.Module):
    """``BatchNorm1d(affine=False)`` (the feature standardisation) + ``Linear``, as official."""

    def __init__(self, dim: int, n_classes: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False)
        self.linear = nn.Linear(dim, n_classes)
        with torch.no_grad():
            self.linear.weight.normal_(0.0, 0.01, generator=generator)
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(x))


class TaskClassifier(nn.Module):
    """Encoder + linear head on the fine-tuning embedding of normalised log-mel batches."""

    def __init__(
        self,
        encoder: ATSTEncoder,
        n_classes: int,
        compat: str = "default",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        width = encoder.config.width
        self.encoder = encoder
        dim = 2 * width if encoder.config.flavour == "clip" else width
        self.head = LinearHead(dim, n_classes, generator)
        self.compat = compat

    def forward(self, mel: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        return self.head(finetune_embedding(self.encoder, mel, frame_lengths, self.compat))


def classification_loss(
    logits: torch.Tensor, target: torch.Tensor, soft_binary: bool
) -> torch.Tensor:
    """BCE on (soft) multi-hot targets, or cross-entropy on class probabilities."""
    if soft_binary:
        return F.binary_cross_entropy_with_logits(logits, target)
    return F.cross_entropy(logits, target)


def probabilities(logits: torch.Tensor, multilabel: bool) -> torch.Tensor:
    return torch.sigmoid(logits) if multilabel else logits.softmax(-1)


def training_loss(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch: dict[str, torch.Tensor],
    soft_binary: bool,
    generator: torch.Generator,
    augment: FinetuneAugment | None = None,
    teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    lambda_d: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One fine-tuning step's loss on a :func:`pad_batch` batch, and its parts for logging.

    ``augment`` (mixup + random-resize-crop) comes first; with a ``teacher`` (C2F) the loss is
    ``lambda_d·loss_d + (1 - lambda_d)·loss_c``, ``loss_d`` against the teacher's sigmoid
    (``soft_binary``) or softmax on the same augmented input.
    """
    mel, frames, target = batch["mel"], batch["frames"], batch["target"]
    if augment is not None:
        mel, target = augment(mel, frames, target, generator)
    logits = model(mel, frames)
    loss_c = classification_loss(logits, target, soft_binary)
    parts = {"loss_c": loss_c.detach()}
    loss = loss_c
    if teacher is not None:
        with torch.no_grad():
            soft = probabilities(teacher(mel, frames), soft_binary)
        loss_d = classification_loss(logits, soft, soft_binary)
        loss = lambda_d * loss_d + (1 - lambda_d) * loss_c
        parts["loss_d"] = loss_d.detach()
    parts["loss"] = loss.detach()
    return loss, parts


# --- checkpoints ----------------------------------------------------------------------------
def load_classifier(
    path: str | os.PathLike,
    flavour: str,
    n_classes: int,
    drop_path: float,
    compat: str = "default",
    trust_checkpoint: bool = False,
    require_head: bool = True,
) -> TaskClassifier:
    """An encoder (+ its task head, if the checkpoint has one) as a :class:`TaskClassifier`.

    Heads are read from ``head.norm.*`` / ``head.linear.*`` (the official fine-tuning layout
    and ours).
    """
    archive = load_archive(path, trust_checkpoint)
    weights = extract_encoder_weights(archive, str(path))
    if weights.config.flavour != flavour:
        raise CheckpointError(
            f"{path} holds an ATST-{weights.config.flavour.capitalize()} encoder; "
            f"expected ATST-{flavour.capitalize()}"
        )
    config = dataclasses.replace(weights.config, drop_path=drop_path)
    encoder = dataclasses.replace(weights, config=config).build()
    classifier = TaskClassifier(encoder, n_classes, compat)
    state = archive.get("state_dict", {}) if isinstance(archive, dict) else {}
    head = {k[len("head.") :]: v for k, v in state.items() if k.startswith("head.")}
    if not head:
        if require_head:
            raise CheckpointError(
                f"{path}: holds no classification head (head.linear.weight); pass an ATST-Clip "
                "fine-tuned on this task, or add --finetune-teacher to fine-tune it first"
            )
        return classifier
    shape = tuple(head.get("linear.weight", torch.empty(0)).shape)
    expected = tuple(classifier.head.linear.weight.shape)
    if shape != expected:
        raise CheckpointError(
            f"{path}: head has shape {shape}, but this task needs {expected} "
            f"({n_classes} classes); was it fine-tuned on another task?"
        )
    missing, unexpected = classifier.head.load_state_dict(head, strict=False)
    if [k for k in missing if not k.startswith("norm.")] or unexpected:
        raise CheckpointError(
            f"{path}: head keys do not fit: missing {missing}, unexpected {unexpected}"
        )
    return classifier


def set_stochastic_depth(encoder: ATSTEncoder, drop_path: float) -> ATSTEncoder:
    """Block ``i`` drops its residual branches with probability ``linspace(0, drop_path,
    depth)[i]`` in training: the rule of the official encoders, whose ``drop_path_rate`` is 0.1
    in every fine-tuning recipe (``AST``/``FrameAST`` defaults, never overridden)."""
    if isinstance(drop_path, bool) or not isinstance(drop_path, int | float):
        raise ValueError(f"drop_path must be a number in [0, 1), got {drop_path!r}")
    if not 0.0 <= drop_path < 1.0:
        raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
    rates = torch.linspace(0, float(drop_path), encoder.config.depth).tolist()
    for block, rate in zip(encoder.blocks, rates):
        block.drop_path.rate = rate
    return encoder


# --- optimisation ---------------------------------------------------------------------------
def sgd_with_layer_decay(
    model: nn.Module, encoder: ATSTEncoder, layer_decay: float, momentum: float
) -> torch.optim.SGD:
    """SGD without weight decay over ``model``'s trainable parameters, grouped by layer-wise
    ``lr_scale``; :func:`set_learning_rate` sets the rates every step."""
    groups = layer_decay_groups(model, encoder, layer_decay)
    return torch.optim.SGD(groups, lr=0.0, momentum=momentum, weight_decay=0.0)


def set_learning_rate(
    optimizer: torch.optim.Optimizer, step: int, peak: float, warmup: int, total: int
) -> float:
    """The warm-up + cosine rate of ``step``, times each group's ``lr_scale``; returns it."""
    lr = schedules.learning_rate(step, peak, warmup, total)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


def warmup_steps(total: int, warmup_epochs: float, epochs: int) -> int:
    return min(int(total * warmup_epochs / epochs), total - 1)


# --- data -----------------------------------------------------------------------------------
class ClipDataset(Dataset):
    """Labelled clips as normalised log-mel of their centre ``max_seconds`` (no padding).

    ``paths[i]`` is read at 16 kHz; ``targets`` is ``[N, C]`` multi-hot.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        targets: np.ndarray,
        max_seconds: float = OFFICIAL_CROP_SECONDS,
        clip_seconds: float | None = None,
    ) -> None:
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} clips but {len(targets)} targets")
        if not paths:
            raise ValueError("a clip dataset needs at least one clip")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        self.paths = list(paths)
        self.targets = np.asarray(targets, np.float32)
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self.clip_seconds = clip_seconds  # the task's fixed duration, when it has one
        self.frontend = LogMelFrontend()

    def __len__(self) -> int:
        return len(self.paths)

    def longest_frames(self) -> int:
        """Frames of the longest (cropped) clip: the task's duration, or the longest file."""
        if self.clip_seconds:
            samples = int(float(self.clip_seconds) * SAMPLE_RATE)
        else:
            samples = 0
            for path in self.paths:
                rate, frames, _ = audio_info(path)
                samples = max(samples, math.ceil(frames * SAMPLE_RATE / rate))
        return num_frames(max(min(samples, self.max_samples), MIN_SAMPLES))

    def __getitem__(self, index: int) -> dict[str, Any]:
        wave = centre_crop(read_audio(self.paths[index], SAMPLE_RATE), self.max_samples)
        wave = F.pad(wave, (0, max(0, MIN_SAMPLES - len(wave))))
        with torch.no_grad():
            mel = self.frontend(wave[None])[0]
        return {"mel": mel, "target": torch.from_numpy(self.targets[index])}


def pad_batch(items: list[dict[str, Any]], width: int) -> dict[str, torch.Tensor]:
    """Zero-pad (in the normalised domain, as official) or cut every log-mel to ``width``."""
    mels = [item["mel"][..., :width] for item in items]
    return {
        "mel": torch.stack([F.pad(m, (0, width - m.shape[-1])) for m in mels]),
        "frames": torch.tensor([m.shape[-1] for m in mels]),
        "target": torch.stack([item["target"] for item in items]),
    }


class PadTo:
    """Picklable collate function (data-loader workers): :func:`pad_batch` to ``width``."""

    def __init__(self, width: int) -> None:
        self.width = width

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return pad_batch(items, self.width)


def balanced_weights(targets: np.ndarray) -> torch.Tensor:
    """Per-clip sampling weights ``sum_c y_c · 1000 / (count_c + 0.01)`` (the official
    ``weights_labels``, ``atstframe/downstream/test_sampler.py``): rare classes drawn as often
    as common ones."""
    labels = torch.as_tensor(np.asarray(targets), dtype=torch.float64)
    if labels.ndim != 2:
        raise ValueError(f"targets must be [clips, classes], got shape {tuple(labels.shape)}")
    weights = (labels * 1000.0 / (labels.sum(0) + 0.01)).sum(-1)
    if not bool((weights > 0).any()):
        raise ValueError("balanced sampling needs at least one labelled clip")
    return weights


def balanced_sampler(targets: np.ndarray, generator: torch.Generator) -> WeightedRandomSampler:
    """``WeightedRandomSampler(weights, len(weights))`` with replacement, as official."""
    weights = balanced_weights(targets)
    return WeightedRandomSampler(weights, len(weights), replacement=True, generator=generator)


# --- augmentation ---------------------------------------------------------------------------
class FinetuneAugment:
    """The official fine-tuning target transform: mixup (``MixupSpecLabel``, linear in the
    normalised log-mel, labels mixed, a ``ratio`` of the clips mixed: official 1.0, 0.5 for
    AudioSet) against ``memory`` earlier clips, then
    ``RandomResizeCrop()`` (canvas F x 1, T x 1.5, scales 0.6-1.5, bicubic) of each clip's own
    frames."""

    def __init__(self, alpha: float, memory: int = 5000, ratio: float = 1.0) -> None:
        self.mixup = LabelMixup(alpha, memory, ratio)

    def __call__(
        self,
        mel: torch.Tensor,
        frames: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mixed, mixed_target = self.mixup(mel, frames, target, generator)
        return random_resize_crop(mixed, generator, lengths=frames), mixed_target

    def state_dict(self) -> dict[str, Any]:
        return self.mixup.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mixup.load_state_dict(state)


# --- frame tokens with the last block trained (the DCASE recipe's finetune_mode) --------------
class LastBlockTokens(nn.Module):
    """The last block's frame tokens after the final norm, with only that block and the norm
    trainable, as the official DCASE fine-tuning (``finetune_mode`` / ``finetune_mannual_train``
    of ``frame_atst_module.py``): the blocks below stay frozen and in eval mode.

    Clips are cut into chunks of the positional table (1000 frames) as the embedding cache's
    timestamp embeddings are, so the tokens line up with its timestamps.
    """

    def __init__(self, encoder: ATSTEncoder, drop_path: float = 0.0) -> None:
        super().__init__()
        # only the last block trains, so only its rate (``drop_path`` itself) ever acts
        set_stochastic_depth(encoder, drop_path)
        self.frontend = LogMelFrontend()
        self.encoder = encoder.requires_grad_(False)
        self.trained = nn.ModuleList([encoder.blocks[-1], encoder.final_norm])
        self.trained.requires_grad_(True)
        self.train()

    def train(self, mode: bool = True) -> LastBlockTokens:
        super().train(False)
        self.trained.train(mode)
        return self

    def forward(self, waves: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz clips -> tokens ``[B, P, D]`` (``P`` = the longest clip's) and their mask."""
        config = self.encoder.config
        device = self.encoder.pos_embed.device
        with torch.no_grad():
            mels = [
                self.frontend(F.pad(w, (0, max(0, MIN_SAMPLES - len(w))))[None].to(device))
                for w in waves
            ]
        frames = torch.tensor([m.shape[-1] for m in mels], device=device)
        width = int(frames.max())
        mel = torch.stack([F.pad(m[0], (0, width - m.shape[-1])) for m in mels])
        chunk = config.max_tokens * config.patch_width
        pieces = []
        for start in range(0, width, chunk):
            piece = mel[..., start : start + chunk]
            if piece.shape[-1] < config.patch_width:
                break
            # a clip that ended before this chunk still attends one token (its rows are masked
            # out below), so that no attention row is empty and no NaN reaches the gradients
            lengths = (frames - start).clamp(min=0, max=piece.shape[-1])
            attended = self.encoder.token_lengths(lengths).clamp(min=1)
            tokens = self.encoder(piece, token_lengths=attended)[-1]
            pieces.append(self.encoder.final_norm(tokens)[:, config.n_special :])
        tokens = torch.cat(pieces, dim=1)
        counts = self.encoder.token_lengths(frames)
        mask = torch.arange(tokens.shape[1], device=device)[None, :] < counts[:, None]
        return tokens, mask

    def trained_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.trained.state_dict().items()}

    def load_trained_state(self, state: dict[str, torch.Tensor]) -> None:
        self.trained.load_state_dict(state)
