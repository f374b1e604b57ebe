"""Projector, predictor, BYOL loss and EMA update of ATST pre-training (``atst-reference.md`` §4.1).

Projector ``D -> hidden -> 256`` and the student's predictor ``256 -> hidden -> 256`` are the
official ``build_mlp(2, ..., last_bn=False)``: ``Linear(bias=False) -> BatchNorm1d -> ReLU ->
Linear(bias=False)``, state-dict keys ``0.weight``, ``1.*``, ``3.weight``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn


def build_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim, bias=False),
    )


def byol_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2·cos(prediction, target)`` over rows; the target carries no gradient."""
    cos = F.normalize(prediction.float(), dim=-1) * F.normalize(target.detach().float(), dim=-1)
    return 2.0 - 2.0 * cos.sum(dim=-1).mean()


def symmetric_byol_loss(
    student: tuple[torch.Tensor, torch.Tensor], teacher: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """``½[ℓ(student view 2, teacher view 1) + ℓ(student view 1, teacher view 2)]``.

    The official ``ByolLoss`` for ATST-Clip (two crops) and ATST-Frame (``symmetric=True``):
    each view's prediction is pulled towards the teacher's projection of the other view.
    """
    return 0.5 * (byol_distance(student[1], teacher[0]) + byol_distance(student[0], teacher[1]))


def masked_prediction_losses(
    predictions: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss of ``predictions`` (``[M, d]``, the rows where bool ``mask [B, P]`` is set) against
    ``targets [B, P, d]`` at the same places, and against the targets of the previous clip of
    the batch at the same places: the control a position-only predictor scores equally well."""
    if len(targets) < 2:
        raise ValueError(f"the shuffled control needs at least 2 clips, got {len(targets)}")
    return (
        byol_distance(predictions, targets[mask]),
        byol_distance(predictions, targets.roll(1, dims=0)[mask]),
    )


@torch.no_grad()
def ema_update(
    teacher: Iterable[torch.Tensor], student: Iterable[torch.Tensor], momentum: float
) -> None:
    """``θ_teacher <- m·θ_teacher + (1 - m)·θ_student`` in place, pairwise."""
    teacher, student = list(teacher), list(student)
    if len(teacher) != len(student):
        raise ValueError(f"EMA over {len(teacher)} teacher but {len(student)} student tensors")
    for t, s in zip(teacher, student):
        if t.shape != s.shape:
            raise ValueError(f"EMA pairs tensors of shapes {tuple(t.shape)} and {tuple(s.shape)}")
        t.lerp_(s.to(t.dtype), 1.0 - momentum)
