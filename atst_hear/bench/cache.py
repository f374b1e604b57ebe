"""Embedding cache: every frozen protocol reads embeddings from here, computed once.

An entry is keyed by (HEAR module, checkpoint sha256, load options, toolkit version, cache
format, task, split, kind) and lives in ``<root>/<module>-<model hash>/<task>-<task hash>/
<split>.<kind>/``: embeddings computed by another release of the toolkit are never reused.
Clips are embedded in shards of ``shard_size`` files, each written atomically, so an interrupted
run resumes at the first missing shard; ``done.json`` marks a complete split. An entry is
computed under a lock file beside its folder, so processes sharing the cache on a shared
filesystem compute it once: the others wait for it and read it. Any HEAR module
works (``load_model``, ``get_scene_embeddings``, ``get_timestamp_embeddings``); the model is
loaded only when something is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from .. import __version__
from ..audio import SAMPLE_RATE, read_audio
from ..augment import centre_crop
from ..fileio import atomic_output, sha256_file, write_json_atomic
from ..tasks.folder import TaskFolder

logger = logging.getLogger(__name__)

KINDS = ("scene", "timestamp")
WINDOWS = ("start", "random")
CACHE_FORMAT = 1


def stable_hash(obj: Any) -> str:
    """sha256 of an object's canonical JSON form."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_key(model: ModelSpec) -> dict[str, Any]:
    """What the cached embeddings of ``model`` depend on besides the task: the model, the
    toolkit release that computed them and the cache layout."""
    return {"model": model.key, "toolkit_version": __version__, "format": CACHE_FORMAT}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A checkpoint's hash, computed once per (path, size, modification time)."""
    return sha256_file(path)


@dataclass(frozen=True)
class ModelSpec:
    """A HEAR module with its weights and ``load_model`` options.

    ``centre_crop_seconds`` set: every clip is cut to its centre that long (unpadded) before it is
    embedded, as the official linear evaluation does (``FreezingTransform``). ``window_crop``
    ``(where, seconds)``: every clip is cut to a window that long, zero-padded when shorter, as
    EVAR does (``evar/data.py``): ``"start"`` takes its beginning, ``"random"`` a window drawn
    once per clip from a hash of its file name (the same in every run).
    """

    name: str
    module: str
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    centre_crop_seconds: float | None = None
    window_crop: tuple[str, float] | None = None

    @property
    def checkpoint_sha256(self) -> str | None:
        if self.checkpoint is None:
            return None
        path = Path(self.checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"model {self.name!r}: checkpoint {self.checkpoint} not found")
        stat = path.stat()
        return _file_sha256(str(path.absolute()), stat.st_size, stat.st_mtime_ns)

    @property
    def load_key(self) -> dict[str, Any]:
        """What determines the loaded model (crops are applied to its input)."""
        return {
            "module": self.module,
            "checkpoint_sha256": self.checkpoint_sha256,
            "options": dict(sorted(self.options.items())),
        }

    @property
    def key(self) -> dict[str, Any]:
        """What determines the embeddings (the suite's model name and the path do not)."""
        key = self.load_key
        if self.centre_crop_seconds is not None:
            key["centre_crop_seconds"] = float(self.centre_crop_seconds)
        if self.window_crop is not None:
            key["window_crop"] = [self.window_crop[0], float(self.window_crop[1])]
        return key

    def with_options(self, **options: Any) -> ModelSpec:
        return dataclasses.replace(self, options={**self.options, **options})

    def with_centre_crop(self, seconds: float | None) -> ModelSpec:
        if seconds is not None and not float(seconds) > 0:
            raise ValueError(f"model {self.name!r}: centre crop must be positive, got {seconds!r}")
        return dataclasses.replace(
            self, centre_crop_seconds=None if seconds is None else float(seconds)
        )

    def with_window_crop(self, where: str, seconds: float) -> ModelSpec:
        if where not in WINDOWS:
            raise ValueError(f"model {self.name!r}: window must be one of {WINDOWS}, got {where!r}")
        if not float(seconds) > 0:
            raise ValueError(f"model {self.name!r}: window must be positive, got {seconds!r}")
        return dataclasses.replace(self, window_crop=(where, float(seconds)))

    def load(self, device: str | torch.device = "cpu") -> tuple[Any, torch.nn.Module]:
        """Import the HEAR module and load the model onto ``device``."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as err:
            raise RuntimeError(
                f"model {self.name!r}: cannot import HEAR module {self.module!r} ({err})"
            ) from err
        for function in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
            if not callable(getattr(module, function, None)):
                raise RuntimeError(f"{self.module} is not a HEAR module: no {function}()")
        args = () if self.checkpoint is None else (self.checkpoint,)
        try:
            model = module.load_model(*args, **self.options)
        except TypeError as err:
            raise ValueError(
                f"model {self.name!r}: {self.module}.load_model rejected options "
                f"{self.options} ({err})"
            ) from err
        if int(getattr(model, "sample_rate", 0)) != SAMPLE_RATE:
            raise ValueError(
                f"model {self.name!r}: sample_rate {getattr(model, 'sample_rate', None)}, "
                f"the benchmark feeds {SAMPLE_RATE} Hz audio"
            )
        if isinstance(model, torch.nn.Module):
            model = model.to(device)
        return module, model


@dataclass
class SplitEmbeddings:
    """Embeddings of one split, files in a fixed (sorted) order.

    Scene: ``embeddings`` is ``[n_files, D]``. Timestamp: ``embeddings`` is ``[n_frames, D]``
    (all files' frames, file after file), ``timestamps`` ``[n_frames]`` in ms and ``lengths``
    the number of frames of each file.
    """

    kind: str
    files: list[str]
    embeddings: np.ndarray
    durations_ms: np.ndarray
    timestamps: np.ndarray | None = None
    lengths: np.ndarray | None = None

    def file_slices(self) -> Iterator[tuple[str, slice]]:
        """Each file's frame range (timestamp embeddings)."""
        assert self.lengths is not None
        start = 0
        for name, length in zip(self.files, self.lengths.tolist()):
            yield name, slice(start, start + length)
            start += length


def window_of(wave: torch.Tensor, n_samples: int, where: str, name: str) -> torch.Tensor:
    """``n_samples`` of ``wave``: its start, or a window whose start is drawn from ``name``'s
    hash (EVAR's ``np.random.randint(len - n)``, made reproducible); zero-padded when shorter."""
    if len(wave) < n_samples:
        return torch.nn.functional.pad(wave, (0, n_samples - len(wave)))
    start = 0
    if where == "random" and len(wave) > n_samples:
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        start = int.from_bytes(digest[:8], "little") % (len(wave) - n_samples)
    return wave[start : start + n_samples]


def task_checksum(task: TaskFolder) -> str:
    """sha256 over the task's label files: metadata, vocabulary, split files and side files
    (such as DESED's weak labels), i.e. every JSON and CSV file at the folder's top level."""
    digest = hashlib.sha256()
    for path in sorted(p for p in task.path.iterdir() if p.suffix in (".json", ".csv")):
        digest.update(path.name.encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def audio_source(task: TaskFolder, split: str, filename: str) -> Path:
    """A clip's 16 kHz file, or (read and resampled) the one of the highest rate the task has:
    HEAR's public tarballs ship only 48 kHz folders."""
    path = task.audio_path(split, filename, SAMPLE_RATE)
    if path.is_file() or task.audio_dir(split, SAMPLE_RATE).is_dir():
        return path
    for rate in sorted(task.sample_rates(), reverse=True):
        if task.audio_dir(split, rate).is_dir():
            return task.audio_path(split, filename, rate)
    return path


class EmbeddingCache:
    def __init__(
        self,
        root: str | os.PathLike,
        device: str | None = None,
        batch_size: int = 16,
        shard_size: int = 256,
        progress: bool = True,
    ):
        self.root = Path(root)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.shard_size = shard_size
        self.progress = progress
        self._loaded: tuple[str, Any, Any] | None = None  # (model key hash, module, model)

    # --- layout ------------------------------------------------------------------------------
    def split_dir(self, model: ModelSpec, task: TaskFolder, split: str, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"embedding kind must be one of {KINDS}, got {kind!r}")
        model_dir = f"{slug(model.module)}-{stable_hash(embedding_key(model))[:12]}"
        task_dir = f"{slug(task.name)}-{task_checksum(task)[:12]}"
        return self.root / model_dir / task_dir / f"{slug(split)}.{kind}"

    # --- public API --------------------------------------------------------------------------
    def get(
        self,
        model: ModelSpec,
        task: TaskFolder,
        split: str,
        kind: str,
        files: Sequence[str] | None = None,
    ) -> SplitEmbeddings:
        """The split's embeddings, computing whatever is missing first.

        ``files`` lists the clips of a split that has no ``<split>.json`` (DESED's weak clips);
        by default they come from the split file.
        """
        directory = self.split_dir(model, task, split, kind)
        files = sorted(task.split_labels(split) if files is None else files)
        if not files:
            raise ValueError(f"{task.path}: split {split!r} lists no files")
        shards = [files[i : i + self.shard_size] for i in range(0, len(files), self.shard_size)]
        if not (directory / "done.json").is_file():
            with self._entry_lock(directory):
                # whoever held the lock before may have just finished the entry
                if not (directory / "done.json").is_file():
                    self._compute(model, task, split, kind, directory, shards)
        return self._read(directory, kind, files, len(shards))

    @staticmethod
    @contextlib.contextmanager
    def _entry_lock(directory: Path) -> Iterator[None]:
        """Hold the entry's lock file: processes sharing a cache (shards, array jobs, on a shared
        filesystem) never compute one entry at the same time; the second waits and reuses it."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(directory.parent / f".{directory.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.info("waiting for another process computing %s", directory)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def release(self) -> None:
        """Drop the loaded model (frees GPU memory before protocols train)."""
        self._loaded = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # --- computing ---------------------------------------------------------------------------
    def _model(self, model: ModelSpec):
        key = stable_hash(model.load_key)
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = None
            module, loaded = model.load(self.device)
            self._loaded = (key, module, loaded)
        return self._loaded[1], self._loaded[2]

    def _compute(
        self,
        model: ModelSpec,
        task: TaskFolder,
        split: str,
        kind: str,
        directory: Path,
        shards: Sequence[list[str]],
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        key = {
            **embedding_key(model),
            "model_name": model.name,
            "task": task.name,
            "task_path": str(task.path),
            "split": split,
            "kind": kind,
        }
        write_json_atomic(directory / "key.json", key)
        missing = [i for i in range(len(shards)) if not self._shard_path(directory, i).is_file()]
        done_files = sum(len(s) for i, s in enumerate(shards) if i not in set(missing))
        bar = tqdm(
            total=sum(len(s) for s in shards),
            initial=done_files,
            desc=f"embed {model.name} {task.name}/{split} ({kind})",
            unit="clip",
            disable=not self.progress,
        )
        try:
            for index in missing:
                arrays = self._embed_files(model, task, split, kind, shards[index], bar)
                with (
                    atomic_output(self._shard_path(directory, index)) as tmp,
                    open(tmp, "wb") as fh,
                ):
                    np.savez(fh, **arrays)
        finally:
            bar.close()
        write_json_atomic(
            directory / "done.json",
            {"files": sum(len(s) for s in shards), "shards": len(shards), **key},
        )

    @staticmethod
    def _shard_path(directory: Path, index: int) -> Path:
        return directory / f"shard-{index:05d}.npz"

    @torch.no_grad()
    def _embed_files(self, model, task, split, kind, files, bar) -> dict[str, np.ndarray]:
        module, loaded = self._model(model)
        waves = [read_audio(audio_source(task, split, f), SAMPLE_RATE) for f in files]
        if model.centre_crop_seconds is not None:
            crop = int(model.centre_crop_seconds * SAMPLE_RATE)
            waves = [centre_crop(wave, crop) for wave in waves]
        if model.window_crop is not None:
            where, seconds = model.window_crop
            n = int(seconds * SAMPLE_RATE)
            waves = [window_of(wave, n, where, name) for wave, name in zip(waves, files)]
        embeddings: dict[int, np.ndarray] = {}  # by position in ``files``
        timestamps: dict[int, np.ndarray] = {}
        # only clips of equal length share a batch: padding would change their embeddings
        by_length: dict[int, list[int]] = {}
        for i, wave in enumerate(waves):
            by_length.setdefault(len(wave), []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                audio = torch.stack([waves[i] for i in batch]).to(self.device)
                if kind == "scene":
                    out = _as_numpy(
                        module.get_scene_embeddings(audio, loaded), f"{model.module} scene"
                    )
                    for row, i in enumerate(batch):
                        embeddings[i] = out[row]
                else:
                    emb, ts = module.get_timestamp_embeddings(audio, loaded)
                    emb = _as_numpy(emb, f"{model.module} timestamp")
                    ts = _as_numpy(ts, f"{model.module} timestamps")
                    for row, i in enumerate(batch):
                        embeddings[i], timestamps[i] = emb[row], ts[row]
                bar.update(len(batch))
        durations = np.array([1000.0 * len(w) / SAMPLE_RATE for w in waves])
        arrays = {"files": np.array(files), "durations_ms": durations}
        ordered = [embeddings[i] for i in range(len(files))]
        if kind == "scene":
            arrays["embeddings"] = np.stack(ordered).astype(np.float32)
        else:
            stamps = [timestamps[i] for i in range(len(files))]
            arrays["embeddings"] = np.concatenate(ordered).astype(np.float32)
            arrays["timestamps"] = np.concatenate(stamps).astype(np.float64)
            arrays["lengths"] = np.array([len(t) for t in stamps], dtype=np.int64)
        return arrays

    # --- reading -----------------------------------------------------------------------------
    def _read(self, directory: Path, kind: str, files: list[str], n_shards: int) -> SplitEmbeddings:
        parts: dict[str, list[np.ndarray]] = {}
        for index in range(n_shards):
            with np.load(self._shard_path(directory, index), allow_pickle=False) as shard:
                for name in shard.files:
                    parts.setdefault(name, []).append(shard[name])
        joined = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        if joined["files"].tolist() != files:
            raise RuntimeError(
                f"{directory}: cached files do not match the split file; delete the folder"
            )
        return SplitEmbeddings(
            kind=kind,
            files=files,
            embeddings=joined["embeddings"],
            durations_ms=joined["durations_ms"],
            timestamps=joined.get("timestamps"),
            lengths=joined.get("lengths"),
        )


def _as_numpy(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = (
            value.detach().float().cpu().numpy()
            if value.is_floating_point()
            else value.cpu().numpy()
        )
    array = np.asarray(value)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{what} embeddings contain NaN or Inf")
    return array
