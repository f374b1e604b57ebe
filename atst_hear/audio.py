"""Reading, checking, resampling and writing waveforms.

Everything audio enters the toolkit through here: files are read with soundfile (any format it
knows, any sample rate), mixed to mono, resampled with ``torchaudio.functional.resample`` and
checked for the problems that otherwise surface much later as NaN embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .fileio import atomic_output

SAMPLE_RATE = 16000


# HEAR audio is float in [-1, 1]; resampling and float mixes overshoot a little, but a peak
# above this is almost always int16 samples passed as float (x32768) or a missing gain
MAX_AMPLITUDE = 2.0
# samples checked at a time, so checking long audio allocates no O(length) temporaries
_CHECK_BLOCK = 1 << 20


class AudioError(ValueError):
    """An audio file or waveform that cannot be used, with the reason in the message."""


def check_waveform_batch(
    audio: torch.Tensor, name: str = "audio", max_amplitude: float | None = MAX_AMPLITUDE
) -> torch.Tensor:
    """Check a ``[n_sounds, n_samples]`` batch as the HEAR API receives it; return it unchanged.

    ``max_amplitude`` bounds the peak ``|sample|``; ``None`` accepts any finite level.
    """
    if not isinstance(audio, torch.Tensor):
        raise AudioError(f"{name} must be a torch.Tensor, got {type(audio).__name__}")
    if audio.ndim != 2:
        raise AudioError(
            f"{name} must be 2-D [n_sounds, n_samples], got shape {tuple(audio.shape)}"
        )
    if not audio.is_floating_point():
        raise AudioError(f"{name} must be floating point, got dtype {audio.dtype}")
    if audio.shape[0] == 0 or audio.shape[1] == 0:
        raise AudioError(f"{name} is empty: shape {tuple(audio.shape)}")
    peak = 0.0
    for start in range(0, audio.shape[1], _CHECK_BLOCK):
        block = audio[:, start : start + _CHECK_BLOCK]
        finite = torch.isfinite(block)
        if not bool(finite.all()):
            bad = (~finite).any(dim=1).nonzero().flatten().tolist()
            raise AudioError(f"{name} contains NaN or Inf values (rows {bad[:10]})")
        low, high = torch.aminmax(block)
        peak = max(peak, -float(low), float(high))
    if max_amplitude is not None and peak > max_amplitude:
        raise AudioError(
            f"{name} peaks at {peak:g}, expected float samples in [-1, 1] (limit "
            f"{max_amplitude:g}): int16 samples need dividing by 32768. If the level is "
            "intended, pass max_amplitude=None to load_model"
        )
    return audio


def resample(wave: torch.Tensor, orig_sr: int, target_sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Resample along the last axis (no-op when the rates match)."""
    if orig_sr == target_sr:
        return wave
    return AF.resample(wave, orig_sr, target_sr)


def read_audio(path: str | os.PathLike, sample_rate: int | None = SAMPLE_RATE) -> torch.Tensor:
    """Read a file as a mono float32 ``[n_samples]`` tensor at ``sample_rate``.

    ``sample_rate=None`` keeps the file's own rate. Raises :class:`AudioError` naming the file
    for missing, unreadable, empty or non-finite audio.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    return decode_audio(str(path), str(path), sample_rate)


def decode_audio(
    source: str | BinaryIO, name: str, sample_rate: int | None = SAMPLE_RATE
) -> torch.Tensor:
    """:func:`read_audio` for a path or an open binary file (e.g. a member of a tar shard).

    ``name`` identifies the audio in error messages.
    """
    declared = _declared_wav_bytes(source)
    try:
        with sf.SoundFile(source) as handle:
            data = handle.read(dtype="float32", always_2d=True)
            file_sr, frame_bytes = handle.samplerate, _frame_bytes(handle)
    except Exception as err:  # soundfile raises several unrelated types for corrupt files
        raise AudioError(f"{name}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(f"{name}: audio file holds no samples")
    if declared is not None and frame_bytes and data.shape[0] < declared // frame_bytes:
        raise AudioError(
            f"{name}: truncated WAV: the header declares {declared // frame_bytes} samples per "
            f"channel, the file holds {data.shape[0]} (an interrupted copy or download?)"
        )
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: audio contains NaN or Inf samples")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sample_rate is not None:
        wave = resample(wave, file_sr, sample_rate)
    return wave


# bytes per sample of the uncompressed WAV subtypes
_PCM_BYTES = {
    "PCM_U8": 1,
    "PCM_S8": 1,
    "PCM_16": 2,
    "PCM_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
}


def _frame_bytes(handle: sf.SoundFile) -> int | None:
    """Bytes per frame of uncompressed WAV data; None for other formats."""
    if handle.format != "WAV" or handle.subtype not in _PCM_BYTES:
        return None
    return _PCM_BYTES[handle.subtype] * handle.channels


def _declared_wav_bytes(source: str | BinaryIO) -> int | None:
    """The size the RIFF header gives the ``data`` chunk, when larger than what the file holds.

    libsndfile silently shortens such a file to the samples present; None when the file is not
    a RIFF WAV, is complete, or its header leaves the size open (streamed WAVs, RF64).
    """
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return _short_data_chunk(handle)
        origin = source.tell()
        try:
            return _short_data_chunk(source)
        finally:
            source.seek(origin)
    except OSError:
        return None  # unreadable or unseekable: soundfile's own checks still apply


def _short_data_chunk(handle: BinaryIO) -> int | None:
    header = handle.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:] != b"WAVE":
        return None
    while len(chunk := handle.read(8)) == 8:
        size = int.from_bytes(chunk[4:], "little")
        if chunk[:4] == b"data":
            if size in (0, 0xFFFFFFFF):
                return None
            start = handle.tell()
            present = handle.seek(0, os.SEEK_END) - start
            return size if present < size else None
        handle.seek(size + (size & 1), os.SEEK_CUR)
    return None


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(sample_rate, n_frames, n_channels)`` of a file, raising :class:`AudioError` if unreadable."""
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise AudioError(f"{path}: cannot read audio header ({err})") from err
    return info.samplerate, info.frames, info.channels


def write_wav(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM WAV atomically (a crash never leaves a truncated file behind)."""
    path = Path(path)
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    if data.ndim != 1:
        raise AudioError(f"{path}: expected a mono waveform, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise AudioError(f"{path}: refusing to write NaN or Inf samples")
    with atomic_output(path) as tmp:
        sf.write(tmp, np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
