"""Log-mel augmentations of ATST training, torchaudio style: functions plus thin modules.

One home for the augmentations that pre-training (``pretrain/views.py``), the ``finetune``
protocol and C2F distillation share, with the official parameters
(``audiossl/transforms/byol_a.py``, ``audiossl/transforms/target_transform.py``):

* :func:`random_resize_crop`: BYOL-A's RandomResizeCrop. The defaults are the official
  ``RandomResizeCrop()`` of fine-tuning and ATST-Clip pre-training: a canvas of F x 1, T x 1.5,
  frequency and time scales 0.6-1.5, bicubic resize; ATST-Frame pre-training passes
  ``time_scale=(1, 1), virtual_time=1`` (frequency only).
* :func:`log_mixup` / :func:`mixup_with_bank`: pre-training mixup in the linear-power domain of
  the normalised log-mel, against earlier crops, no labels (``byol_a.py`` ``Mixup``).
* :func:`mix_at_offset` / :class:`LabelMixup`: fine-tuning mixup (``MixupSpecLabel``): linear
  in the normalised log-mel, labels mixed with the same weight, against a memory bank of
  earlier (log-mel, label) pairs; clips of different lengths are mixed at a random offset
  inside the longer one and keep their own length.
* :class:`MemoryBank`: the ring buffer both mixups draw from.

Every random draw comes from an explicit ``torch.Generator`` so that views are reproducible on
CPU and GPU. The official banks are filled clip by clip inside each data-loader worker; here a
bank is filled batch by batch on the training device (a batch mixes with earlier batches only).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

LOG_MIXUP_EPS = torch.finfo(torch.float32).eps


def centre_crop(wave: torch.Tensor, n_samples: int) -> torch.Tensor:
    """The centre ``n_samples`` of a waveform (last axis); shorter audio is returned unpadded.

    The official linear-evaluation and fine-tuning input (``CentralCrop(sr * 12, pad=False)``).
    """
    if n_samples < 1:
        raise ValueError(f"a centre crop needs at least 1 sample, got {n_samples}")
    if wave.shape[-1] <= n_samples:
        return wave
    start = (wave.shape[-1] - n_samples) // 2
    return wave[..., start : start + n_samples]


class MemoryBank:
    """The ``capacity`` most recent rows pushed (a ring buffer on the batches' device)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"mixup memory must be non-negative, got {capacity}")
        self.capacity = int(capacity)
        self.items: torch.Tensor | None = None
        self.size = 0
        self.cursor = 0

    def __len__(self) -> int:
        return self.size

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` row indices drawn uniformly with replacement (the bank must not be empty)."""
        if self.items is None or self.size == 0:
            raise RuntimeError("the mixup memory bank is empty")
        return torch.randint(0, self.size, (n,), generator=generator)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` stored rows drawn uniformly with replacement (the bank must not be empty)."""
        return self.take(self.draw(n, generator))

    def take(self, rows: torch.Tensor) -> torch.Tensor:
        if self.items is None:
            raise RuntimeError("the mixup memory bank is empty")
        return self.items[rows.to(self.items.device)]

    def state_dict(self) -> dict:
        return {"items": self.items, "size": self.size, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.items, self.size, self.cursor = (
            state["items"],
            int(state["size"]),
            int(state["cursor"]),
        )

    @torch.no_grad()
    def push(self, batch: torch.Tensor) -> None:
        if self.capacity == 0:
            return
        batch = batch.detach()[-self.capacity :]
        if self.items is None:
            self.items = batch.new_zeros((self.capacity, *batch.shape[1:]))
        elif self.items.shape[1:] != batch.shape[1:] or self.items.device != batch.device:
            raise ValueError(
                f"mixup bank holds rows of shape {tuple(self.items.shape[1:])} on "
                f"{self.items.device}, got {tuple(batch.shape[1:])} on {batch.device}"
            )
        rows = (self.cursor + torch.arange(batch.shape[0])) % self.capacity
        self.items[rows.to(batch.device)] = batch
        self.cursor = int((self.cursor + batch.shape[0]) % self.capacity)
        self.size = min(self.size + batch.shape[0], self.capacity)


# --- pre-training mixup -----------------------------------------------------------------------
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


# --- fine-tuning mixup ------------------------------------------------------------------------
def beta_weights(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of Beta(alpha, alpha), seeded from ``generator`` (torch's Beta takes none)."""
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be positive, got {alpha}")
    seed = int(torch.randint(0, 2**31, (1,), generator=generator))
    return torch.from_numpy(np.random.default_rng(seed).beta(alpha, alpha, n)).float()


def mix_at_offset(
    mel: torch.Tensor,
    lengths: torch.Tensor,
    other: torch.Tensor,
    other_lengths: torch.Tensor,
    lam: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """``lam·x + (1 - lam)·x'`` per row of padded ``[B, 1, F, T]`` batches, over valid frames.

    As ``MixupSpecLabel``: equal lengths mix whole; a longer ``x`` gets ``x'`` mixed in at a
    random offset (the rest of ``x`` stays); a shorter ``x`` is mixed with a window of ``x'`` at
    a random offset. Every row keeps its own length; padding is left as it is.
    """
    out = mel.clone()
    lam = lam.to(mel.device, mel.dtype)
    for row in range(mel.shape[0]):
        n, m = int(lengths[row]), int(other_lengths[row])
        weight = lam[row]
        if n == m:
            out[row, ..., :n] = weight * mel[row, ..., :n] + (1 - weight) * other[row, ..., :n]
        elif n > m:
            start = int(torch.randint(0, n - m, (1,), generator=generator))
            window = slice(start, start + m)
            out[row, ..., window] = (
                weight * mel[row, ..., window] + (1 - weight) * other[row, ..., :m]
            )
        else:
            start = int(torch.randint(0, m - n, (1,), generator=generator))
            partner = other[row, ..., start : start + n]
            out[row, ..., :n] = weight * mel[row, ..., :n] + (1 - weight) * partner
    return out


class LabelMixup:
    """Fine-tuning mixup against a bank of earlier (log-mel, label, length) triples.

    ``ratio`` is the share of clips that are mixed (official 1.0); the first batch passes
    unchanged, as the official first clip does. Log-mels are banked at the width of the batch
    they came in, so every batch of one run must have the same width (pad to the task's longest
    clip).
    """

    def __init__(self, alpha: float, memory: int, ratio: float = 1.0) -> None:
        if alpha <= 0:
            raise ValueError(f"mixup alpha must be positive, got {alpha}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"mixup ratio must be in [0, 1], got {ratio}")
        self.alpha, self.ratio = float(alpha), float(ratio)
        self.mels, self.targets, self.lengths = (MemoryBank(memory) for _ in range(3))

    def __call__(
        self,
        mel: torch.Tensor,
        lengths: torch.Tensor,
        target: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixed ``(mel, target)``; ``lengths`` (valid frames per row) stay the same."""
        lam = beta_weights(self.alpha, len(mel), generator)
        mixed, mixed_target = mel, target
        if len(self.mels):
            rows = self.mels.draw(len(mel), generator)
            # unmixed clips keep weight 1 on themselves
            lam = torch.where(torch.rand(len(mel), generator=generator) < self.ratio, lam, 1.0)
            mixed = mix_at_offset(
                mel, lengths, self.mels.take(rows), self.lengths.take(rows), lam, generator
            )
            weight = lam.to(target.device, target.dtype)[:, None]
            mixed_target = weight * target + (1 - weight) * self.targets.take(rows)
        for bank, values in zip(self._banks, (mel, target, lengths)):
            bank.push(values)
        return mixed, mixed_target

    @property
    def _banks(self) -> tuple[MemoryBank, MemoryBank, MemoryBank]:
        return self.mels, self.targets, self.lengths

    def state_dict(self) -> dict:
        """The banks' contents, so that a resumed run mixes with what an uninterrupted one
        would."""
        return {"banks": [bank.state_dict() for bank in self._banks]}

    def load_state_dict(self, state: dict) -> None:
        for bank, saved in zip(self._banks, state["banks"]):
            bank.load_state_dict(saved)


# --- random resize crop -----------------------------------------------------------------------
def random_resize_crop(
    mel: torch.Tensor,
    generator: torch.Generator,
    freq_scale: tuple[float, float] = (0.6, 1.5),
    time_scale: tuple[float, float] = (0.6, 1.5),
    virtual_time: float = 1.5,
    lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """BYOL-A's RandomResizeCrop per example of ``[B, 1, F, T]``.

    Each example (its first ``lengths[b]`` frames when given, else all ``T``) is centred on a
    zero canvas of F x ``virtual_time``·T; a random box of ``U(freq_scale)·F`` x
    ``U(time_scale)·T`` (clipped to the canvas) at a random position is cut out and resized back
    to the example's own size (bicubic, ``align_corners=True``). Frames past ``lengths`` are
    returned as they came.
    """
    batch, _, n_freq, width = mel.shape
    if lengths is None:
        lengths = torch.full((batch,), width, dtype=torch.long)
    scales = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    positions = torch.rand(batch, 2, generator=generator, dtype=torch.float64)
    f_lo, f_hi = freq_scale
    t_lo, t_hi = time_scale
    out = mel.clone()
    for row in range(batch):
        n_time = int(lengths[row])
        if n_time < 1:
            continue
        canvas_time = int(n_time * virtual_time)
        left = (canvas_time - n_time) // 2
        canvas = mel.new_zeros(1, 1, n_freq, canvas_time)
        canvas[..., left : left + n_time] = mel[row : row + 1, ..., :n_time]
        height = min(max(int((f_lo + (f_hi - f_lo) * float(scales[row, 0])) * n_freq), 1), n_freq)
        box_width = min(
            max(int((t_lo + (t_hi - t_lo) * float(scales[row, 1])) * n_time), 1), canvas_time
        )
        top = int(float(positions[row, 0]) * (n_freq - height + 1))
        start = int(float(positions[row, 1]) * (canvas_time - box_width + 1))
        box = canvas[..., top : top + height, start : start + box_width]
        out[row, ..., :n_time] = F.interpolate(
            box, size=(n_freq, n_time), mode="bicubic", align_corners=True
        )[0]
    return out


class RandomResizeCrop(torch.nn.Module):
    """:func:`random_resize_crop` as a module (the official fine-tuning parameters by default)."""

    def __init__(
        self,
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
        virtual_time: float = 1.5,
    ) -> None:
        super().__init__()
        self.freq_scale, self.time_scale = tuple(freq_scale), tuple(time_scale)
        self.virtual_time = float(virtual_time)

    def forward(
        self,
        mel: torch.Tensor,
        generator: torch.Generator,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return random_resize_crop(
            mel, generator, self.freq_scale, self.time_scale, self.virtual_time, lengths
        )

    def extra_repr(self) -> str:
        return (
            f"freq_scale={self.freq_scale}, time_scale={self.time_scale}, "
            f"virtual_time={self.virtual_time}"
        )
