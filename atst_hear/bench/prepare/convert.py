"""The conversion of clips into 16 kHz WAV files, one by one or in worker processes.

A clip from a file is decoded, mixed to mono, cut, resampled to 16 kHz, cropped or padded to the
task's clip length and written as 16-bit WAV; a synthetic clip is rendered from its seed and
must already have the clip length. Each conversion returns the clip's journal record.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio
from tqdm import tqdm

from ...audio import SAMPLE_RATE, AudioError, audio_info, read_audio, resample, write_wav
from ...fileio import sha256_file
from .plan import BadInputs, Clip, Synthesis

try:
    import soxr
except ImportError:  # optional: torchaudio's resampler takes over
    soxr = None

# how many clips each worker has queued, so that a stop never waits for a long backlog
QUEUE_PER_WORKER = 4

# told each clip's journal record, or the decoding error that stopped it
Finished = Callable[[Clip, dict[str, Any] | AudioError], None]


def resampler_name() -> str:
    if soxr is not None:
        return f"soxr {soxr.__version__} (quality HQ)"
    return f"torchaudio {torchaudio.__version__} functional.resample"


def to_sample_rate(wave: np.ndarray, rate: int) -> np.ndarray:
    """``wave`` at 16 kHz. soxr (quality HQ) is preferred because hear-preprocess resamples with
    it, so converted folders match the HEAR release; without soxr the encoder's own resampler
    (:func:`atst_hear.audio.resample`) serves. The manifest names the one used."""
    if rate == SAMPLE_RATE:
        return wave
    if soxr is not None:
        return soxr.resample(wave, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return resample(torch.from_numpy(wave), rate, SAMPLE_RATE).numpy()


def _fit_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Keep the start and pad the end with zeros, as hear-preprocess does."""
    if len(wave) >= n_samples:
        return wave[:n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def source_stat(source: Path | Synthesis) -> list[Any]:
    """What tells the journal that a source is unchanged: a file's size and mtime, or the seed."""
    if isinstance(source, Synthesis):
        return source.fingerprint()
    stat = source.stat()
    return [stat.st_size, stat.st_mtime_ns]


def clip_path(folder: Path, clip: Clip) -> Path:
    return folder / str(SAMPLE_RATE) / clip.split / clip.name


def convert_clip(clip: Clip, target: Path, duration_s: float | None) -> dict[str, Any]:
    """Make one clip's audio and write it to ``target``; return its journal record."""
    if isinstance(clip.source, Synthesis):
        return _render_clip(clip, clip.source, target, duration_s)
    source = read_audio(clip.source, sample_rate=None).numpy()
    rate, _, channels = audio_info(clip.source)
    start = round(clip.offset_s * rate)
    stop = len(source) if clip.length_s is None else start + round(clip.length_s * rate)
    if start >= len(source) or stop > len(source):
        raise AudioError(
            f"{clip.source}: segment {clip.offset_s:g}-{clip.offset_s + (clip.length_s or 0):g} s "
            f"lies outside the audio ({len(source) / rate:g} s)"
        )
    wave = to_sample_rate(source[start:stop], rate)
    if duration_s is not None:
        wave = _fit_length(wave, round(duration_s * SAMPLE_RATE))
    write_wav(target, wave, SAMPLE_RATE)
    return {
        "split": clip.split,
        "file": clip.name,
        "source": str(clip.source),
        "source_stat": source_stat(clip.source),
        "source_sha256": sha256_file(clip.source),
        "source_sample_rate": rate,
        "source_channels": channels,
        "source_duration_s": round(len(source) / rate, 6),
        "duration_s": round(len(wave) / SAMPLE_RATE, 6),
        "sha256": sha256_file(target),
    }


def _render_clip(
    clip: Clip, synthesis: Synthesis, target: Path, duration_s: float | None
) -> dict[str, Any]:
    wave = synthesis.render(np.random.default_rng(synthesis.seed))
    expected = None if duration_s is None else round(duration_s * SAMPLE_RATE)
    if (expected is not None and len(wave) != expected) or not np.isfinite(wave).all():
        # a generator bug, not bad input: never skipped
        raise RuntimeError(f"{clip.split}/{clip.name}: generator produced a bad waveform")
    write_wav(target, wave.astype(np.float32), SAMPLE_RATE)
    return {
        "split": clip.split,
        "file": clip.name,
        "source": str(synthesis),
        "source_stat": source_stat(synthesis),
        "duration_s": round(len(wave) / SAMPLE_RATE, 6),
        "sha256": sha256_file(target),
    }


def convert_clips(
    clips: Sequence[Clip],
    folder: Path,
    duration_s: float | None,
    jobs: int,
    bad: BadInputs,
    record: Callable[[dict[str, Any]], None],
    label: str,
    progress: bool = True,
) -> None:
    """Convert clips into ``folder`` (in worker processes when jobs > 1), handing each finished
    clip's journal record to ``record``; audio that cannot be decoded goes to ``bad``.

    Worker processes need picklable clips: synthetic clips are rendered with ``jobs=1``.
    """
    for split in {clip.split for clip in clips}:
        (folder / str(SAMPLE_RATE) / split).mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=len(clips),
        desc=f"{label}: converting",
        unit="clip",
        disable=None if progress else True,
    )

    def finished(clip: Clip, outcome: dict[str, Any] | AudioError) -> None:
        bar.update()
        if isinstance(outcome, AudioError):
            bad.report(clip.source, f"cannot convert ({outcome})")
        else:
            record(outcome)

    try:
        if jobs == 1:
            for clip in clips:
                try:
                    outcome = convert_clip(clip, clip_path(folder, clip), duration_s)
                except AudioError as err:
                    outcome = err
                finished(clip, outcome)
        else:
            _convert_in_workers(clips, folder, duration_s, jobs, finished)
    finally:
        bar.close()


def _worker_init() -> None:
    # each worker converts one clip at a time; more threads would only oversubscribe the cores
    torch.set_num_threads(1)


def _convert_in_workers(
    clips: Sequence[Clip],
    folder: Path,
    duration_s: float | None,
    jobs: int,
    finished: Finished,
) -> None:
    # spawn, not fork: a forked child of a process that already ran OpenMP code can deadlock
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init)
    queue = iter(clips)
    pending: dict[Future, Clip] = {}
    try:
        while True:
            while len(pending) < jobs * QUEUE_PER_WORKER:
                clip = next(queue, None)
                if clip is None:
                    break
                target = clip_path(folder, clip)
                pending[pool.submit(convert_clip, clip, target, duration_s)] = clip
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            # journal every success of this batch before a failure may stop the run
            failures = []
            for future in done:
                clip = pending.pop(future)
                try:
                    finished(clip, future.result())
                except AudioError as err:
                    failures.append((clip, err))
                except BrokenProcessPool as err:
                    raise RuntimeError(
                        f"a conversion worker died while converting {clip.source} ({err}); "
                        "re-run the same command to resume"
                    ) from err
            for clip, err in failures:
                finished(clip, err)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
