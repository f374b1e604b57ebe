"""Training views of ATST pre-training (``docs/pretraining.md``, ``docs/fidelity.md``).

The augmentations themselves (mixup, memory bank, random-resize-crop) live in
:mod:`atst_hear.augment`; this module composes them into the two flavours' views.

Data workers only decode and crop waveforms (:func:`random_crop`); everything else runs on the
training device, batched: the log-mel front-end, log-domain mixup against a memory bank of
earlier crops, random-resize-crop and (ATST-Frame) block masks. All random draws come from one
CPU ``torch.Generator`` that the training module seeds per step, so views are the same on CPU
and GPU and a resumed run draws exactly what an uninterrupted one would.

* ATST-Clip: two independent crops of a clip (anchor ``train_len`` s, positive 6 s); each gets
  mixup then random-resize-crop (virtual crop 1.5× in time, frequency and time scale 0.6–1.5,
  bicubic); both are zero-padded to the longer one and carry their valid frame counts.
* ATST-Frame: one crop used twice: view 1 plain, view 2 with mixup then frequency-only
  random-resize-crop; one block mask per clip, shared by both views.

Deviation from the official code, by design: the official mixup keeps one bank per data-loader
worker, filled sample by sample; here one bank per view and device is filled batch by batch
(a batch is mixed against earlier batches only). The bank is not saved in checkpoints: after a
resume it refills as at the start of training (where the official first call is the identity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..augment import MemoryBank, mixup_with_bank, random_resize_crop
from ..frontend import LogMelFrontend
from .masking import span_mask


def random_crop(wave: torch.Tensor, n_samples: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``n_samples`` window of a 1-D waveform; shorter audio is zero-padded at the end."""
    if wave.shape[-1] <= n_samples:
        return F.pad(wave, (0, n_samples - wave.shape[-1]))
    start = int(rng.integers(0, wave.shape[-1] - n_samples + 1))
    return wave[start : start + n_samples]


@dataclass
class FrameViewBatch:
    mel: torch.Tensor  # [2B, 1, 64, T]: plain views, then augmented views
    token_mask: torch.Tensor  # [2B, P] bool, the same mask for both views of a clip


@dataclass
class ClipViewBatch:
    mel: torch.Tensor  # [2B, 1, 64, T_max]: anchor views, then positive views, zero-padded
    frame_lengths: torch.Tensor  # [2B] valid frames of each view


class _Views:
    def __init__(self, mixup_ratio: float, mixup_memory: int) -> None:
        if not 0.0 <= mixup_ratio <= 1.0:
            raise ValueError(f"mixup_ratio must be in [0, 1], got {mixup_ratio}")
        self.mixup_ratio = mixup_ratio
        self.mixup_memory = mixup_memory
        self.frontend = LogMelFrontend()

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Front-end in float32 even under mixed precision (dB and exp() need the range)."""
        frontend = self.frontend.to(wave.device)
        with torch.no_grad(), torch.autocast(device_type=wave.device.type, enabled=False):
            return frontend(wave.float())


class FrameViews(_Views):
    """ATST-Frame: ``[B, N]`` crops -> plain + augmented log-mel views and block masks."""

    def __init__(
        self,
        mixup_ratio: float = 0.4,
        mixup_memory: int = 2000,
        freq_scale: tuple[float, float] = (0.6, 1.5),
        mask_prob: float = 0.65,
        mask_span: int = 5,
        patch_width: int = 4,
    ) -> None:
        super().__init__(mixup_ratio, mixup_memory)
        self.freq_scale = tuple(freq_scale)
        self.mask_prob = mask_prob
        self.mask_span = mask_span
        self.patch_width = patch_width
        self.bank = MemoryBank(mixup_memory)

    def __call__(self, wave: torch.Tensor, generator: torch.Generator) -> FrameViewBatch:
        plain = self.log_mel(wave)
        augmented = mixup_with_bank(plain, self.bank, self.mixup_ratio, generator)
        augmented = random_resize_crop(
            augmented, generator, self.freq_scale, time_scale=(1.0, 1.0), virtual_time=1.0
        )
        n_tokens = plain.shape[-1] // self.patch_width
        mask = span_mask(len(wave), n_tokens, self.mask_prob, self.mask_span, generator=generator)
        mask = mask.to(wave.device)
        return FrameViewBatch(torch.cat([plain, augmented]), torch.cat([mask, mask]))


class ClipViews(_Views):
    """ATST-Clip: anchor ``[B, Na]`` and positive ``[B, Np]`` crops -> two augmented views."""

    def __init__(
        self,
        mixup_ratio: float = 0.4,
        mixup_memory: int = 2000,
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
        virtual_time: float = 1.5,
    ) -> None:
        super().__init__(mixup_ratio, mixup_memory)
        self.freq_scale = tuple(freq_scale)
        self.time_scale = tuple(time_scale)
        self.virtual_time = virtual_time
        self.banks = (MemoryBank(mixup_memory), MemoryBank(mixup_memory))

    def __call__(
        self, waves: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator
    ) -> ClipViewBatch:
        views = []
        for wave, bank in zip(waves, self.banks):
            mel = mixup_with_bank(self.log_mel(wave), bank, self.mixup_ratio, generator)
            views.append(
                random_resize_crop(
                    mel, generator, self.freq_scale, self.time_scale, self.virtual_time
                )
            )
        longest = max(view.shape[-1] for view in views)
        lengths = [
            torch.full((len(view),), view.shape[-1], dtype=torch.long, device=view.device)
            for view in views
        ]
        padded = [F.pad(view, (0, longest - view.shape[-1])) for view in views]
        return ClipViewBatch(torch.cat(padded), torch.cat(lengths))
