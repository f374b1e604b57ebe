"""Unlabelled audio for pre-training: folders, manifest CSVs and WebDataset-style tar shards.

A source is a list of *units*: audio files (a folder searched recursively, a manifest CSV with a
``path`` column, single files) or tar shards (members whose suffix is an audio format are the
samples; other members, e.g. ``.json``, are ignored). The stream is endless, pass after pass:

* each pass shuffles the units with ``(seed, pass)``; rank ``r`` of ``R`` takes every R-th unit
  and data-loader worker ``w`` of ``W`` every W-th of those, so nodes, GPUs and workers never
  read the same unit in a pass; a shard's audio members are shuffled with ``(seed, pass, shard)``;
* each sample's random crops come from ``(seed, pass, unit, member)``, so they do not depend on
  how the work is split;
* a file or member that cannot be decoded is skipped with a warning and counted; a truncated tar
  keeps the members read before the damage;
* every sample carries its position in its worker's stream. The training module hands each
  trained batch to :meth:`PretrainDataModule.record`; the positions go into every checkpoint
  (gathered from all ranks), and a resumed run continues each worker's stream exactly where the
  trained batches ended (same world size and worker count; otherwise it starts a fresh pass).

Workers only decode, resample and crop; the views are made on the training device (``views.py``).
"""

from __future__ import annotations

import csv
import glob
import io
import re
import tarfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..audio import SAMPLE_RATE, AudioError, decode_audio, read_audio
from .views import random_crop

AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".caf"}
    | {".w64", ".rf64", ".snd"}
)
SHARD_SUFFIX = ".tar"
MAX_WARNINGS_PER_WORKER = 20
_BRACES = re.compile(r"\{(\d+)\.\.(\d+)\}")


@dataclass(frozen=True)
class AudioSource:
    """What to read: ``kind`` "files" (one clip per unit) or "shards" (tar files of clips)."""

    kind: str
    units: tuple[str, ...]
    description: str


def _expand_braces(pattern: str) -> list[str]:
    """``shards-{000..099}.tar`` -> 100 names (zero padding kept), as WebDataset writes them."""
    match = _BRACES.search(pattern)
    if not match:
        return [pattern]
    first, last = match.group(1), match.group(2)
    width = len(first) if first.startswith("0") else 0
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        name
        for number in range(int(first), int(last) + 1)
        for name in _expand_braces(f"{head}{number:0{width}d}{tail}")
    ]


def _read_manifest(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise ValueError(
                f"{path}: a manifest CSV needs a header with a 'path' column, got "
                f"{reader.fieldnames}"
            )
        paths = []
        for line, row in enumerate(reader, start=2):
            value = (row.get("path") or "").strip()
            if not value:
                raise ValueError(f"{path}:{line}: empty 'path'")
            file = Path(value)
            paths.append(str(file if file.is_absolute() else path.parent / file))
    return paths


def _units_of(spec: str) -> tuple[str, list[str]]:
    """(kind, units) of one ``--data`` value; patterns may match folders, CSVs, shards, files."""
    names = [name for part in _expand_braces(spec) for name in sorted(glob.glob(part)) or [part]]
    if len(names) > 1 or names[0] != spec:
        missing = [n for n in names if not Path(n).exists()]
        if missing:
            raise FileNotFoundError(
                f"{spec}: {len(missing)} expanded paths do not exist, e.g. {missing[0]}"
            )
        found = [_units_of(name) for name in names]
        kinds = {kind for kind, units in found if units}
        if len(kinds) > 1:
            raise ValueError(f"{spec}: matches both tar shards and audio files")
        return (kinds.pop() if kinds else "files"), [u for _, units in found for u in units]
    path = Path(spec)
    if path.is_dir():
        shards = sorted(str(p) for p in path.glob(f"*{SHARD_SUFFIX}"))
        if shards:
            return "shards", shards
        files = sorted(
            str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
        )
        return "files", files
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such file, folder or pattern")
    if path.suffix.lower() == ".csv":
        return "files", _read_manifest(path)
    if path.suffix == SHARD_SUFFIX:
        return "shards", [str(path)]
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return "files", [str(path)]
    raise ValueError(
        f"{spec}: expected an audio folder, a manifest .csv, tar shards (.tar, a glob or "
        "name-{000..099}.tar) or an audio file"
    )


def open_source(specs: list[str]) -> AudioSource:
    """Resolve ``--data`` values into one source (all files or all shards)."""
    if not specs:
        raise ValueError("no data given: pass --data with a folder, manifest CSV or tar shards")
    kinds, units = set(), []
    for spec in specs:
        kind, found = _units_of(str(spec))
        if not found:
            raise ValueError(f"{spec}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found")
        kinds.add(kind)
        units += found
    if len(kinds) > 1:
        raise ValueError(f"{specs}: mixes tar shards and audio files; use one kind per run")
    kind = kinds.pop()
    noun = "tar shards" if kind == "shards" else "audio files"
    return AudioSource(kind, tuple(units), f"{len(units)} {noun} from {', '.join(map(str, specs))}")


@dataclass(frozen=True)
class StreamPosition:
    """Next sample of one worker's stream: pass, unit index in its list, member in the unit."""

    epoch: int = 0
    unit: int = 0
    member: int = 0


class AudioStream(IterableDataset):
    """Endless stream of ``{"waves": [crop, ...], position fields, "skipped"}`` samples."""

    def __init__(
        self,
        source: AudioSource,
        crop_samples: tuple[int, ...],
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start: dict[int, StreamPosition] | None = None,
        worker_offset: int = 0,
    ) -> None:
        super().__init__()
        self.source = source
        self.crop_samples = tuple(int(n) for n in crop_samples)
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.start = dict(start or {})
        self.worker_offset = worker_offset

    def worker_units(self, epoch: int, worker: int, n_workers: int) -> list[int]:
        """Global unit indices this rank's ``worker`` reads in pass ``epoch``, in order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.source.units))
        return order[self.rank :: self.world_size][worker::n_workers].tolist()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        n_workers = info.num_workers if info else 1
        worker = ((info.id if info else 0) + self.worker_offset) % n_workers
        position = self.start.get(worker, StreamPosition())
        skipped, warned = 0, 0
        empty_pass_from_start = position == StreamPosition(position.epoch)
        while True:
            units = self.worker_units(position.epoch, worker, n_workers)
            produced = False
            for index in range(position.unit, len(units)):
                first = position.member if index == position.unit else 0
                for member, n_members, name, wave in self._read_unit(
                    units[index], position.epoch, first
                ):
                    if wave is None:
                        skipped += 1
                        if warned < MAX_WARNINGS_PER_WORKER:
                            warned += 1
                            warnings.warn(f"skipping unreadable audio: {name}", stacklevel=1)
                        continue
                    rng = np.random.default_rng([self.seed, position.epoch, units[index], member])
                    crops = [random_crop(wave, n, rng) for n in self.crop_samples]
                    last = member + 1 == n_members
                    after = (
                        StreamPosition(position.epoch, index + 1, 0)
                        if last
                        else StreamPosition(position.epoch, index, member + 1)
                    )
                    if after.unit == len(units):
                        after = StreamPosition(position.epoch + 1, 0, 0)
                    produced = True
                    yield {
                        "waves": crops,
                        "worker": worker,
                        "epoch": after.epoch,
                        "unit": after.unit,
                        "member": after.member,
                        "skipped": skipped,
                    }
                    skipped = 0
            if not produced and empty_pass_from_start:
                raise RuntimeError(
                    f"worker {worker} of rank {self.rank} found no readable audio in a whole pass "
                    f"over its {len(units)} units of {self.source.description}"
                )
            position = StreamPosition(position.epoch + 1, 0, 0)
            empty_pass_from_start = True

    def _read_unit(
        self, unit: int, epoch: int, first: int
    ) -> Iterator[tuple[int, int, str, torch.Tensor | None]]:
        """``(member, n_members, name, waveform or None if unreadable)`` from ``first`` on."""
        path = self.source.units[unit]
        if self.source.kind == "files":
            if first == 0:
                yield 0, 1, path, _decode(path, None)
            return
        members = _tar_audio_members(path)
        order = np.random.default_rng([self.seed, epoch, unit]).permutation(len(members))
        for member in range(first, len(members)):
            name, data = members[order[member]]
            yield member, len(members), f"{path}:{name}", _decode(f"{path}:{name}", data)


def _decode(name: str, data: bytes | None) -> torch.Tensor | None:
    try:
        if data is None:
            return read_audio(name, SAMPLE_RATE)
        return decode_audio(io.BytesIO(data), name, SAMPLE_RATE)
    except AudioError:
        return None


def _tar_audio_members(path: str) -> list[tuple[str, bytes]]:
    """Audio members of a shard, in archive order; a damaged tar keeps what came before."""
    members: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for info in archive:
                if info.isfile() and Path(info.name).suffix.lower() in AUDIO_SUFFIXES:
                    handle = archive.extractfile(info)
                    if handle is not None:
                        members.append((info.name, handle.read()))
    except (tarfile.TarError, OSError, EOFError) as err:
        warnings.warn(
            f"{path}: unreadable tar shard after {len(members)} audio members ({err})",
            stacklevel=2,
        )
    return members


class PretrainDataModule(L.LightningDataModule):
    """Endless pre-training stream with a data position that survives checkpoints."""

    def __init__(
        self,
        source: AudioSource,
        crop_seconds: tuple[float, ...],
        batch_size: int,
        num_workers: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.source = source
        self.crop_samples = tuple(int(s * SAMPLE_RATE) for s in crop_seconds)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.positions: dict[int, StreamPosition] = {}
        self.last_worker: int | None = None
        self.skipped = 0
        self._restored: dict[str, Any] | None = None

    @property
    def stream_workers(self) -> int:
        return max(self.num_workers, 1)

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_and_world()
        needed = world * self.stream_workers
        if len(self.source.units) < needed:
            raise ValueError(
                f"{self.source.description}: {len(self.source.units)} units cannot feed "
                f"{world} processes × {self.stream_workers} workers; give at least {needed} "
                "(more shards, or fewer --num-workers)"
            )
        start, offset = self._resume_point(rank, world)
        dataset = AudioStream(self.source, self.crop_samples, self.seed, rank, world, start, offset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )

    def record(self, batch: dict[str, Any]) -> int:
        """Note a trained batch (all its samples come from one worker); returns files skipped."""
        worker = int(batch["worker"][-1])
        self.positions[worker] = StreamPosition(
            int(batch["epoch"][-1]), int(batch["unit"][-1]), int(batch["member"][-1])
        )
        self.last_worker = worker
        skipped = int(batch["skipped"].sum())
        self.skipped += skipped
        return skipped

    def state_dict(self) -> dict[str, Any]:
        local = {
            "positions": {w: [p.epoch, p.unit, p.member] for w, p in self.positions.items()},
            "last_worker": self.last_worker,
            "skipped": self.skipped,
        }
        rank, world = self._rank_and_world()
        ranks = [local]
        if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            ranks = [None] * world
            torch.distributed.all_gather_object(ranks, local)
        return {"world_size": world, "num_workers": self.stream_workers, "ranks": ranks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._restored = state

    def _resume_point(self, rank: int, world: int) -> tuple[dict[int, StreamPosition], int]:
        state = self._restored
        if not state:
            return {}, 0
        if state["world_size"] == world and state["num_workers"] == self.stream_workers:
            mine = state["ranks"][rank]
            self.positions = {int(w): StreamPosition(*p) for w, p in mine["positions"].items()}
            self.last_worker, self.skipped = mine["last_worker"], mine["skipped"]
            offset = 0 if self.last_worker is None else (self.last_worker + 1) % self.stream_workers
            return dict(self.positions), offset
        epochs = [p[0] for r in state["ranks"] for p in r["positions"].values()]
        fresh = max(epochs, default=-1) + 1
        warnings.warn(
            f"the checkpoint's data position was written by {state['world_size']} processes × "
            f"{state['num_workers']} workers, this run has {world} × {self.stream_workers}: "
            f"starting a fresh pass over the data (pass {fresh})",
            stacklevel=2,
        )
        return {w: StreamPosition(fresh) for w in range(self.stream_workers)}, 0
