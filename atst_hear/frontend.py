"""The ATST log-mel front-end, shared by ATST-Clip, ATST-Frame, C2F, pre-training and fine-tuning.

Constants are those of the official code (``atst-reference.md`` §1): torchaudio MelSpectrogram
(n_fft = win = 1024, hop 160, 64 HTK mels, 60–7800 Hz, power 2, centred with reflect padding),
``AmplitudeToDB(top_db=80)`` whose floor is taken per example, then a fixed min/max scaling of
the dB values to roughly [-1, 1]. Padding in the normalised domain is 0.
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


def num_frames(n_samples: int) -> int:
    """Mel frames produced for ``n_samples`` samples (centred STFT)."""
    return 1 + n_samples // HOP_LENGTH


def normalise_db(db: torch.Tensor) -> torch.Tensor:
    return (db - DB_MIN) / (DB_MAX - DB_MIN) * 2 - 1


class LogMelFrontend(nn.Module):
    """``[B, N]`` waveform at 16 kHz -> ``[B, 1, 64, 1 + N // 160]`` normalised log-mel."""

    def __init__(self) -> None:
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
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=TOP_DB)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim != 2:
            raise ValueError(f"expected a [batch, samples] waveform, got shape {tuple(wave.shape)}")
        if wave.shape[-1] < MIN_SAMPLES:
            raise ValueError(
                f"waveform of {wave.shape[-1]} samples is too short for the log-mel front-end "
                f"(needs at least {MIN_SAMPLES})"
            )
        # [B, 1, 64, T]: on 4-D input AmplitudeToDB takes the top_db floor per example
        mel = self.melspec(wave.float()).unsqueeze(1)
        return normalise_db(self.to_db(mel))
