"""``sed``: the ATST paper's DCASE sound event detection head on frame embeddings.

Recipe (``atst-reference.md`` §6.5), on the cached timestamp embeddings (40 ms tokens):

* head: strong scores ``sigmoid(Linear(D, C))`` per frame; weak (clip) scores pool them with
  attention, ``sum_t strong * a / sum_t a`` where ``a = clamp(softmax_t(Linear(D, C)), 1e-7, 1)``;
* loss: BCE of the strong scores against frame labels (strongly labelled clips) plus BCE of the
  weak scores against clip labels of weakly labelled clips, each step drawing half of each
  (the paper's 128 + 128); the weak clips are those a task lists in ``weak_splits`` /
  ``weak_label_file`` (DESED's, as ``atst-hear prepare desed`` writes them); a task without
  them uses its strong clips' labels for the weak loss;
* SGD lr 0.1, momentum 0.9, no weight decay, 100 epochs, linear warm-up over 5 epochs then a
  cosine to 1e-6 per step, gradient norm clipped at 3;
* model selection on validation: intersection macro-F1 at 0.5 after a 3-frame median filter on
  the strongly labelled validation clips plus the weak macro-F1 on the weak validation clips,
  best epoch kept;
* test: a 7-frame median filter, PSDS1 and PSDS2 with psds_eval at 50 thresholds and with
  sed_scores_eval (exact), event-based macro-F1 (sed_eval, 200 ms onset collar, 20 % offset
  tolerance), intersection macro-F1 at 0.5, and the task's own scores on events decoded at 0.5.

Difference from the paper: the paper also trains the encoder's last block and final norm; this
protocol keeps the encoder frozen (embeddings come from the shared cache), so it matches the
paper's head and schedule on frozen features. The PSD-ROC curves go to ``psd_roc.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ... import schedules
from ...fileio import write_json_atomic
from ..metrics import (
    PSDS1,
    PSDS2,
    PSDS_THRESHOLDS,
    EventPredictions,
    compute_scores,
    event_based_scores,
    intersection_f1,
    psds_from_operating_points,
    psds_from_scores,
    score_spec,
)
from .base import FoldResult, Protocol, UnitContext
from .batched import seeded_generator
from .data import (
    EventData,
    holdout_rotation,
    load_events,
    multi_hot,
    select_folds,
    weak_labels,
)

SED_SCORES = (
    "psds1",
    "psds2",
    "psds1_sed_scores_eval",
    "psds2_sed_scores_eval",
    "intersection_f1",
    "event_f1_macro",
)


class StrongWeakHead(torch.nn.Module):
    """The DCASE head: frame-level (strong) scores and attention-pooled clip (weak) scores."""

    def __init__(self, dim: int, n_classes: int, generator: torch.Generator):
        super().__init__()
        self.strong = torch.nn.Linear(dim, n_classes)
        self.attention = torch.nn.Linear(dim, n_classes)
        bound = 1 / math.sqrt(dim)  # torch.nn.Linear's default, drawn from the unit's generator
        for layer in (self.strong, self.attention):
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, T, D]``, ``mask [B, T]`` (True on real frames) -> strong ``[B, T, C]``, weak
        ``[B, C]``."""
        strong = torch.sigmoid(self.strong(x))
        logits = self.attention(x).masked_fill(~mask[..., None], float("-inf"))
        attention = torch.clamp(torch.softmax(logits, dim=1), 1e-7, 1.0) * mask[..., None]
        weak = (strong * attention).sum(1) / attention.sum(1)
        return strong, weak


@dataclass
class Clips:
    """Clips as a padded batch: ``x [N, T, D]``, ``mask [N, T]`` (real frames), frame labels
    ``[N, T, C]`` (zeros for weakly labelled clips) and clip labels ``[N, C]``."""

    x: torch.Tensor
    mask: torch.Tensor
    frame_y: torch.Tensor
    clip_y: torch.Tensor

    def __len__(self) -> int:
        return len(self.x)


def _pad(frames: np.ndarray, lengths: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(len(lengths), int(lengths.max()), frames.shape[1])
    mask = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.bool)
    start = 0
    for i, length in enumerate(lengths.tolist()):
        x[i, :length] = torch.from_numpy(frames[start : start + length])
        mask[i, :length] = True
        start += length
    return x.to(device), mask.to(device)


def strong_clips(data: EventData, device: str) -> Clips:
    x, mask = _pad(data.x, data.lengths, device)
    frame_y, _ = _pad(data.y, data.lengths, device)
    return Clips(x, mask, frame_y, torch.from_numpy(data.clip_targets()).to(device))


def weak_clips(ctx: UnitContext, split: str, labels: dict[str, list[str]]) -> Clips:
    """A weakly labelled split (clip labels only)."""
    task = ctx.task
    emb = ctx.cache.get(ctx.model, task, split, "timestamp", files=sorted(labels))
    x, mask = _pad(emb.embeddings, emb.lengths, ctx.device)
    clip_y = multi_hot(task, [labels[f] for f in emb.files], f"{task.path} (weak split {split})")
    return Clips(
        x,
        mask,
        torch.zeros(*mask.shape, len(task.labels), device=ctx.device),
        torch.from_numpy(clip_y).to(ctx.device),
    )


def _cycle(n: int, size: int, generator: torch.Generator):
    """Endless batches of row indices: shuffled passes over ``n`` rows, ``size`` at a time."""
    rows = torch.empty(0, dtype=torch.long)
    while True:
        while len(rows) < size:
            rows = torch.cat([rows, torch.randperm(n, generator=generator)])
        yield rows[:size]
        rows = rows[size:]


class SED(Protocol):
    name = "sed"
    version = 1
    description = "ATST paper DCASE head (strong + attention-pooled weak) on frozen frame tokens"
    embedding_kind = "timestamp"
    defaults: dict[str, Any] = {
        "lr": 0.1,
        "epochs": 100,
        "warmup_epochs": 5,
        "batch_size": 256,
        "momentum": 0.9,
        "grad_clip": 3.0,
        "val_every": 1,
        "val_median_filter": 3,
        "test_median_filter": 7,
        "threshold": 0.5,
        "valid_fraction": 0.1,
        "valid_seed": 0,
    }

    def supports(self, task) -> str | None:
        return None if task.is_event else "sed needs an event task"

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        train, valid, test = (
            load_events(ctx.cache, ctx.model, task, s) for s in (fold.train, fold.valid, fold.test)
        )
        weak = weak_labels(task)
        if weak and len(weak) != 2:
            raise ValueError(f"{task.path}: weak_splits must name a train and a valid split")
        weak_train, weak_valid = (
            (weak_clips(ctx, split, labels) for split, labels in weak.items())
            if weak
            else (None, None)
        )
        head = StrongWeakHead(
            train.x.shape[1], len(task.labels), seeded_generator("sed", ctx.seed, fold.name)
        ).to(ctx.device)
        best_state, best_value, best_epoch = self._train(
            ctx, head, train, weak_train, valid, weak_valid
        )
        head.load_state_dict(best_state)
        scores, curves = self._test(ctx, head, test)
        write_json_atomic(ctx.workdir / "psd_roc.json", curves)
        primary = task.primary_score if task.primary_score in scores else "psds1"
        return [
            FoldResult(
                fold=fold.name,
                scores=scores,
                primary=primary,
                valid_source=fold.valid_source,
                details={
                    "best_epoch": best_epoch,
                    "validation_objective": best_value,
                    "n_train": len(train.files),
                    "n_weak_train": 0 if weak_train is None else len(weak_train),
                    "n_valid": len(valid.files),
                    "n_test": len(test.files),
                    "encoder": "frozen (the paper also trains the last block and final norm)",
                },
            )
        ]

    def _train(
        self,
        ctx: UnitContext,
        head,
        train: EventData,
        weak: Clips | None,
        valid: EventData,
        weak_valid: Clips | None,
    ):
        """Steps draw half strong, half weak clips (the paper's 128 + 128) when the task has
        weak clips; an epoch is one pass over the strong clips. Without weak clips the weak
        loss uses the strong clips' labels."""
        params = ctx.params
        strong = strong_clips(train, ctx.device)
        optimizer = torch.optim.SGD(head.parameters(), lr=params["lr"], momentum=params["momentum"])
        per_step = int(params["batch_size"]) // (2 if weak is not None else 1)
        steps_per_epoch = math.ceil(len(strong) / per_step)
        epochs = int(params["epochs"])
        total, warmup = epochs * steps_per_epoch, int(params["warmup_epochs"]) * steps_per_epoch
        order = seeded_generator("sed-order", ctx.seed, ctx.fold)
        weak_rows = _cycle(len(weak), per_step, order) if weak is not None else None
        best = (None, -math.inf, -1)
        step = 0
        for epoch in tqdm(
            range(epochs), desc=f"sed {ctx.task.name}", disable=not ctx.progress, leave=False
        ):
            head.train()
            for rows in torch.randperm(len(strong), generator=order).split(per_step):
                for group in optimizer.param_groups:
                    group["lr"] = schedules.learning_rate(step, params["lr"], warmup, total)
                frames, clip_scores = head(strong.x[rows], strong.mask[rows])
                real = strong.mask[rows][..., None].expand_as(frames)
                loss = F.binary_cross_entropy(frames[real], strong.frame_y[rows][real])
                if weak is None:
                    loss = loss + F.binary_cross_entropy(clip_scores, strong.clip_y[rows])
                else:
                    picked = next(weak_rows)
                    _, weak_scores = head(weak.x[picked], weak.mask[picked])
                    loss = loss + F.binary_cross_entropy(weak_scores, weak.clip_y[picked])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(head.parameters(), params["grad_clip"])
                optimizer.step()
                step += 1
            if (epoch + 1) % int(params["val_every"]) == 0 or epoch + 1 == epochs:
                value = self._validation_objective(ctx, head, valid, weak_valid)
                if value > best[1]:
                    best = (
                        {k: v.detach().clone() for k, v in head.state_dict().items()},
                        value,
                        epoch,
                    )
        return best

    @torch.no_grad()
    def _predict(self, head, clips: Clips) -> tuple[np.ndarray, np.ndarray]:
        """Frame scores ``[F, C]`` (real frames, clip after clip) and clip scores ``[N, C]``."""
        head.eval()
        frames, clip_scores = head(clips.x, clips.mask)
        return frames[clips.mask].cpu().numpy(), clip_scores.cpu().numpy()

    def _validation_objective(
        self, ctx: UnitContext, head, valid: EventData, weak_valid: Clips | None
    ) -> float:
        """Intersection macro-F1 (strong clips) + weak macro-F1 (weak clips if any)."""
        from sklearn.metrics import f1_score

        threshold = ctx.params["threshold"]
        frames, clip_scores = self._predict(head, strong_clips(valid, ctx.device))
        clip_targets = valid.clip_targets()
        if weak_valid is not None:
            _, clip_scores = self._predict(head, weak_valid)
            clip_targets = weak_valid.clip_y.cpu().numpy()
        smoothed = valid.frame_scores(frames, ctx.task.labels).median_filtered(
            int(ctx.params["val_median_filter"])
        )
        intersection = intersection_f1(smoothed, valid.reference, valid.durations_ms, threshold)
        weak_f1 = f1_score(clip_targets, clip_scores > threshold, average="macro", zero_division=0)
        return float(intersection + weak_f1)

    def _test(self, ctx: UnitContext, head, test: EventData) -> tuple[dict, dict]:
        task, threshold = ctx.task, ctx.params["threshold"]
        frames, _ = self._predict(head, strong_clips(test, ctx.device))
        smoothed = test.frame_scores(frames, task.labels).median_filtered(
            int(ctx.params["test_median_filter"])
        )
        durations = test.durations_ms
        detections = {t: smoothed.decode(t, durations) for t in PSDS_THRESHOLDS}
        events = smoothed.decode(threshold, durations)
        curves, scores = {}, {}
        for name, params in (("psds1", PSDS1), ("psds2", PSDS2)):
            approximate = psds_from_operating_points(
                detections, test.reference, durations, task.labels, params
            )
            exact = psds_from_scores(smoothed, test.reference, durations, params)
            for key, result in ((name, approximate), (f"{name}_sed_scores_eval", exact)):
                scores[key] = result.value
                curves[key] = {"value": result.value, "efpr": result.efpr, "etpr": result.etpr}
        scores["intersection_f1"] = intersection_f1(smoothed, test.reference, durations, threshold)
        scores["event_f1_macro"] = event_based_scores(
            events,
            test.reference,
            task.labels,
            t_collar=0.2,
            evaluate_offset=True,
            percentage_of_length=0.2,
        )["f_measure_macro"]
        own = [n for n in task.evaluation if n not in scores and score_spec(n).event]
        scores.update(
            compute_scores(
                own, EventPredictions(events, test.reference, task.labels, smoothed, durations)
            )
        )
        return scores, curves
