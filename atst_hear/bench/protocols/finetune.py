"""``finetune``: the ATST paper's fine-tuning of the whole encoder on a scene task.

Recipe (``atst-reference.md`` §6.3):

* model: the pre-trained (teacher) encoder, last block after the final norm pooled (ATST-Clip:
  ``[cls, token mean]``; ATST-Frame: token mean), then ``BatchNorm1d(affine=False)`` +
  ``Linear`` (N(0, 0.01) weights, zero bias);
* SGD, momentum 0.9, no weight decay, gradient norm clipped at 3, per-step linear warm-up then
  cosine to 1e-6, learning rate = shell value x ``batch_size / 256`` (total batch 512, reached
  with gradient accumulation over ``micro_batch``-sized steps);
* layer-wise learning-rate decay 0.75: embeddings ``0.75^depth``, block ``i`` ``0.75^(depth-i)``,
  final norm 0.75, head 1;
* ``mixup_alpha`` set: mixup in the normalised log-mel domain with labels mixed (and BCE loss),
  followed by a random resize crop (virtual canvas x1-1.5, crop scale 0.6-1.5), as the paper does
  for non-AudioSet tasks; unset: no augmentation;
* training crops of ``crop_seconds`` (default: the model's pre-training length, at most the
  positional table's 10 s); evaluation pools every chunk of a clip, weighted by its tokens.

Differences: mixup partners come from the same batch rather than a 5000-clip memory bank; the
checkpoint tested is the best on the validation split (the official code tests the last one for
these tasks), because this benchmark selects on validation only. The unit saves its training
state after every epoch and resumes from it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ... import schedules
from ...audio import SAMPLE_RATE, read_audio
from ...embeddings import finetune_embedding
from ...fileio import atomic_output
from ...frontend import HOP_LENGTH, MIN_SAMPLES, LogMelFrontend, num_frames
from ...models.checkpoints import load_encoder
from ...models.encoder import ATSTConfig, ATSTEncoder, layer_decay_groups
from ..cache import ModelSpec, audio_source
from ..metrics import compute_scores, score_spec
from ..taskfolder import TaskFolder
from .base import FoldResult, Protocol, UnitContext
from .batched import seeded_generator
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
            trust_checkpoint=bool(options.get("trust_checkpoint", False)),
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


class FinetuneModel(torch.nn.Module):
    def __init__(self, encoder: ATSTEncoder, n_classes: int, generator: torch.Generator):
        super().__init__()
        self.frontend = LogMelFrontend()
        self.encoder = encoder
        config = encoder.config
        dim = 2 * config.width if config.flavour == "clip" else config.width
        self.head_norm = torch.nn.BatchNorm1d(dim, affine=False)
        self.head = torch.nn.Linear(dim, n_classes)
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.01, generator=generator)
            self.head.bias.zero_()

    def features(self, mel: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Pooled last-block features of ``mel [B, 1, 64, T]`` with valid ``frame_lengths``."""
        return finetune_embedding(self.encoder, mel, frame_lengths)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_norm(features))


class CropDataset(Dataset):
    """Training clips as random crops of ``crop_samples`` (zero-padded when shorter), drawn
    from generators seeded by (seed, epoch, clip) so that workers and resumed runs agree."""

    def __init__(self, task: TaskFolder, items, targets, crop_samples: int, seed: int):
        self.task, self.items, self.targets = task, items, targets
        self.crop_samples, self.seed, self.epoch = crop_samples, seed, 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        split, name = self.items[index]
        wave = read_audio(audio_source(self.task, split, name), SAMPLE_RATE)
        generator = seeded_generator("finetune-crop", self.seed, self.epoch, index)
        if len(wave) > self.crop_samples:
            start = int(
                torch.randint(0, len(wave) - self.crop_samples + 1, (1,), generator=generator)
            )
            wave = wave[start : start + self.crop_samples]
        length = len(wave)
        padded = torch.zeros(self.crop_samples)
        padded[:length] = wave
        return padded, length, self.targets[index]


def random_resize_crop(mel: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """BYOL-A's RandomResizeCrop on ``[B, 1, F, T]``: a random region of a zero-padded virtual
    canvas (x1-1.5) with frequency and time scales 0.6-1.5, resized back to ``F x T``."""
    batch, _, height, width = mel.shape
    out = torch.empty_like(mel)
    for i in range(batch):
        draws = torch.rand(4, generator=generator).tolist()
        canvas_h, canvas_w = int(height * (1 + 0.5 * draws[0])), int(width * (1 + 0.5 * draws[0]))
        canvas = mel.new_zeros(1, 1, canvas_h, canvas_w)
        top, left = (canvas_h - height) // 2, (canvas_w - width) // 2
        canvas[..., top : top + height, left : left + width] = mel[i : i + 1]
        crop_h = min(canvas_h, max(1, int(height * (0.6 + 0.9 * draws[1]))))
        crop_w = min(canvas_w, max(1, int(width * (0.6 + 0.9 * draws[2]))))
        offsets = torch.rand(2, generator=generator).tolist()
        y0 = int(offsets[0] * (canvas_h - crop_h + 1))
        x0 = int(offsets[1] * (canvas_w - crop_w + 1))
        region = canvas[..., y0 : y0 + crop_h, x0 : x0 + crop_w]
        out[i : i + 1] = F.interpolate(
            region, size=(height, width), mode="bilinear", align_corners=True
        )
    return out


class Finetune(Protocol):
    name = "finetune"
    version = 1
    description = "ATST paper fine-tuning: whole encoder, layer-wise lr decay 0.75, SGD, mixup+RRC"
    embedding_kind = None
    defaults: dict[str, Any] = {
        "lr": 0.5,  # shell value; effective = lr * batch_size / 256
        "epochs": 50,
        "warmup_epochs": 5,
        "batch_size": 512,
        "micro_batch": 64,
        "lr_reference_batch": 256,
        "layer_decay": 0.75,
        "momentum": 0.9,
        "grad_clip": 3.0,
        "mixup_alpha": None,
        "crop_seconds": None,
        "val_every": 1,
        "num_workers": 2,
        "valid_fraction": 0.1,
        "valid_seed": 0,
    }

    def supports(self, task) -> str | None:
        return "finetune runs on scene tasks (use sed for events)" if task.is_event else None

    def run(self, ctx: UnitContext) -> list[FoldResult]:
        task, params = ctx.task, ctx.params
        (fold,) = select_folds(
            holdout_rotation(task, params["valid_fraction"], params["valid_seed"]), [ctx.fold]
        )
        if score_spec(task.primary_score).event:
            raise ValueError(f"{task.path}: primary score {task.primary_score!r} needs events")
        if params["batch_size"] % params["micro_batch"]:
            raise ValueError("finetune: batch_size must be a multiple of micro_batch")
        model = FinetuneModel(
            trainable_encoder(ctx.model),
            len(task.labels),
            seeded_generator("finetune-head", ctx.seed, fold.name),
        ).to(ctx.device)
        config = model.encoder.config
        max_seconds = config.max_tokens * config.patch_width * HOP_LENGTH / SAMPLE_RATE
        crop_seconds = min(params["crop_seconds"] or config.train_len, max_seconds)
        if task.sample_duration:  # never pad every clip of a fixed-length task to the crop
            crop_seconds = min(crop_seconds, task.sample_duration)
        crop_samples = int(crop_seconds * SAMPLE_RATE)
        train_items, train_y = _items(task, fold.train)
        valid_items, valid_y = _items(task, fold.valid)
        test_items, test_y = _items(task, fold.test)
        best_epoch, best_value = self._train(
            ctx, model, train_items, train_y, valid_items, valid_y, crop_samples
        )
        model.load_state_dict(torch.load(ctx.workdir / "best.pt", weights_only=True))
        probs = self._predict(ctx, model, test_items, crop_samples)
        return [
            FoldResult(
                fold=fold.name,
                scores=compute_scores(task.evaluation, probs, test_y),
                primary=task.primary_score,
                valid_source=fold.valid_source,
                details={
                    "best_epoch": best_epoch,
                    "validation_score": best_value,
                    "crop_seconds": crop_seconds,
                    "n_train": len(train_items),
                    "n_valid": len(valid_items),
                    "n_test": len(test_items),
                },
            )
        ]

    def _train(self, ctx, model, train_items, train_y, valid_items, valid_y, crop_samples):
        params, task = ctx.params, ctx.task
        spec = score_spec(task.primary_score)
        dataset = CropDataset(task, train_items, train_y, crop_samples, ctx.seed)
        accumulate = params["batch_size"] // params["micro_batch"]
        steps_per_epoch = max(1, math.ceil(len(dataset) / params["batch_size"]))
        epochs = int(params["epochs"])
        total, warmup = epochs * steps_per_epoch, int(params["warmup_epochs"]) * steps_per_epoch
        base_lr = params["lr"] * params["batch_size"] / params["lr_reference_batch"]
        groups = layer_decay_groups(model, model.encoder, params["layer_decay"])
        optimizer = torch.optim.SGD(groups, lr=base_lr, momentum=params["momentum"])
        augment = seeded_generator("finetune-augment", ctx.seed, ctx.fold)
        state_file = ctx.workdir / "finetune-state.pt"
        start_epoch, step, best = 0, 0, (-1, -math.inf if spec.maximize else math.inf)
        if state_file.is_file():  # resume an interrupted unit
            state = torch.load(state_file, weights_only=True)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            augment.set_state(state["augment"])
            start_epoch, step, best = state["epoch"] + 1, state["step"], tuple(state["best"])
            ctx.log(f"resuming fine-tuning after epoch {state['epoch']}")
        multilabel_loss = params["mixup_alpha"] is not None or task.is_multilabel
        for epoch in tqdm(
            range(start_epoch, epochs), desc=f"finetune {task.name}", disable=not ctx.progress
        ):
            dataset.epoch = epoch
            loader = DataLoader(
                dataset,
                batch_size=params["micro_batch"],
                shuffle=True,
                num_workers=params["num_workers"],
                drop_last=False,
                generator=seeded_generator("finetune-order", ctx.seed, epoch),
            )
            model.train()
            for index, (wave, length, target) in enumerate(loader):
                wave, target = wave.to(ctx.device), target.to(ctx.device)
                frame_lengths = torch.tensor(
                    [num_frames(int(n)) for n in length], device=ctx.device
                )
                mel = model.frontend(wave)
                if params["mixup_alpha"] is not None:
                    mel, target = _mixup(mel, target, params["mixup_alpha"], augment)
                    mel = random_resize_crop(mel, augment)
                logits = model.classify(model.features(mel, frame_lengths))
                if multilabel_loss:
                    loss = F.binary_cross_entropy_with_logits(logits, target)
                else:
                    loss = F.cross_entropy(logits, target.argmax(1))
                (loss / accumulate).backward()
                if (index + 1) % accumulate == 0 or index + 1 == len(loader):
                    for group in optimizer.param_groups:
                        group["lr"] = group["lr_scale"] * schedules.learning_rate(
                            step, base_lr, warmup, total
                        )
                    torch.nn.utils.clip_grad_norm_(model.parameters(), params["grad_clip"])
                    optimizer.step()
                    optimizer.zero_grad()
                    step += 1
            if (epoch + 1) % int(params["val_every"]) == 0 or epoch + 1 == epochs:
                probs = self._predict(ctx, model, valid_items, crop_samples)
                value = float(spec.compute(probs, valid_y))
                if best[0] < 0 or (value > best[1] if spec.maximize else value < best[1]):
                    best = (epoch, value)
                    _save(ctx.workdir / "best.pt", model.state_dict())
            _save(
                state_file,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "augment": augment.get_state(),
                    "epoch": epoch,
                    "step": step,
                    "best": list(best),
                },
            )
        return best

    @torch.no_grad()
    def _predict(self, ctx, model, items, crop_samples) -> np.ndarray:
        """Class probabilities per clip; long clips are pooled over all their chunks."""
        model.eval()
        out = []
        for split, name in items:
            wave = read_audio(audio_source(ctx.task, split, name), SAMPLE_RATE)
            chunks = list(wave.split(crop_samples))
            if len(chunks) > 1 and len(chunks[-1]) < HOP_LENGTH * model.encoder.config.patch_width:
                chunks = chunks[:-1]  # a tail shorter than one token carries nothing
            lengths = [len(c) for c in chunks]
            batch = torch.zeros(len(chunks), max(max(lengths), MIN_SAMPLES))
            for row, chunk in enumerate(chunks):
                batch[row, : len(chunk)] = chunk
            batch = batch.to(ctx.device)
            frame_lengths = torch.tensor([num_frames(n) for n in lengths], device=ctx.device)
            features = model.features(model.frontend(batch), frame_lengths)
            weights = model.encoder.token_lengths(frame_lengths).float().clamp(min=1)
            pooled = (features * weights[:, None]).sum(0, keepdim=True) / weights.sum()
            logits = model.classify(pooled)
            multilabel = ctx.task.is_multilabel
            out.append((torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)).cpu())
        return torch.cat(out).numpy()


def _items(task: TaskFolder, selection: FileSelection):
    items, labels = [], []
    for split in selection.splits:
        split_labels = task.split_labels(split)
        for name in sorted(split_labels):
            if selection.files is None or name in selection.files:
                items.append((split, name))
                labels.append(split_labels[name])
    return items, torch.from_numpy(multi_hot(task, labels, f"{task.path} ({selection.describe()})"))


def _mixup(mel, target, alpha, generator):
    """Mix every example with a random partner of the batch (one Beta(alpha, alpha) per pair)."""
    batch = mel.shape[0]
    seed = int(torch.randint(0, 2**31, (1,), generator=generator))
    lam = torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, batch)).float()
    lam = lam.to(mel.device)
    partner = torch.randperm(batch, generator=generator).to(mel.device)
    mixed = lam[:, None, None, None] * mel + (1 - lam[:, None, None, None]) * mel[partner]
    return mixed, lam[:, None] * target + (1 - lam[:, None]) * target[partner]


def _save(path, obj) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
