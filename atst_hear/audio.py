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


class AudioError(ValueError):
    """An audio file or waveform that cannot be used, with the reason in the message."""


def check_waveform_batch(audio: torch.Tensor, name: str = "audio") -> torch.Tensor:
    """Check a ``[n_sounds, n_samples]`` batch as the HEAR API receives it; return it unchanged."""
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
    if not bool(torch.isfinite(audio).all()):
        bad = (~torch.isfinite(audio)).any(dim=1).nonzero().flatten().tolist()
        raise AudioError(f"{name} contains NaN or Inf values (rows {bad[:10]})")
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
    try:
        data, file_sr = sf.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several unrelated types for corrupt files
        raise AudioError(f"{name}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(f"{name}: audio file holds no samples")
    if not np.isfinite(data).all():
        raise AudioError(f"{name}: audio contains NaN or Inf samples")
    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    if sample_rate is not None:
        wave = resample(wave, file_sr, sample_rate)
    return wave


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
