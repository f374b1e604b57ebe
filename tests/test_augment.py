"""The shared log-mel augmentations (atst_hear.augment) against the official definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from atst_hear.augment import (
    LabelMixup,
    MemoryBank,
    RandomResizeCrop,
    centre_crop,
    mix_at_offset,
    random_resize_crop,
)


def test_centre_crop_takes_the_middle_and_never_pads():
    wave = torch.arange(10.0)
    assert torch.equal(centre_crop(wave, 4), torch.tensor([3.0, 4.0, 5.0, 6.0]))
    assert torch.equal(centre_crop(wave, 20), wave)
    with pytest.raises(ValueError, match="at least 1 sample"):
        centre_crop(wave, 0)


def test_mix_at_offset_mixes_inside_each_clips_own_length():
    """As MixupSpecLabel: a shorter partner is mixed into a window of the clip, a longer one
    lends a window; every clip keeps its length and its padding."""
    generator = torch.Generator().manual_seed(0)
    mel = torch.zeros(3, 1, 2, 10)
    mel[0, ..., :10] = 1.0  # 10 frames
    mel[1, ..., :4] = 1.0  # 4 frames, padding stays 0
    mel[2, ..., :6] = 1.0
    lengths = torch.tensor([10, 4, 6])
    other = torch.full((3, 1, 2, 10), -7.0)
    other[0, ..., :3] = 3.0  # 3 frames: mixed into a window of clip 0
    other[1, ..., :8] = 3.0  # 8 frames: clip 1 takes a 4-frame window of it
    other[2, ..., :6] = 3.0
    other_lengths = torch.tensor([3, 8, 6])
    lam = torch.tensor([0.5, 0.25, 0.75])
    out = mix_at_offset(mel, lengths, other, other_lengths, lam, generator)
    row0 = out[0, 0, 0]
    mixed = torch.isclose(row0, torch.tensor(2.0))
    assert int(mixed.sum()) == 3 and bool((row0[~mixed] == 1.0).all())
    start = int(mixed.nonzero()[0])
    assert 0 <= start < 7 and bool(mixed[start : start + 3].all())
    torch.testing.assert_close(out[1, ..., :4], torch.full((1, 2, 4), 0.25 + 0.75 * 3.0))
    assert bool((out[1, ..., 4:] == 0).all())
    torch.testing.assert_close(out[2, ..., :6], torch.full((1, 2, 6), 0.75 + 0.25 * 3.0))
    assert bool((out[2, ..., 6:] == 0).all())


def test_label_mixup_mixes_labels_with_the_weights_of_the_log_mels():
    generator = torch.Generator().manual_seed(0)
    mixup = LabelMixup(alpha=0.5, memory=4)
    first = torch.zeros(2, 1, 1, 5)
    lengths = torch.tensor([5, 5])
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    same, same_target = mixup(first, lengths, target, generator)
    assert torch.equal(same, first) and torch.equal(same_target, target)  # empty bank
    second = torch.ones(2, 1, 1, 5)
    mixed, mixed_target = mixup(second, lengths, torch.tensor([[0.0, 1.0]] * 2), generator)
    lam = mixed[:, 0, 0, 0]  # lam * 1 + (1 - lam) * 0
    torch.testing.assert_close(mixed_target[:, 1], lam)
    torch.testing.assert_close(mixed_target[:, 0], 1 - lam)
    assert len(mixup.mels) == 4


def test_label_mixup_state_round_trips():
    generator = torch.Generator().manual_seed(0)
    mixup = LabelMixup(alpha=0.5, memory=3)
    mixup(torch.randn(2, 1, 2, 4), torch.tensor([4, 3]), torch.eye(2), generator)
    restored = LabelMixup(alpha=0.5, memory=3)
    restored.load_state_dict(mixup.state_dict())
    batch = (torch.randn(2, 1, 2, 4), torch.tensor([4, 4]), torch.eye(2))
    state = generator.get_state()
    expected = mixup(*batch, generator)
    generator.set_state(state)
    again = restored(*batch, generator)
    torch.testing.assert_close(again, expected)


def test_fine_tuning_random_resize_crop_canvas_is_f_by_1_and_t_by_1_5_bicubic():
    """With the box as large as the canvas, the output is the bicubic resize of the input centred
    on a zero canvas 1.5 x longer and exactly as high (no frequency padding)."""
    generator = torch.Generator().manual_seed(0)
    mel = torch.randn(1, 1, 8, 20)
    out = random_resize_crop(mel, generator, freq_scale=(1.0, 1.0), time_scale=(1.5, 1.5))
    canvas = torch.zeros(1, 1, 8, 30)
    canvas[..., 5:25] = mel
    expected = F.interpolate(canvas, size=(8, 20), mode="bicubic", align_corners=True)
    torch.testing.assert_close(out, expected)


def test_random_resize_crop_works_on_each_clips_own_frames():
    generator = torch.Generator().manual_seed(0)
    mel = torch.randn(2, 1, 8, 20)
    lengths = torch.tensor([20, 12])
    out = RandomResizeCrop()(mel, generator, lengths)
    assert out.shape == mel.shape
    assert torch.equal(out[1, ..., 12:], mel[1, ..., 12:])  # padding untouched
    whole = random_resize_crop(
        mel[1:, ..., :12], torch.Generator().manual_seed(1), (1.0, 1.0), (1.5, 1.5)
    )
    crop = random_resize_crop(
        mel[1:], torch.Generator().manual_seed(1), (1.0, 1.0), (1.5, 1.5), lengths=lengths[1:]
    )
    torch.testing.assert_close(crop[..., :12], whole)


def test_memory_bank_draws_and_restores():
    bank = MemoryBank(2)
    bank.push(torch.tensor([[1.0], [2.0], [3.0]]))
    assert sorted(bank.items.flatten().tolist()) == [2.0, 3.0]
    copy = MemoryBank(2)
    copy.load_state_dict(bank.state_dict())
    rows = copy.draw(5, torch.Generator().manual_seed(0))
    assert set(copy.take(rows).flatten().tolist()) <= {2.0, 3.0}


def test_label_mixup_ratio_zero_leaves_every_clip_unmixed():
    mixup = LabelMixup(alpha=10.0, memory=8, ratio=0.0)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.full((4,), 6)
    first = torch.randn(4, 2, 6), torch.eye(4)
    second = torch.randn(4, 2, 6), torch.eye(4).flip(0)
    mixup(first[0], lengths, first[1], generator)
    mel, target = mixup(second[0], lengths, second[1], generator)
    assert torch.equal(mel, second[0]) and torch.equal(target, second[1])
