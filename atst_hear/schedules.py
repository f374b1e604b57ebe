"""Per-step schedules of ATST training (``atst-reference.md`` §4.1, §6.3), shared by pre-training,
C2F distillation and the benchmark's trained protocols (``finetune``, ``sed``).

All three are functions of the optimizer step (0-based) and the run length ``total_steps``, so a
resumed run recomputes them from the restored step and never needs schedule state:

* learning rate: ``warmup_steps`` points from 0 to ``peak`` inclusive, then a cosine from
  ``peak`` down towards ``final_lr`` (1e-6) over the remaining steps;
* weight decay: a cosine from 0.04 up to 0.4 over the whole run;
* EMA momentum: a cosine from the recipe's ``ema`` up to 1.

Steps past the end keep the value of the last step.
"""

from __future__ import annotations

import math

FINAL_LR = 1e-6


def cosine(start: float, end: float, step: int, total: int) -> float:
    """``end + (start - end)·(1 + cos(π·step/total))/2``: ``start`` at 0, ``end`` at ``total``."""
    if total <= 0:
        return end
    step = min(max(step, 0), total)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * step / total))


def learning_rate(
    step: int, peak: float, warmup_steps: int, total_steps: int, final_lr: float = FINAL_LR
) -> float:
    """Linear warm-up (``linspace(0, peak, warmup_steps)``), then cosine to ``final_lr``."""
    _check_lengths(warmup_steps, total_steps)
    step = min(max(step, 0), total_steps - 1)
    if step < warmup_steps:
        # np.linspace(0, peak, warmup_steps)[step], as the official schedule
        return peak * step / (warmup_steps - 1) if warmup_steps > 1 else 0.0
    return cosine(peak, final_lr, step - warmup_steps, total_steps - warmup_steps)


def weight_decay(step: int, total_steps: int, start: float = 0.04, end: float = 0.4) -> float:
    return cosine(start, end, min(step, total_steps - 1), total_steps)


def ema_momentum(step: int, total_steps: int, base: float) -> float:
    """Teacher momentum: ``1 - (1 - base)·(1 + cos(π·step/total))/2``, rising towards 1."""
    return cosine(base, 1.0, min(step, total_steps - 1), total_steps)


def _check_lengths(warmup_steps: int, total_steps: int) -> None:
    if total_steps < 1:
        raise ValueError(f"a schedule needs at least 1 step, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"the warm-up ({warmup_steps} steps) must be shorter than the run ({total_steps} steps)"
        )
