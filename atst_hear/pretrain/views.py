"""Training views of ATST pre-training (``atst-reference.md`` §4.2, §4.3).

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

from ..frontend import LogMelFrontend
from .masking import span_mask

LOG_MIXUP_EPS = torch.finfo(torch.float32).eps


def random_crop(wave: torch.Tensor, n_samples: int, rng: np.random.Generator) -> torch.Tensor:
    """A random ``n_samples`` window of a 1-D waveform; shorter audio is zero-padded at the end."""
    if wave.shape[-1] <= n_samples:
        return F.pad(wave, (0, n_samples - wave.shape[-1]))
    start = int(rng.integers(0, wave.shape[-1] - n_samples + 1))
    return wave[start : start + n_samples]


class MemoryBank:
    """The ``capacity`` most recent crops of one view (a ring buffer on the batches' device)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"mixup memory must be non-negative, got {capacity}")
        self.capacity = int(capacity)
        self.items: torch.Tensor | None = None
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` stored crops drawn uniformly with replacement (the bank must not be empty)."""
        if self.items is None or self.size == 0:
            raise RuntimeError("the mixup memory bank is empty")
        picks = torch.randint(0, self.size, (n,), generator=generator)
        return self.items[picks.to(self.items.device)]

    @torch.no_grad()
    def push(self, batch: torch.Tensor) -> None:
        if self.capacity == 0:
            return
        batch = batch.detach()[-self.capacity :]
        if self.items is None:
            self.items = batch.new_zeros((self.capacity, *batch.shape[1:]))
        elif self.items.shape[1:] != batch.shape[1:] or self.items.device != batch.device:
            raise ValueError(
                f"mixup bank holds crops of shape {tuple(self.items.shape[1:])} on "
                f"{self.items.device}, got {tuple(batch.shape[1:])} on {batch.device}"
            )
        rows = (self.cursor + torch.arange(batch.shape[0])) % self.capacity
        self.items[rows.to(batch.device)] = batch
        self.cursor = int((self.cursor + batch.shape[0]) % self.capacity)
        self.size = min(self.size + batch.shape[0], self.capacity)


def log_mixup(x: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``log((1 - α)·e^x + α·e^z + eps)`` per row, on normalised log-mel values (as official)."""
    alpha = alpha.to(x.device, x.dtype).view(-1, *([1] * (x.ndim - 1)))
    return torch.log((1 - alpha) * x.exp() + alpha * background.exp() + LOG_MIXUP_EPS)


def mixup_with_bank(
    mel: torch.Tensor, bank: MemoryBank, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """Mix each crop with a random earlier one (α ~ ratio·U(0, 1)), then remember these crops."""
    alpha = ratio * torch.rand(mel.shape[0], generator=generator)
    mixed = (
        mel
        if len(bank) == 0 or ratio == 0
        else log_mixup(mel, bank.sample(len(mel), generator), alpha)
    )
    bank.push(mel)
    return mixed


def random_resize_crop(
    mel: torch.Tensor,
    generator: torch.Generator,
    freq_scale: tuple[float, float] = (0.6, 1.5),
    time_scale: tuple[float, float] = (0.6, 1.5),
    virtual_time: float = 1.5,
) -> torch.Tensor:
    """BYOL-A's RandomResizeCrop per example of ``[B, 1, F, T]``.

    The input is centred on a zero canvas ``virtual_time`` times as long; a random box of
    ``U(freq_scale)·F`` × ``U(time_scale)·T`` (clipped to the canvas) at a random position is
    cut out and resized back to ``F × T`` (bicubic, ``align_corners=True``).
    """
    batch, _, n_freq, n_time = mel.shape
    canvas_time = int(n_time * virtual_time)
    left = (canvas_time - n_time) // 2
    canvas = mel.new_zeros(batch, 1, n_freq, canvas_time)
    canvas[..., left : left + n_time] = mel
    scales = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    positions = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    out = torch.empty_like(mel)
    for row in range(batch):
        f_lo, f_hi = freq_scale
        t_lo, t_hi = time_scale
        height = min(max(int((f_lo + (f_hi - f_lo) * float(scales[row, 0])) * n_freq), 1), n_freq)
        width = min(
            max(int((t_lo + (t_hi - t_lo) * float(scales[row, 1])) * n_time), 1), canvas_time
        )
        top = int(float(positions[row, 0]) * (n_freq - height + 1))
        start = int(float(positions[row, 1]) * (canvas_time - width + 1))
        box = canvas[row : row + 1, :, top : top + height, start : start + width]
        out[row] = F.interpolate(box, size=(n_freq, n_time), mode="bicubic", align_corners=True)[0]
    return out


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
