"""``sed``: the ATST paper's DCASE sound event detection head on frame embeddings.

Recipe (``docs/fidelity.md``; official ``atstframe/downstream/utils_dcase/model_dcase.py``
and ``utils_dcase/conf/frame_40.yaml``), on the 40 ms tokens of the last block:

* head (``LinearHead(use_norm=False)``): strong scores ``sigmoid(Linear(D, C))`` per frame; weak
  (clip) scores pool them with attention, ``sum_t strong * a / sum_t a`` where
  ``a = clamp(softmax_classes(Linear(D, C)), 1e-7, 1)`` (a softmax over the classes of each
  frame); both linears N(0, 0.01) with zero bias;
* loss: BCE of the strong scores against frame labels (strongly labelled clips) plus BCE of the
  weak scores against clip labels of weakly labelled clips, each step drawing half of each
  (the paper's 128 + 128); the weak clips are those a task lists in ``weak_splits`` /
  ``weak_label_file`` (DESED's, as ``atst-hear prepare desed`` writes them); a task without
  them uses its strong clips' labels for the weak loss;
* epoch: ``len(weak) // 128`` steps (``batch_len_index: 1``; DESED: 11 steps, 1,100 in all);
  SGD lr 0.1, momentum 0.9, no weight decay, 100 epochs, linear warm-up over 5 epochs (55 steps)
  then a cosine to 1e-6 per step, gradient norm clipped at 3;
* ``finetune_mode: true`` (the paper's setting): the encoder's last block and final norm train
  with the head at the same learning rate, on the clips' audio, the blocks below frozen in eval
  mode (``frame_atst_module.py`` ``finetune_mode``), the last block with stochastic depth
  ``drop_path`` (0.1, the DCASE encoder's default); false: the head alone on the cached frozen
  embeddings;
* model selection on validation: intersection macro-F1 at 0.5 after a 3-frame median filter on
  the strongly labelled validation clips plus the weak macro-F1 on the weak validation clips,
  best epoch kept;
* test: a 7-frame median filter, PSDS1 and PSDS2 with psds_eval at 50 thresholds and with
  sed_scores_eval (exact), event-based macro-F1 (sed_eval, 200 ms onset collar, 20 % offset
  tolerance), intersection macro-F1 at 0.5, and the task's own scores on events decoded at 0.5.

The PSD-ROC curves go to ``psd_roc.json``. ``finetune_mode`` holds the training and validation
audio in memory (DESED: about 7 GB as float32).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ... import schedules
from ...audio import SAMPLE_RATE, read_audio
from ...fileio import write_json_atomic
from ...finetuning import LastBlockTokens
from ...tasks.event_metrics import event_based_scores
from ...tasks.psds import PSDS1, PSDS2, intersection_f1, psds_eval_from_scores, psds_from_scores
from ...tasks.scores import EventPredictions, compute_scores, score_spec
from ..cache import audio_source
from ..heads.batched import seeded_generator
from .base import FoldResult, Protocol, UnitContext
from .data import (
    EventData,
    FileSelection,
    holdout_rotation,
    load_events,
    multi_hot,
    select_folds,
    weak_labels,
)
from .finetune import trainable_encoder

EMBED_BATCH = 32  # clips per encoder pass when finetune_mode re-embeds a split

SED_SCORES = (
    "psds1",
    "psds2",
    "psds1_sed_scores_eval",
    "psds2_sed_scores_eval",
    "intersection_f1",
    "event_f1_macro",
)


class StrongWeakHead(torch.nn.Module):
    """The DCASE head: frame-level (strong) scores and attention-pooled clip (weak) scores.

    As the official ``LinearHead(use_norm=False)``: both linears N(0, 0.01) with zero bias; the
    attention is a softmax over the classes of each frame, clamped to [1e-7, 1].
    """

    def __init__(self, dim: int, n_classes: int, generator: torch.Generator):
        super().__init__()
        self.strong = torch.nn.Linear(dim, n_classes)
        self.attention = torch.nn.Linear(dim, n_classes)
        for layer in (self.strong, self.attention):
            with torch.no_grad():
                layer.weight.normal_(0.0, 0.01, generator=generator)
                layer.bias.zero_()

    def attention_weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, C]``: per frame a distribution over the classes; zero on padded frames."""
        weights = torch.clamp(torch.softmax(self.attention(x), dim=-1), 1e-7, 1.0)
        return weights * mask[..., None]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, T, D]``, ``mask [B, T]`` (True on real frames) -> strong ``[B, T, C]``, weak
        ``[B, C]``."""
        strong = torch.sigmoid(self.strong(x))
        attention = self.attention_weights(x, mask)
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
    waves: list[torch.Tensor] | None = None  # ``finetune_mode``: the clips' audio, row by row

    def __len__(self) -> int:
        return len(self.x)

    def inputs(
        self, rows: torch.Tensor, tokens: LastBlockTokens | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Head inputs, mask and frame labels of ``rows``: cached embeddings, or (``tokens``)
        the trainable encoder's tokens of the clips' audio."""
        if tokens is None:
            return self.x[rows], self.mask[rows], self.frame_y[rows]
        x, mask = tokens([self.waves[i] for i in rows.tolist()])
        width = x.shape[1]
        if not torch.equal(mask, self.mask[rows][:, :width]):
            raise ValueError("finetune_mode: the encoder's tokens do not line up with the cache's")
        return x, mask, self.frame_y[rows][:, :width]


def _pad(frames: np.ndarray, lengths: np.ndarray, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(len(lengths), int(lengths.max()), frames.shape[1])
    mask = torch.zeros(len(lengths), int(lengths.max()), dtype=torch.bool)
    start = 0
    for i, length in enumerate(lengths.tolist()):
        x[i, :length] = torch.from_numpy(frames[start : start + length])
        mask[i, :length] = True
        start += length
    return x.to(device), mask.to(device)


def strong_clips(data: EventData, device: str, waves: list[torch.Tensor] | None = None) -> Clips:
    x, mask = _pad(data.x, data.lengths, device)
    frame_y, _ = _pad(data.y, data.lengths, device)
    return Clips(x, mask, frame_y, torch.from_numpy(data.clip_targets()).to(device), waves)


def weak_clips(
    ctx: UnitContext, split: str, labels: dict[str, list[str]], with_audio: bool = False
) -> Clips:
    """A weakly labelled split (clip labels only)."""
    task = ctx.task
    emb = ctx.cache.get(ctx.model, task, split, "timestamp", files=sorted(labels))
    x, mask = _pad(emb.embeddings, emb.lengths, ctx.device)
    clip_y = multi_hot(task, [labels[f] for f in emb.files], f"{task.path} (weak split {split})")
    waves = [_read(task, split, f) for f in emb.files] if with_audio else None
    return Clips(
        x,
        mask,
        torch.zeros(*mask.shape, len(task.labels), device=ctx.device),
        torch.from_numpy(clip_y).to(ctx.device),
        waves,
    )


def _read(task, split: str, name: str) -> torch.Tensor:
    return read_audio(audio_source(task, split, name), SAMPLE_RATE)


def selection_audio(task, selection: FileSelection, files: list[str]) -> list[torch.Tensor]:
    """The audio of ``files`` (in that order) from the splits of ``selection``."""
    split_of = {name: split for split in selection.splits for name in task.split_labels(split)}
    return [_read(task, split_of[name], name) for name in files]


@torch.no_grad()
def reembedded(data: EventData, waves: list[torch.Tensor], tokens: LastBlockTokens) -> EventData:
    """``data`` with its frame embeddings recomputed by the (partly trained) encoder."""
    tokens.eval()
    parts = []
    for start in range(0, len(waves), EMBED_BATCH):
        x, mask = tokens(waves[start : start + EMBED_BATCH])
        parts.append(x[mask].cpu().numpy())
    x = np.concatenate(parts)
    if x.shape != data.x.shape:
        raise ValueError(
            f"finetune_mode: the encoder gives {x.shape[0]} frames, the cache {data.x.shape[0]}"
        )
    return dataclasses.replace(data, x=x)


@torch.no_grad()
def reembedded_clips(clips: Clips, tokens: LastBlockTokens) -> Clips:
    tokens.eval()
    x = torch.zeros_like(clips.x)
    for rows in torch.arange(len(clips)).split(EMBED_BATCH):
        embedded, _, _ = clips.inputs(rows, tokens)
        x[rows, : embedded.shape[1]] = embedded
    return dataclasses.replace(clips, x=x)


def epoch_layout(n_strong: int, n_weak: int | None, batch_size: int) -> tuple[int, int | None, int]:
    """(strong clips a step, weak clips a step, steps an epoch).

    With weak clips a step takes half of each and an epoch is the full weak batches
    (``batch_len_index: 1``, ``drop_last``); without, the strong clips set it. A set smaller
    than its share gives all its clips every step; an epoch has at least one step.
    """
    per_step = batch_size // (1 if n_weak is None else 2)
    strong_batch = min(per_step, n_strong)
    if n_weak is None:
        return strong_batch, None, max(1, n_strong // strong_batch)
    weak_batch = min(per_step, n_weak)
    return strong_batch, weak_batch, max(1, n_weak // weak_batch)


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
    version = 2
    description = "ATST paper DCASE head (strong + attention-pooled weak) on frozen frame tokens"
    embedding_kind = "timestamp"
    published_params = (
        "lr",
        "epochs",
        "warmup_epochs",
        "batch_size",
        "momentum",
        "grad_clip",
        "val_median_filter",
        "test_median_filter",
        "threshold",
        "drop_path",
    )

    class Params(Protocol.Params):
        lr: float = 0.1
        epochs: int = 100
        warmup_epochs: int = 5
        batch_size: int = 256
        momentum: float = 0.9
        grad_clip: float = 3.0
        val_every: int = 1
        val_median_filter: int = 3
        test_median_filter: int = 7
        threshold: float = 0.5
        finetune_mode: bool = False
        drop_path: float = 0.1  # finetune_mode: stochastic depth of the trained last block
        valid_fraction: float = 0.1
        valid_seed: int = 0

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
        tokens = self._trainable_tokens(ctx) if params["finetune_mode"] else None
        weak = weak_labels(task)
        if weak and len(weak) != 2:
            raise ValueError(f"{task.path}: weak_splits must name a train and a valid split")
        weak_train, weak_valid = (
            (weak_clips(ctx, split, labels, tokens is not None) for split, labels in weak.items())
            if weak
            else (None, None)
        )
        head = StrongWeakHead(
            train.x.shape[1], len(task.labels), seeded_generator("sed", ctx.seed, fold.name)
        ).to(ctx.device)
        audio = (
            None
            if tokens is None
            else {
                "train": selection_audio(task, fold.train, train.files),
                "valid": selection_audio(task, fold.valid, valid.files),
            }
        )
        best_state, best_value, best_epoch = self._train(
            ctx, head, train, weak_train, valid, weak_valid, tokens, audio
        )
        head.load_state_dict(best_state["head"])
        if tokens is not None:
            tokens.load_trained_state(best_state["encoder"])
            test = reembedded(test, selection_audio(task, fold.test, test.files), tokens)
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
                    "steps_per_epoch": epoch_layout(
                        len(train.files),
                        None if weak_train is None else len(weak_train),
                        int(params["batch_size"]),
                    )[2],
                    "n_valid": len(valid.files),
                    "n_test": len(test.files),
                    "encoder": "last block and final norm trained"
                    if tokens is not None
                    else "frozen (the paper also trains the last block and final norm)",
                    "deviations": []
                    if tokens is not None
                    else [
                        "sed: encoder frozen (finetune_mode: false); the official DCASE recipe "
                        "trains the last block and final norm"
                    ],
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
        tokens: LastBlockTokens | None = None,
        audio: dict[str, list[torch.Tensor]] | None = None,
    ):
        """Steps draw half strong, half weak clips (the paper's 128 + 128) when the task has
        weak clips, each set cycling through shuffled passes of its own; as the official
        ``batch_len_index: 1``, an epoch is ``len(weak) // (batch_size / 2)`` steps (DESED: 11).
        Without weak clips an epoch is ``len(strong) // batch_size`` steps and the weak loss uses
        the strong clips' labels. ``tokens`` (``finetune_mode``): the encoder's last block and
        final norm train with the head, at its learning rate, on the clips' ``audio``."""
        params = ctx.params
        strong = strong_clips(train, ctx.device, None if audio is None else audio["train"])
        trained = [*head.parameters(), *([] if tokens is None else tokens.trained.parameters())]
        optimizer = torch.optim.SGD(trained, lr=params["lr"], momentum=params["momentum"])
        strong_batch, weak_batch, steps_per_epoch = epoch_layout(
            len(strong), None if weak is None else len(weak), int(params["batch_size"])
        )
        epochs = int(params["epochs"])
        total, warmup = epochs * steps_per_epoch, int(params["warmup_epochs"]) * steps_per_epoch
        order = seeded_generator("sed-order", ctx.seed, ctx.fold)
        strong_rows = _cycle(len(strong), strong_batch, order)
        weak_rows = None if weak is None else _cycle(len(weak), weak_batch, order)
        best = (None, -math.inf, -1)
        step = 0
        for epoch in tqdm(
            range(epochs), desc=f"sed {ctx.task.name}", disable=not ctx.progress, leave=False
        ):
            head.train()
            if tokens is not None:
                tokens.train()
            for _ in range(steps_per_epoch):
                rows = next(strong_rows)
                for group in optimizer.param_groups:
                    group["lr"] = schedules.learning_rate(step, params["lr"], warmup, total)
                x, mask, frame_y = strong.inputs(rows, tokens)
                frames, clip_scores = head(x, mask)
                real = mask[..., None].expand_as(frames)
                loss = F.binary_cross_entropy(frames[real], frame_y[real])
                if weak is None:
                    loss = loss + F.binary_cross_entropy(clip_scores, strong.clip_y[rows])
                else:
                    picked = next(weak_rows)
                    x, mask, _ = weak.inputs(picked, tokens)
                    _, weak_scores = head(x, mask)
                    loss = loss + F.binary_cross_entropy(weak_scores, weak.clip_y[picked])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, params["grad_clip"])
                optimizer.step()
                step += 1
            if (epoch + 1) % int(params["val_every"]) == 0 or epoch + 1 == epochs:
                if tokens is None:
                    value = self._validation_objective(ctx, head, valid, weak_valid)
                else:
                    value = self._validation_objective(
                        ctx,
                        head,
                        reembedded(valid, audio["valid"], tokens),
                        None if weak_valid is None else reembedded_clips(weak_valid, tokens),
                    )
                    tokens.train()
                if value > best[1]:
                    state = {"head": {k: v.detach().clone() for k, v in head.state_dict().items()}}
                    if tokens is not None:
                        state["encoder"] = tokens.trained_state()
                    best = (state, value, epoch)
        return best

    @staticmethod
    def _trainable_tokens(ctx: UnitContext) -> LastBlockTokens:
        """The paper's ``finetune_mode``: the suite model's encoder, last block and final norm
        trained. Its tokens must be the cached ones (last block only, default pooling)."""
        options = ctx.model.options
        if options.get("n_blocks") != 1 or options.get("compat", "default") != "default":
            raise ValueError(
                "sed finetune_mode trains the last block: set the model's embedding_options to "
                f"n_blocks: 1 (and compat: default), got {options}"
            )
        encoder = trainable_encoder(ctx.model)
        return LastBlockTokens(encoder, float(ctx.params["drop_path"])).to(ctx.device)

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
        events = smoothed.decode(threshold, durations)
        curves, scores = {}, {}
        for name, params in (("psds1", PSDS1), ("psds2", PSDS2)):
            approximate = psds_eval_from_scores(smoothed, test.reference, durations, params)
            exact = psds_from_scores(smoothed, test.reference, durations, params)
            for key, result in ((name, approximate), (f"{name}_sed_scores_eval", exact)):
                scores[key] = result.value
                curves[key] = {"value": result.value, "efpr": result.efpr, "etpr": result.etpr}
                if result.not_computed_because:  # psds_eval refused: NaN, and why
                    curves[key]["not_computed_because"] = result.not_computed_because
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
