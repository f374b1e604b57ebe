"""Running pre-training: the Lightning trainer, checkpoints, logs and resume.

Output folder layout::

    OUT/recipe.yaml                 the resolved recipe (a resume checks it is unchanged)
    OUT/checkpoints/last.ckpt       the newest state (model, teacher, optimiser, step, data position)
    OUT/checkpoints/step-NNNNNNNN.ckpt  every ``checkpoint_every`` steps
    OUT/logs/tensorboard/version_N/ TensorBoard events, one version per start or resume
    OUT/logs/csv/version_N/metrics.csv
    OUT/atst_<flavour>.ckpt         weights + hyper-parameters of the finished run (official layout)
    OUT/probe.csv, OUT/plots/       online probe scores and learning curves (``--probe``)

The same code runs on one CPU, one GPU, several GPUs (DDP, synchronised BatchNorm) and several
nodes: under ``torchrun`` or SLURM's ``srun`` Lightning takes ranks from the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, ThroughputMonitor, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from ..fileio import write_text_atomic
from .checkpoint import write_release_checkpoint
from .data import PretrainDataModule, open_source
from .module import PretrainModule
from .recipes import PretrainRecipe, RecipeError, RecipeFields, read_recipe, recipe_yaml

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.ckpt"


@dataclass(frozen=True)
class Hardware:
    """Where a run executes; none of it changes what the run computes (except precision)."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"

    @property
    def uses_gpu(self) -> bool:
        if self.accelerator == "auto":
            return torch.cuda.is_available()
        return self.accelerator in ("gpu", "cuda")

    @property
    def distributed(self) -> bool:
        devices = self.devices
        if devices in ("auto", -1, "-1"):
            devices = torch.cuda.device_count() if self.uses_gpu else 1
        return self.num_nodes > 1 or int(devices) > 1


def build_trainer(
    out_dir: Path,
    hardware: Hardware,
    callbacks: list[L.Callback],
    log_every: int,
    progress: bool,
    **limits: Any,
) -> L.Trainer:
    # every start (and resume) of a run logs into a new version_N folder of each logger
    loggers = [
        TensorBoardLogger(out_dir / "logs", name="tensorboard", default_hp_metric=False),
        CSVLogger(out_dir / "logs", name="csv"),
    ]
    if progress:
        callbacks = [*callbacks, TQDMProgressBar(refresh_rate=1)]
    return L.Trainer(
        accelerator=hardware.accelerator,
        devices=hardware.devices,
        num_nodes=hardware.num_nodes,
        precision=hardware.precision,
        strategy="ddp" if hardware.distributed else "auto",
        # SyncBatchNorm needs GPUs; on CPU each process keeps its own batch statistics
        sync_batchnorm=hardware.uses_gpu and hardware.distributed,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=log_every,
        enable_progress_bar=progress,
        enable_model_summary=progress,
        default_root_dir=out_dir,
        num_sanity_val_steps=0,
        **limits,
    )


def clips_in_batch(batch: dict[str, Any]) -> int:
    return len(batch["waves"][0])


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest state of a run: ``checkpoints/last.ckpt`` or a checkpoint Lightning's SLURM
    plugin wrote on its requeue signal (``hpc_ckpt_N.ckpt`` in the run folder)."""
    candidates = [out_dir / "checkpoints" / LAST_CHECKPOINT, *out_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [path for path in candidates if path.is_file()]
    return max(existing, key=lambda path: path.stat().st_mtime) if existing else None


def resolve_recipe(out_dir: Path, recipe: RecipeFields, resume: bool) -> RecipeFields:
    """Write ``recipe.yaml`` for a new run; on resume, insist the recipe is the stored one."""
    stored_path = out_dir / "recipe.yaml"
    last = latest_checkpoint(out_dir)
    if resume and last is not None:
        stored = read_recipe(type(recipe), stored_path)
        differences = stored.compute_differences(recipe)
        if differences:
            raise RecipeError(
                f"{out_dir}: --resume continues the stored recipe, but this one differs "
                f"({'; '.join(differences)}); use another --out for a new run"
            )
        return recipe
    if last is not None:
        raise FileExistsError(
            f"{out_dir} holds a run already ({last}); pass --resume to continue it, "
            "or choose another --out"
        )
    if int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(stored_path, recipe_yaml(recipe))
    return recipe


def run_pretraining(
    recipe: PretrainRecipe,
    data: list[str],
    out_dir: str | os.PathLike,
    hardware: Hardware = Hardware(),
    resume: bool = False,
    stop_at_step: int | None = None,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> Path | None:
    """Train until ``recipe.max_steps`` (or ``stop_at_step``); returns the release checkpoint.

    ``callbacks`` join the trainer's (e.g. :class:`atst_hear.bench.online_probe.OnlineProbe`);
    they run after the step's optimiser and EMA updates.

    Returns None when the run stopped early (``stop_at_step``, a time limit) or on ranks > 0;
    ``OUT/checkpoints/last.ckpt`` then holds the state to resume from.
    """
    out_dir = Path(out_dir)
    recipe = resolve_recipe(out_dir, recipe, resume)
    source = open_source(data)
    L.seed_everything(recipe.seed, workers=False, verbose=False)
    module = PretrainModule(recipe)
    datamodule = PretrainDataModule(
        source, recipe.crop_lengths(), recipe.batch_size, recipe.num_workers, recipe.seed
    )
    checkpoints = out_dir / "checkpoints"
    saver = ModelCheckpoint(
        dirpath=checkpoints,
        filename="step-{step:08d}",
        auto_insert_metric_name=False,
        every_n_train_steps=recipe.checkpoint_every,
        save_top_k=-1,
        save_last=True,
    )
    stop = recipe.max_steps if stop_at_step is None else min(stop_at_step, recipe.max_steps)
    trainer = build_trainer(
        out_dir,
        hardware,
        # logs train/device/batches_per_sec: steps/s over the last 20 steps
        [*callbacks, saver, ThroughputMonitor(batch_size_fn=clips_in_batch, window_size=20)],
        recipe.log_every,
        progress,
        max_steps=stop,
        max_epochs=-1,
    )
    if trainer.is_global_zero:
        logger.info(
            "pre-training ATST-%s %s on %s",
            recipe.flavour.capitalize(),
            recipe.arch,
            source.description,
        )
    trainer.fit(
        module, datamodule=datamodule, ckpt_path=latest_checkpoint(out_dir) if resume else None
    )
    # the last step may fall between periodic checkpoints
    last = checkpoints / LAST_CHECKPOINT
    trainer.save_checkpoint(last, weights_only=False)
    if trainer.global_step < recipe.max_steps or not trainer.is_global_zero:
        return None
    release = write_release_checkpoint(last, out_dir / f"atst_{recipe.flavour}.ckpt")
    logger.info(
        "wrote %s (step %d; loads with atst_hear.hear.%s)",
        release,
        trainer.global_step,
        recipe.flavour,
    )
    return release
