"""Checkpoint layouts written by pre-training and distillation.

Pre-training checkpoints are the Lightning archives of :class:`~.module.PretrainModule`, whose
attribute names make the official key layout (``atst-reference.md`` §2.8)::

    state_dict['model.student.encoder.*']    state_dict['model.teacher.encoder.*']
    state_dict['model.student.projector.*']  state_dict['model.teacher.projector.*']
    state_dict['model.student.predictor.*']
    hyper_parameters: the official argument names (arch, learning_rate (already batch-scaled),
        warmup_steps, max_steps, ema, anchor_len / train_len, ...) plus our whole recipe under
        ``atst_hear_recipe``

so ``atst_hear.hear.frame`` / ``.clip`` and the official ``load_from_checkpoint`` read them
unchanged. :func:`write_release_checkpoint` keeps only weights and hyper-parameters (no
optimiser state) for sharing. Distillation writes ``encoder.*`` + ``head.*`` (:func:`write_
classifier_checkpoint`), which ``atst_hear.hear.c2f`` reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..fileio import atomic_output
from ..models.checkpoints import CheckpointError, load_archive, read_encoder_weights

RECIPE_KEY = "atst_hear_recipe"
PRETRAIN_PREFIXES = (
    "model.student.encoder.",
    "model.teacher.encoder.",
    "model.student.projector.",
    "model.teacher.projector.",
    "model.student.predictor.",
)


def official_hyper_parameters(recipe, world_size: int) -> dict[str, Any]:
    """Hyper-parameters under the official names, then the full recipe.

    The official modules rebuild themselves from these (``load_from_checkpoint`` drops names
    their constructor does not take); ``learning_rate`` is the batch-scaled value, as there.
    """
    config = recipe.encoder_config()
    common = {
        "arch": recipe.arch,
        "learning_rate": recipe.peak_learning_rate(world_size),
        "warmup_steps": recipe.warmup_steps,
        "max_steps": recipe.max_steps,
        "ema": recipe.ema,
    }
    if recipe.flavour == "frame":
        flavour_specific = {
            "symmetric": True,
            "pos_type": "cut",
            "avg_blocks": 0,
            "patch_embed": "Linear",
            "nprompt": config.n_prompt,
            "spec_h": config.patch_height,
            "mask_ratio": recipe.mask_prob,
            "mask_len": recipe.mask_span,
            "n_mels": config.patch_height,
            "anchor_len": recipe.crop_seconds,
        }
    else:
        flavour_specific = {"train_len": recipe.crop_seconds}
    return {
        **common,
        **flavour_specific,
        "batch_size_per_gpu": recipe.batch_size,
        "nproc": world_size,
        "num_heads": config.heads,
        RECIPE_KEY: recipe.to_dict(),
    }


def check_pretrain_layout(state_dict: dict[str, Any], source: str) -> None:
    """Raise unless every key sits under one of the official prefixes, and each is present."""
    stray = [k for k in state_dict if not k.startswith(PRETRAIN_PREFIXES)]
    missing = [p for p in PRETRAIN_PREFIXES if not any(k.startswith(p) for k in state_dict)]
    if stray or missing:
        raise CheckpointError(
            f"{source}: not the official pre-training layout (keys outside it: {stray[:5]}; "
            f"missing groups: {missing})"
        )


def write_release_checkpoint(
    training_checkpoint: str | os.PathLike, out: str | os.PathLike
) -> Path:
    """Weights + hyper-parameters of a training checkpoint (no optimiser or loop state)."""
    archive = load_archive(training_checkpoint)
    state = archive["state_dict"]
    check_pretrain_layout(state, str(training_checkpoint))
    release = {
        key: archive[key]
        for key in ("epoch", "global_step", "pytorch-lightning_version", "hyper_parameters")
        if key in archive
    }
    release["state_dict"] = state
    out = Path(out)
    with atomic_output(out) as tmp:
        torch.save(release, tmp)
    read_encoder_weights(out)  # proves our own loader reads what we wrote
    return out


def write_classifier_checkpoint(
    out: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    hyper_parameters: dict[str, Any],
    lightning_version: str,
) -> Path:
    """An encoder + classification head (``encoder.*``, ``head.*``): C2F and fine-tuned Clip."""
    stray = [k for k in state_dict if not k.startswith(("encoder.", "head."))]
    if stray:
        raise CheckpointError(
            f"{out}: classifier checkpoints hold encoder.* and head.*, got {stray[:5]}"
        )
    archive = {
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "hyper_parameters": hyper_parameters,
        "pytorch-lightning_version": lightning_version,
    }
    out = Path(out)
    with atomic_output(out) as tmp:
        torch.save(archive, tmp)
    read_encoder_weights(out)
    return out
