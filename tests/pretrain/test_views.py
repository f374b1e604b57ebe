import numpy as np
import pytest
import torch

from atst_hear.augment import MemoryBank, log_mixup, mixup_with_bank, random_resize_crop
from atst_hear.frontend import LogMelFrontend
from atst_hear.pretrain.views import (
    ClipViews,
    FrameViews,
    random_crop,
)


def waves(batch: int, samples: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(batch, samples, generator=generator)


def test_random_crop_cuts_long_and_pads_short_audio():
    rng = np.random.default_rng(0)
    wave = torch.arange(100.0)
    crop = random_crop(wave, 30, rng)
    assert crop.shape == (30,)
    start = int(crop[0])
    assert torch.equal(crop, torch.arange(start, start + 30.0))
    padded = random_crop(torch.ones(10), 16, rng)
    assert torch.equal(padded, torch.cat([torch.ones(10), torch.zeros(6)]))


def test_memory_bank_keeps_the_most_recent_crops():
    bank = MemoryBank(3)
    bank.push(torch.tensor([[1.0], [2.0]]))
    bank.push(torch.tensor([[3.0], [4.0]]))
    assert len(bank) == 3
    assert sorted(bank.items.flatten().tolist()) == [2.0, 3.0, 4.0]
    drawn = bank.sample(50, torch.Generator().manual_seed(0))
    assert set(drawn.flatten().tolist()) <= {2.0, 3.0, 4.0}
    with pytest.raises(ValueError, match="shape"):
        bank.push(torch.zeros(1, 2))
    with pytest.raises(RuntimeError, match="empty"):
        MemoryBank(2).sample(1, torch.Generator())


def test_log_mixup_stays_between_its_inputs():
    x = torch.rand(6, 1, 4, 5) * 2 - 1
    z = torch.rand(6, 1, 4, 5) * 2 - 1
    alpha = torch.linspace(0, 0.4, 6)
    mixed = log_mixup(x, z, alpha)
    low, high = torch.minimum(x, z), torch.maximum(x, z)
    assert (mixed >= low - 1e-5).all() and (mixed <= high + 1e-5).all()
    assert torch.allclose(mixed[0], x[0], atol=1e-6)  # alpha 0 is the identity


def test_mixup_is_the_identity_until_the_bank_holds_crops():
    bank = MemoryBank(8)
    generator = torch.Generator().manual_seed(0)
    first = torch.rand(4, 1, 64, 20)
    assert torch.equal(mixup_with_bank(first, bank, 0.4, generator), first)
    second = torch.rand(4, 1, 64, 20)
    assert not torch.equal(mixup_with_bank(second, bank, 0.4, generator), second)
    assert len(bank) == 8


def test_random_resize_crop_keeps_shape_and_frequency_only_keeps_constants():
    generator = torch.Generator().manual_seed(0)
    mel = torch.rand(5, 1, 64, 40) * 2 - 1
    out = random_resize_crop(mel, generator)
    assert out.shape == mel.shape and torch.isfinite(out).all()
    # the zero canvas and bicubic overshoot stay near the input range
    assert out.abs().max() <= 1.5
    constant = torch.full((3, 1, 64, 40), 0.3)
    warped = random_resize_crop(constant, generator, time_scale=(1.0, 1.0), virtual_time=1.0)
    assert torch.allclose(warped, constant, atol=1e-5)


def test_frame_views_pair_plain_and_augmented_views_with_one_mask_per_clip():
    views = FrameViews(mixup_memory=16)
    batch = waves(3, 8000)
    out = views(batch, torch.Generator().manual_seed(0))
    frames = 1 + 8000 // 160
    assert out.mel.shape == (6, 1, 64, frames)
    assert torch.allclose(out.mel[:3], LogMelFrontend()(batch))
    assert out.token_mask.shape == (6, frames // 4) and out.token_mask.dtype == torch.bool
    assert torch.equal(out.token_mask[:3], out.token_mask[3:])
    assert out.mel[:3].sub(out.mel[3:]).abs().max() > 0  # the second view is augmented


def test_clip_views_pad_both_crops_to_the_longer_and_report_lengths():
    views = ClipViews(mixup_memory=16)
    anchor, positive = waves(2, 9600, seed=1), waves(2, 8000, seed=2)
    out = views((anchor, positive), torch.Generator().manual_seed(0))
    long, short = 1 + 9600 // 160, 1 + 8000 // 160
    assert out.mel.shape == (4, 1, 64, long)
    assert out.frame_lengths.tolist() == [long, long, short, short]
    assert (out.mel[2:, ..., short:] == 0).all()


def test_views_are_reproducible_from_the_generator():
    batch = waves(2, 8000)
    a = FrameViews(mixup_memory=4)(batch, torch.Generator().manual_seed(7))
    b = FrameViews(mixup_memory=4)(batch, torch.Generator().manual_seed(7))
    assert torch.equal(a.mel, b.mel) and torch.equal(a.token_mask, b.token_mask)
