"""A log-mel baseline exposed as a HEAR module (``atst_hear.bench.baselines``).

It needs no checkpoint, so the demo suite and the tests can run the whole benchmark pipeline on
it, and it gives every table a floor to compare learned embeddings against:

* scene embedding: mean and standard deviation over time of a 64-band log-mel spectrogram
  (25 ms window, 10 ms hop) -> ``[B, 128]``;
* timestamp embedding: the same log-mel averaged over 40 ms (ATST-Frame's token hop), one frame
  per complete 40 ms of audio, timestamps at the frame centres -> ``[B, T, 64]``.
"""

from __future__ import annotations

import torch
import torchaudio

from ..audio import SAMPLE_RATE, check_waveform_batch

FRAME_HOP_MS = 40
_MEL_HOP = 160  # 10 ms at 16 kHz
_FRAMES_PER_TOKEN = FRAME_HOP_MS * SAMPLE_RATE // 1000 // _MEL_HOP


class LogMelBaseline(torch.nn.Module):
    sample_rate = SAMPLE_RATE

    def __init__(self, n_mels: int = 64):
        super().__init__()
        if not isinstance(n_mels, int) or n_mels < 1:
            raise ValueError(f"n_mels must be a positive int, got {n_mels!r}")
        self.n_mels = n_mels
        self.scene_embedding_size = 2 * n_mels
        self.timestamp_embedding_size = n_mels
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE, n_fft=400, hop_length=_MEL_HOP, n_mels=n_mels, center=True
        )

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        """``[B, N]`` waveform -> ``[B, T, n_mels]`` log-mel frames (10 ms hop)."""
        check_waveform_batch(audio)
        mel = self.melspec(audio.to(torch.float32))
        return torch.log(mel + 1e-6).transpose(1, 2)


def load_model(model_file_path: str | None = None, n_mels: int = 64) -> LogMelBaseline:
    """The baseline has no weights; ``model_file_path`` must be empty."""
    if model_file_path:
        raise ValueError(
            f"the log-mel baseline has no weights; got model_file_path={model_file_path!r}"
        )
    return LogMelBaseline(n_mels=n_mels).eval()


@torch.no_grad()
def get_scene_embeddings(audio: torch.Tensor, model: LogMelBaseline) -> torch.Tensor:
    frames = model.log_mel(audio.to(next(iter(model.buffers())).device))
    return torch.cat([frames.mean(dim=1), frames.std(dim=1, unbiased=False)], dim=1)


@torch.no_grad()
def get_timestamp_embeddings(
    audio: torch.Tensor, model: LogMelBaseline
) -> tuple[torch.Tensor, torch.Tensor]:
    frames = model.log_mel(audio.to(next(iter(model.buffers())).device))
    n_tokens = audio.shape[1] * 1000 // (SAMPLE_RATE * FRAME_HOP_MS)
    if n_tokens == 0:
        raise ValueError(
            f"audio of {audio.shape[1]} samples is shorter than one {FRAME_HOP_MS} ms frame"
        )
    tokens = frames[:, : n_tokens * _FRAMES_PER_TOKEN]
    tokens = tokens.reshape(audio.shape[0], n_tokens, _FRAMES_PER_TOKEN, model.n_mels).mean(2)
    centres = (torch.arange(n_tokens, dtype=torch.float64) + 0.5) * FRAME_HOP_MS
    timestamps = centres.to(torch.float32).expand(audio.shape[0], n_tokens).to(tokens.device)
    return tokens.contiguous(), timestamps.contiguous()
