"""The teacher-student Lightning module of ATST-Clip and ATST-Frame pre-training.

``model.student`` = encoder + projector + predictor, ``model.teacher`` = encoder + projector,
an exponential moving average of the student (``atst-reference.md`` §4.1). The encoder is
:class:`atst_hear.models.encoder.ATSTEncoder`, the class every embedding uses.

* ATST-Clip: both views through both networks; loss on the cls token (``final_norm(x)[:, 0]``
  of the last block), teacher view ↔ student prediction of the other view.
* ATST-Frame: the teacher sees unmasked views; the student sees the same views with masked
  tokens replaced by ``mask_embed``; the loss compares the final-normed outputs at the masked
  positions, view 1 ↔ view 2.

Every step ``i`` uses learning rate, weight decay and EMA momentum of step ``i``
(``schedules.py``), and reseeds the random streams from ``(seed, i, rank)``: DropPath and the
views draw the same numbers whether or not the run was interrupted and resumed.

By default the teacher runs in train mode, as in the official code (DropPath active, BatchNorm
on batch statistics); ``teacher_mode: eval`` makes it deterministic instead.
"""

from __future__ import annotations

import copy
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn

from .. import schedules
from ..models.encoder import ATSTEncoder
from .checkpoint import official_hyper_parameters
from .heads import build_mlp, ema_update, masked_prediction_losses, symmetric_byol_loss
from .masking import span_mask
from .recipes import PretrainRecipe
from .views import ClipViews, FrameViews


class Branch(nn.Module):
    """Encoder + projector (+ predictor on the student side)."""

    def __init__(
        self, encoder: ATSTEncoder, projector: nn.Module, predictor: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        if predictor is not None:
            self.predictor = predictor

    def represent(self, features: torch.Tensor) -> torch.Tensor:
        projected = self.projector(features)
        return self.predictor(projected) if hasattr(self, "predictor") else projected


class TeacherStudent(nn.Module):
    def __init__(self, recipe: PretrainRecipe) -> None:
        super().__init__()
        encoder = ATSTEncoder(recipe.encoder_config())
        width = encoder.config.width
        projector = build_mlp(width, recipe.head_hidden, recipe.head_out)
        predictor = build_mlp(recipe.head_out, recipe.head_hidden, recipe.head_out)
        if recipe.flavour == "clip":
            # Clip never masks: mask_embed would get no gradient (and stall DDP)
            encoder.mask_embed.requires_grad_(False)
        self.student = Branch(encoder, projector, predictor)
        self.teacher = Branch(copy.deepcopy(encoder), copy.deepcopy(projector))
        self.teacher.requires_grad_(False)

    def ema_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Teacher and student parameters of encoder + projector (never the predictor)."""
        teacher, student = [], []
        for part in ("encoder", "projector"):
            teacher += list(getattr(self.teacher, part).parameters())
            student += list(getattr(self.student, part).parameters())
        return teacher, student


def step_seed(seed: int, step: int, rank: int, purpose: int) -> int:
    return int(
        np.random.SeedSequence([seed, step, rank, purpose]).generate_state(1, np.uint64)[0] >> 1
    )


def parameter_groups(module: nn.Module) -> list[dict[str, Any]]:
    """Weight decay on weights only: matrices and embeddings, not biases or norm parameters."""
    decayed, plain = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        (plain if name.endswith(".bias") or param.ndim <= 1 else decayed).append(param)
    return [{"params": decayed, "name": "decayed"}, {"params": plain, "name": "no_decay"}]


class PretrainModule(L.LightningModule):
    flops_per_batch = None  # read by Lightning's ThroughputMonitor: steps/s, FLOPs not counted

    def __init__(self, recipe: PretrainRecipe) -> None:
        super().__init__()
        self.recipe = recipe
        self.model = TeacherStudent(recipe)
        if recipe.flavour == "frame":
            self.views: FrameViews | ClipViews = FrameViews(
                recipe.mixup_ratio,
                recipe.mixup_memory,
                recipe.freq_scale,
                recipe.mask_prob,
                recipe.mask_span,
                recipe.encoder_config().patch_width,
            )
        else:
            self.views = ClipViews(
                recipe.mixup_ratio,
                recipe.mixup_memory,
                recipe.freq_scale,
                recipe.time_scale,
                recipe.virtual_time,
            )
        self.save_hyperparameters(official_hyper_parameters(recipe, world_size=1))
        self.peak_lr = recipe.peak_learning_rate(1)
        self._generator = torch.Generator()
        self._current: dict[str, float] = {}

    # --- set-up -----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        world = self.trainer.world_size
        self.peak_lr = self.recipe.peak_learning_rate(world)
        self.hparams.update(official_hyper_parameters(self.recipe, world))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        recipe = self.recipe
        # learning rate and weight decay are set every step (on_train_batch_start); the fused
        # kernel is the same AdamW, 2-6x faster than the per-tensor loop on CPU (bench_pretrain.py)
        return torch.optim.AdamW(
            parameter_groups(self.model.student),
            lr=0.0,
            betas=tuple(recipe.adam_betas),
            eps=recipe.adam_eps,
            weight_decay=0.0,
            fused=True,
        )

    # --- one step ---------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        recipe, step = self.recipe, self.global_step
        lr = schedules.learning_rate(step, self.peak_lr, recipe.warmup_steps, recipe.max_steps)
        decay = schedules.weight_decay(
            step, recipe.max_steps, recipe.weight_decay_start, recipe.weight_decay_end
        )
        for group in self.optimizers(use_pl_optimizer=False).param_groups:
            group["lr"] = lr
            group["weight_decay"] = decay if group.get("name") == "decayed" else 0.0
        rank = self.global_rank
        torch.manual_seed(step_seed(recipe.seed, step, rank, purpose=0))  # DropPath
        self._generator.manual_seed(step_seed(recipe.seed, step, rank, purpose=1))  # views
        momentum = schedules.ema_momentum(step, recipe.max_steps, recipe.ema)
        self._current = {"lr": lr, "weight_decay": decay, "ema": momentum}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.model.teacher.train(self.recipe.teacher_mode == "train")
        if self.recipe.flavour == "frame":
            student, teacher, extra = self._frame_outputs(batch["waves"][0])
        else:
            student, teacher, extra = self._clip_outputs(batch["waves"])
        loss = symmetric_byol_loss(student, teacher)
        size = len(batch["waves"][0])
        current = self._current
        log = {"loss": loss.detach(), "ema": current["ema"], "lr": current["lr"], **extra}
        self.log_dict(log, prog_bar=True, on_step=True, batch_size=size)
        with torch.no_grad():
            spread = torch.nn.functional.normalize(student[0].float(), dim=-1).std(dim=0).mean()
        self.log_dict(
            {"weight_decay": current["weight_decay"], "student_std": spread},
            on_step=True,
            batch_size=size,
        )
        # recorded here, not in on_train_batch_end: callbacks (the periodic checkpoint) run
        # before the module's batch-end hook and would save a data position one batch behind
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "record"):
            datamodule.record(batch)
            self.log("skipped_files", float(datamodule.skipped), on_step=True, batch_size=1)
            # the stream is endless, so Lightning's epoch stays 0; a sample carries the stream
            # position after it, whose pass is the number of passes completed
            self.log("data_passes_done", float(batch["epoch"][-1]), on_step=True, batch_size=1)
        return loss

    def _frame_outputs(self, wave: torch.Tensor):
        views = self.views(wave, self._generator)
        mask = views.token_mask
        model = self.model
        with torch.no_grad():
            teacher_x = model.teacher.encoder(views.mel)[-1]
            teacher = model.teacher.represent(model.teacher.encoder.final_norm(teacher_x)[mask])
        student_x = model.student.encoder(views.mel, token_mask=mask)[-1]
        student = model.student.represent(model.student.encoder.final_norm(student_x)[mask])
        # masks repeat across the two halves, so the masked rows split evenly
        half = len(student) // 2
        fraction = mask.float().mean()
        return (
            (student[:half], student[half:]),
            (teacher[:half], teacher[half:]),
            {"masked": fraction},
        )

    def _clip_outputs(self, waves: list[torch.Tensor]):
        views = self.views((waves[0], waves[1]), self._generator)
        model, lengths = self.model, views.frame_lengths
        with torch.no_grad():
            teacher_x = model.teacher.encoder(views.mel, frame_lengths=lengths)[-1]
            teacher = model.teacher.represent(model.teacher.encoder.final_norm(teacher_x)[:, 0])
        student_x = model.student.encoder(views.mel, frame_lengths=lengths)[-1]
        student = model.student.represent(model.student.encoder.final_norm(student_x)[:, 0])
        half = len(student) // 2
        return (student[:half], student[half:]), (teacher[:half], teacher[half:]), {}

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # the teacher follows the student right after its update, so that every callback of the
        # step (periodic checkpoints, online probes) sees the teacher of this step
        ema_update(*self.model.ema_pairs(), self._current["ema"])

    @torch.no_grad()
    def heldout_prediction_loss(
        self, wave: torch.Tensor, generator: torch.Generator
    ) -> tuple[float, float]:
        """ATST-Frame's masked-prediction loss on held-out ``[B, N]`` crops, and a control.

        Both networks in eval mode, plain views (no mixup or crop), one block mask per clip drawn
        from ``generator``. The control scores the same predictions against teacher targets of
        another clip (the batch rolled by one) at the same positions: a student that predicts
        from position alone scores the same on both, one that predicts content scores lower on
        the first. Returns ``(loss, shuffled_loss)``.
        """
        if self.recipe.flavour != "frame" or len(wave) < 2:
            raise ValueError(
                "the held-out masked-prediction loss needs ATST-Frame and at least 2 clips, got "
                f"{self.recipe.flavour} and {len(wave)}"
            )
        recipe, model = self.recipe, self.model
        was_training = {module: module.training for module in model.modules()}
        model.eval()
        try:
            # the weights' dtype: under bf16-true precision the encoder does not take float32
            mel = self.views.log_mel(wave).to(model.student.encoder.pos_embed.dtype)
            patch_width = model.student.encoder.config.patch_width
            mask = span_mask(
                len(wave),
                mel.shape[-1] // patch_width,
                recipe.mask_prob,
                recipe.mask_span,
                generator=generator,
            ).to(wave.device)
            teacher_x = model.teacher.encoder.final_norm(model.teacher.encoder(mel)[-1])
            targets = model.teacher.represent(teacher_x.flatten(0, 1)).view(*mask.shape, -1)
            student_x = model.student.encoder(mel, token_mask=mask)[-1]
            student = model.student.represent(model.student.encoder.final_norm(student_x)[mask])
            loss, shuffled = masked_prediction_losses(student, targets, mask)
        finally:
            for module, training in was_training.items():
                module.training = training
        return float(loss), float(shuffled)
