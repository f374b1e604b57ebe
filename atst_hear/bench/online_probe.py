"""Online probes of pre-training: the benchmark's own protocols on the encoders being trained.

:class:`OnlineProbe` is a Lightning callback for :func:`atst_hear.pretrain.training.
run_pretraining`. At step 0 (the random initialisation) and every ``every`` steps it copies the
teacher (and, if asked, the student) encoder, wraps the copy in the HEAR embedder
(:class:`atst_hear.embeddings.ATSTEmbedder`, the code every HEAR module uses) and runs the
benchmark protocols on held-out HEAR task folders: ``knn`` (nothing trained) and ``paper-linear``
(the ATST paper's linear evaluation, as the ``pretrain-demo-probe`` suite runs it). Every clip is
embedded once per evaluation, from its centre ``crop_seconds`` as paper-linear does, and both
protocols read those embeddings; a task's score is the mean primary score over its test folds.

Collapse diagnostics, on the scene embeddings of the last block of up to ``diagnostic_clips``
clips of the first task:

``effective_rank``   ``exp`` of the entropy of the normalised singular values of the centred
                     embeddings (1: everything on one line; at most the width);
``scene_std``        per-dimension standard deviation of the L2-normalised embeddings, averaged
                     over dimensions and multiplied by ``sqrt(width)``: about 1 when the
                     embeddings spread over all directions, 0 when they collapse to a point;
``heldout_loss``     ATST-Frame only: the masked-prediction loss on those clips
                     (:meth:`PretrainModule.heldout_prediction_loss`), and
``heldout_loss_shuffled`` the same predictions against teacher targets of other clips at the
                     same positions. The gap shows the student predicts content, not position.

Scores go to the run's loggers (TensorBoard, CSV) as ``probe/<encoder>/<task>/<protocol>`` and
``probe/<encoder>/<metric>`` at the training step, and to ``OUT/probe.csv`` (one row per value:
step, encoder, task, protocol, metric, value), rewritten atomically after each evaluation. A
resumed run continues the file: an evaluation at step ``s`` first drops rows of steps ``>= s``
(written by the interrupted run after its last checkpoint), so no step appears twice. At the end
of training :func:`atst_hear.bench.plots.plot_probe_curves` draws ``OUT/plots/``.

The probe leaves training untouched: it works on copies of the encoders, restores every random
generator it may touch, and runs on global rank 0 while the other ranks wait at a barrier.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import logging
import math
import random
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio import SAMPLE_RATE, read_audio
from ..augment import centre_crop
from ..embeddings import ATSTEmbedder
from ..fileio import write_text_atomic
from ..hear import api as hear_api
from ..tasks.folder import TaskFolder
from .cache import EmbeddingCache, ModelSpec, SplitEmbeddings, audio_source, stable_hash
from .protocols import get_protocol
from .protocols.base import UnitContext

log = logging.getLogger(__name__)

PROBE_CSV = "probe.csv"
CSV_FIELDS = ("step", "encoder", "task", "protocol", "metric", "value")
DIAGNOSTIC = "diagnostic"
ENCODERS = ("teacher", "student")
# the fast probes: k-NN, and the paper's linear evaluation as the pretrain-demo-probe suite runs it
DEFAULT_PROTOCOLS: dict[str, dict[str, Any]] = {
    "knn": {},
    "paper-linear": {"epochs": 100, "batch_size": 1024, "lr_grid": [1.0e-3, 1.0e-2, 1.0e-1]},
}


@dataclass(frozen=True)
class ProbeSettings:
    """What an online probe evaluates, and how often."""

    tasks: tuple[Path, ...]
    every: int
    encoders: tuple[str, ...] = ("teacher",)
    protocols: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(DEFAULT_PROTOCOLS)
    )
    seed: int = 0
    crop_seconds: float | None = 12.0
    diagnostic_clips: int = 200
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("the online probe needs at least one HEAR task folder")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"probe every must be a positive number of steps, got {self.every!r}")
        unknown = sorted(set(self.encoders) - set(ENCODERS))
        if unknown or not self.encoders:
            raise ValueError(f"probe encoders must be some of {ENCODERS}, got {self.encoders}")
        if self.diagnostic_clips < 2:
            raise ValueError(f"diagnostic_clips must be at least 2, got {self.diagnostic_clips}")
        for name, params in self.protocols.items():
            get_protocol(name).resolve_params(params)  # unknown names and parameters fail here


def effective_rank(embeddings: torch.Tensor | np.ndarray) -> float:
    """``exp(H(p))`` with ``p`` the singular values of the centred ``[N, D]`` matrix, summing to 1."""
    x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"effective rank needs an [N >= 2, D] matrix, got {tuple(x.shape)}")
    singular = torch.linalg.svdvals(x - x.mean(dim=0))
    total = singular.sum()
    if total <= 0:
        return 0.0  # every row identical: no direction at all
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def scene_spread(embeddings: torch.Tensor | np.ndarray) -> float:
    """Mean per-dimension std of the L2-normalised rows, times ``sqrt(D)`` (1 isotropic, 0 point)."""
    x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    unit = torch.nn.functional.normalize(x, dim=1)
    return float(unit.std(dim=0).mean() * math.sqrt(x.shape[1]))


class EncoderEmbeddings(EmbeddingCache):
    """The cache interface the protocols read, for one in-memory encoder and one evaluation.

    Embeddings are computed by the cache's own code (audio reading, crops, batches of clips of
    equal length, the HEAR API functions) and kept in memory instead of on disk.
    """

    def __init__(self, embedder: ATSTEmbedder, device: str, batch_size: int) -> None:
        super().__init__(root=Path(tempfile.gettempdir()), device=device, batch_size=batch_size)
        self.progress = False
        self._embedder = embedder
        self._computed: dict[tuple, SplitEmbeddings] = {}

    def _model(self, model: ModelSpec):
        return hear_api, self._embedder

    def get(self, model, task, split, kind, files=None) -> SplitEmbeddings:
        files = sorted(task.split_labels(split) if files is None else files)
        if not files:
            raise ValueError(f"{task.path}: split {split!r} lists no files")
        key = (stable_hash(model.key), str(task.path), split, kind, tuple(files))
        if key not in self._computed:
            with tqdm(disable=True) as bar:
                arrays = self._embed_files(model, task, split, kind, files, bar)
            self._computed[key] = SplitEmbeddings(
                kind=kind,
                files=files,
                embeddings=arrays["embeddings"],
                durations_ms=arrays["durations_ms"],
                timestamps=arrays.get("timestamps"),
                lengths=arrays.get("lengths"),
            )
        return self._computed[key]


class OnlineProbe(L.Callback):
    """Evaluates the encoders being pre-trained on held-out tasks; see the module docstring."""

    def __init__(self, settings: ProbeSettings, out_dir: str | Path) -> None:
        super().__init__()
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.csv_path = self.out_dir / PROBE_CSV
        self.tasks = [TaskFolder.open(path) for path in settings.tasks]
        for task in self.tasks:
            if task.is_event:
                raise ValueError(
                    f"{task.path}: the online probe runs clip-level (scene) tasks; "
                    "event tasks need the sed or hear-mlp protocols"
                )
        self._last_step: int | None = None

    # --- Lightning hooks ----------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == 0:
            self._evaluate(trainer, pl_module)
        elif trainer.is_global_zero and 0 not in self._steps_on_file():
            log.warning(
                "%s has no step-0 (random initialisation) rows: this run was started without "
                "--probe, so its learning curves lack the random-init line",
                self.csv_path,
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.settings.every == 0:
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._last_step != trainer.global_step:
            self._evaluate(trainer, pl_module)
        if trainer.is_global_zero:
            from .plots import plot_probe_curves

            for path in plot_probe_curves(self.csv_path, self.out_dir / "plots"):
                log.info("wrote %s", path)

    # --- evaluation ---------------------------------------------------------------------------
    @property
    def _model_spec(self) -> ModelSpec:
        """What the protocols are told they embed with: every clip's centre crop, as paper-linear
        asks, so that all protocols share one embedding pass."""
        return ModelSpec("online-probe", "atst_hear.hear.api").with_centre_crop(
            self.settings.crop_seconds
        )

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = int(trainer.global_step)
        self._last_step = step
        if trainer.is_global_zero:
            with _preserved_random_state():
                rows = self.evaluate(pl_module, step)
            self._write_rows(step, rows)
            metrics = {_metric_name(row): row["value"] for row in rows}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)
        trainer.strategy.barrier("online-probe")

    def evaluate(self, pl_module: L.LightningModule, step: int) -> list[dict[str, Any]]:
        """All probe rows of one step (scores and diagnostics) for ``pl_module``'s encoders."""
        device = str(pl_module.device)
        rows: list[dict[str, Any]] = []
        for role in self.settings.encoders:
            encoder = getattr(pl_module.model, role).encoder
            # a float32 copy: the embedder puts it in eval mode, and bf16-true weights would not
            # take the float32 front-end output
            embedder = ATSTEmbedder(copy.deepcopy(encoder).float())
            cache = EncoderEmbeddings(embedder, device, self.settings.batch_size)
            for task in self.tasks:
                for protocol, metric, value in self._task_scores(task, cache, device):
                    rows.append(_row(step, role, task.name, protocol, metric, value))
            scene = self._diagnostic_embeddings(cache, embedder)
            rows.append(_row(step, role, "", DIAGNOSTIC, "effective_rank", effective_rank(scene)))
            rows.append(_row(step, role, "", DIAGNOSTIC, "scene_std", scene_spread(scene)))
        if getattr(pl_module.recipe, "flavour", None) == "frame":
            crops = self._diagnostic_crops(pl_module.recipe.crop_seconds).to(device)
            generator = torch.Generator().manual_seed(self.settings.seed)
            loss, shuffled = pl_module.heldout_prediction_loss(crops, generator)
            rows.append(_row(step, "student", "", DIAGNOSTIC, "heldout_loss", loss))
            rows.append(_row(step, "student", "", DIAGNOSTIC, "heldout_loss_shuffled", shuffled))
        log.info("online probe at step %d: %s", step, _summary(rows))
        return rows

    def _task_scores(self, task: TaskFolder, cache: EncoderEmbeddings, device: str):
        model = self._model_spec
        for name, overrides in self.settings.protocols.items():
            protocol = get_protocol(name)
            if protocol.supports(task) is not None:
                continue
            params = protocol.resolve_params(overrides)
            scores: list[float] = []
            for fold in protocol.fold_units(task, params):
                with tempfile.TemporaryDirectory(prefix="atst-probe-") as workdir:
                    context = UnitContext(
                        task=task,
                        model=model,
                        cache=cache,
                        params=params,
                        seed=self.settings.seed,
                        fold=fold,
                        workdir=Path(workdir),
                        device=device,
                        progress=False,
                    )
                    scores += [result.scores[result.primary] for result in protocol.run(context)]
            yield name, task.primary_score, float(np.mean(scores))

    def _diagnostic_files(self) -> list[tuple[str, str]]:
        task = self.tasks[0]
        files = sorted((split, name) for split in task.splits for name in task.split_labels(split))
        count = min(self.settings.diagnostic_clips, len(files))
        if count < 2:
            raise ValueError(f"{task.path}: the diagnostics need at least 2 clips")
        chosen = np.random.default_rng(self.settings.seed).choice(len(files), count, replace=False)
        return [files[i] for i in sorted(chosen)]

    def _diagnostic_waves(self) -> list[torch.Tensor]:
        task = self.tasks[0]
        return [
            read_audio(audio_source(task, split, name), SAMPLE_RATE)
            for split, name in self._diagnostic_files()
        ]

    def _diagnostic_embeddings(self, cache: EncoderEmbeddings, embedder: ATSTEmbedder):
        """Last-block token-mean scene embeddings of the diagnostic clips (already computed for
        the first task's probes; the layouts are those of :mod:`atst_hear.embeddings`)."""
        task, chosen = self.tasks[0], self._diagnostic_files()
        model = self._model_spec
        rows = []
        for split in sorted({split for split, _ in chosen}):
            emb = cache.get(model, task, split, "scene")
            index = {name: i for i, name in enumerate(emb.files)}
            rows += [emb.embeddings[index[name]] for s, name in chosen if s == split]
        width = embedder.config.width
        block = slice(-2 * width, -width) if embedder.config.n_prompt else slice(-width, None)
        if embedder.config.flavour == "clip":
            block = slice(-width, None)
        return np.stack(rows)[:, block]

    def _diagnostic_crops(self, seconds: float) -> torch.Tensor:
        """Centre ``seconds`` of each diagnostic clip, zero-padded when shorter (training crops)."""
        n = int(seconds * SAMPLE_RATE)
        crops = [centre_crop(wave, n) for wave in self._diagnostic_waves()]
        return torch.stack([torch.nn.functional.pad(c, (0, n - len(c))) for c in crops])

    # --- probe.csv ----------------------------------------------------------------------------
    def _read_rows(self) -> list[dict[str, str]]:
        if not self.csv_path.is_file():
            return []
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != CSV_FIELDS:
                raise ValueError(
                    f"{self.csv_path}: expected the columns {list(CSV_FIELDS)}, got "
                    f"{reader.fieldnames}; move the file away or use another --out"
                )
            return list(reader)

    def _steps_on_file(self) -> set[int]:
        return {int(row["step"]) for row in self._read_rows()}

    def _write_rows(self, step: int, rows: Sequence[Mapping[str, Any]]) -> None:
        kept = [row for row in self._read_rows() if int(row["step"]) < step]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
        writer.writerows(rows)
        write_text_atomic(self.csv_path, text.getvalue())


def _row(step: int, encoder: str, task: str, protocol: str, metric: str, value: float) -> dict:
    return {
        "step": step,
        "encoder": encoder,
        "task": task,
        "protocol": protocol,
        "metric": metric,
        "value": float(value),
    }


def _metric_name(row: Mapping[str, Any]) -> str:
    if row["protocol"] == DIAGNOSTIC:
        return f"probe/{row['encoder']}/{row['metric']}"
    return f"probe/{row['encoder']}/{row['task']}/{row['protocol']}"


def _summary(rows: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{_metric_name(row)[6:]}={row['value']:.3f}" for row in rows)


@contextlib.contextmanager
def _preserved_random_state() -> Iterator[None]:
    """Restores Python's, NumPy's and torch's (CPU and CUDA) global generators on exit."""
    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=range(torch.cuda.device_count())):
            yield
    finally:
        np.random.set_state(numpy)
        random.setstate(python)


__all__ = [
    "OnlineProbe",
    "ProbeSettings",
    "effective_rank",
    "scene_spread",
    "PROBE_CSV",
    "CSV_FIELDS",
]
