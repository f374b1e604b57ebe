"""The ATST log-mel front-end, shared by ATST-Clip, ATST-Frame, C2F, pre-training and fine-tuning.

Constants are those of the official code (``atst-reference.md`` §1): torchaudio MelSpectrogram
(n_fft = win = 1024, hop 160, 64 HTK mels, 60–7800 Hz, power 2, centred with reflect padding),
``AmplitudeToDB(top_db=80)`` whose floor is taken per example, then a fixed min/max scaling of
the dB values to roughly [-1, 1]. Padding in the normalised domain is 0.

Long audio is transformed in chunks of :data:`CHUNK_FRAMES` frames: each chunk's STFT is taken
(uncentred) over its own samples plus the half-window of context either side, reflect-padded
only at the ends of the clip exactly as a centred STFT pads them, so chunking does not change
the values. The per-example ``top_db`` floor needs the example's peak: :meth:`forward` writes dB
values and floors them in a second pass over its output; :meth:`LogMelFrontend.stream` finds
the peaks in a first pass and then computes any frame range on demand, so the embedder never
holds the log-mel of a whole long clip.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

SAMPLE_RATE = 16000
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 160
F_MIN = 60.0
F_MAX = 7800.0
N_MELS = 64
TOP_DB = 80.0
# global dB range of AudioSet measured by the ATST authors; fixed, not a per-dataset statistic
DB_MIN = -79.6482
DB_MAX = 50.6842
FRAME_MS = 1000 * HOP_LENGTH / SAMPLE_RATE  # 10 ms between mel frames
MIN_SAMPLES = N_FFT // 2 + 1  # reflect padding in the STFT needs more than n_fft / 2 samples
AMIN = 1e-10  # AmplitudeToDB's floor on power before the logarithm
# frames per STFT chunk (30 s): a few MB of spectrum per example however long the audio
CHUNK_FRAMES = 3000


def num_frames(n_samples: int) -> int:
    """Mel frames produced for ``n_samples`` samples (centred STFT)."""
    return 1 + n_samples // HOP_LENGTH


def normalise_db(db: torch.Tensor) -> torch.Tensor:
    return (db - DB_MIN) / (DB_MAX - DB_MIN) * 2 - 1


def normalise_db_(db: torch.Tensor) -> torch.Tensor:
    """:func:`normalise_db` in place (same operations, same rounding), returning ``db``."""
    return db.sub_(DB_MIN).div_(DB_MAX - DB_MIN).mul_(2).sub_(1)


class LogMelFrontend(nn.Module):
    """``[B, N]`` waveform at 16 kHz -> ``[B, 1, 64, 1 + N // 160]`` normalised log-mel."""

    def __init__(self, chunk_frames: int = CHUNK_FRAMES) -> None:
        super().__init__()
        self.melspec = torchaudio.transforms.MelSpectrogram(
            SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=WIN_LENGTH,
            hop_length=HOP_LENGTH,
            f_min=F_MIN,
            f_max=F_MAX,
            n_mels=N_MELS,
        )
        self.chunk_frames = int(chunk_frames)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        total = num_frames(_check_wave(wave))
        out = wave.new_empty(wave.shape[0], 1, N_MELS, total, dtype=torch.float32)
        for start in range(0, total, self.chunk_frames):
            stop = min(total, start + self.chunk_frames)
            out[:, 0, :, start:stop] = self.decibels(wave, start, stop)
        # AmplitudeToDB(top_db=80) on [B, 1, 64, T]: floor at each example's peak - top_db
        floor = out.amax(dim=(1, 2, 3), keepdim=True) - TOP_DB
        torch.maximum(out, floor, out=out)
        return normalise_db_(out)

    def stream(self, wave: torch.Tensor) -> MelStream:
        """The log-mel of ``wave`` computed range by range (after one pass for the peaks)."""
        total = num_frames(_check_wave(wave))
        peak = torch.full((wave.shape[0],), -torch.inf, device=wave.device)
        for start in range(0, total, self.chunk_frames):
            chunk = self.decibels(wave, start, min(total, start + self.chunk_frames))
            peak = torch.maximum(peak, chunk.amax(dim=(1, 2)))
        return MelStream(self, wave, total, peak - TOP_DB)

    def decibels(
        self, wave: torch.Tensor, start: int, stop: int, rows: list[int] | None = None
    ) -> torch.Tensor:
        """``[B, 64, stop - start]`` dB mel power of frames ``[start, stop)`` (no floor yet) of
        the examples ``rows`` (default: all)."""
        mel = self._mel_power(wave, start, stop, slice(None) if rows is None else rows)
        return torchaudio.functional.amplitude_to_DB(
            mel, multiplier=10.0, amin=AMIN, db_multiplier=0.0, top_db=None
        )

    def _mel_power(self, wave: torch.Tensor, start: int, stop: int, rows) -> torch.Tensor:
        """Mel power of frames ``[start, stop)``, as the centred whole-clip STFT computes them."""
        half = N_FFT // 2
        n_samples = wave.shape[-1]
        # frame t of a centred STFT covers samples [t*hop - n_fft/2, t*hop + n_fft/2)
        first, last = start * HOP_LENGTH - half, (stop - 1) * HOP_LENGTH + half
        pieces = []
        # rows and samples are selected together, so only the chunk's samples are copied
        if first < 0:  # reflect padding: wave[k] for k = -first .. 1
            pieces.append(wave[rows, 1 : 1 - first].flip(-1))
        pieces.append(wave[rows, max(first, 0) : min(last, n_samples)])
        if last > n_samples:  # reflect padding: wave[n-2], wave[n-3], ...
            pieces.append(wave[rows, 2 * n_samples - 1 - last : n_samples - 1].flip(-1))
        segment = torch.cat(pieces, dim=-1) if len(pieces) > 1 else pieces[0]
        spectrogram = self.melspec.spectrogram
        power = torchaudio.functional.spectrogram(
            segment.float(),
            pad=0,
            window=spectrogram.window,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=WIN_LENGTH,
            power=2.0,
            normalized=False,
            center=False,
        )
        # float32 even under autocast: with this product in bfloat16 as well, bf16 embeddings
        # differ about 4x more from float32 ones (tests/hear/test_precision.py)
        with torch.autocast(power.device.type, enabled=False):
            return self.melspec.mel_scale(power)


class MelStream:
    """The normalised log-mel of a batch, computed on demand for any frame range.

    Values equal :meth:`LogMelFrontend.forward`'s; only the waveform and the per-example floor
    are held.
    """

    def __init__(
        self, frontend: LogMelFrontend, wave: torch.Tensor, n_frames: int, floor: torch.Tensor
    ) -> None:
        self.frontend = frontend
        self.wave = wave
        self.n_frames = n_frames
        self.floor = floor

    @property
    def n_clips(self) -> int:
        return self.wave.shape[0]

    def frames(self, start: int, stop: int, rows: list[int]) -> torch.Tensor:
        """``[len(rows), 1, 64, stop - start]`` normalised log-mel of the clips ``rows``."""
        db = self.frontend.decibels(self.wave, start, stop, rows)
        torch.maximum(db, self.floor[rows][:, None, None], out=db)
        return normalise_db_(db).unsqueeze(1)


def _check_wave(wave: torch.Tensor) -> int:
    """The number of samples of a ``[batch, samples]`` waveform the front-end can transform."""
    if wave.ndim != 2:
        raise ValueError(f"expected a [batch, samples] waveform, got shape {tuple(wave.shape)}")
    n_samples = wave.shape[-1]
    if n_samples < MIN_SAMPLES:
        raise ValueError(
            f"waveform of {n_samples} samples is too short for the log-mel front-end "
            f"(needs at least {MIN_SAMPLES})"
        )
    return n_samples
