"""The shared fine-tuning stack (atst_hear.finetuning)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from atst_hear.embeddings import ATSTEmbedder
from atst_hear.finetuning import (
    ClipDataset,
    FinetuneAugment,
    LastBlockTokens,
    PadTo,
    TaskClassifier,
    balanced_sampler,
    balanced_weights,
    set_learning_rate,
    sgd_with_layer_decay,
    training_loss,
)
from atst_hear.frontend import LogMelFrontend, num_frames
from atst_hear.models.encoder import ATSTConfig, ATSTEncoder


def test_balanced_weights_are_the_official_label_weights():
    targets = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]], np.float32)
    weights = balanced_weights(targets)
    head, rare = 1000 / 3.01, 1000 / 1.01
    torch.testing.assert_close(weights, torch.tensor([head, head, head + rare, 0.0]).double())
    draws = list(balanced_sampler(targets, torch.Generator().manual_seed(0)))
    assert len(draws) == 4 and 3 not in draws  # with replacement, never an unlabelled clip
    with pytest.raises(ValueError, match="at least one labelled clip"):
        balanced_weights(np.zeros((2, 3)))


def test_clip_dataset_takes_the_centre_12_seconds_unpadded(tmp_path):
    rng = np.random.default_rng(0)
    long_wave = (0.1 * rng.standard_normal(20 * 16000)).astype(np.float32)
    short_wave = long_wave[:16000]
    sf.write(tmp_path / "long.wav", long_wave, 16000)
    sf.write(tmp_path / "short.wav", short_wave, 16000)
    clips = ClipDataset(
        [tmp_path / "long.wav", tmp_path / "short.wav"], np.eye(2, dtype=np.float32)
    )
    long_item, short_item = clips[0], clips[1]
    frontend = LogMelFrontend()
    centre = torch.from_numpy(long_wave[4 * 16000 : 16 * 16000])
    torch.testing.assert_close(long_item["mel"], frontend(centre[None])[0], atol=1e-4, rtol=0)
    assert short_item["mel"].shape[-1] == num_frames(16000)
    assert clips.longest_frames() == num_frames(12 * 16000)
    batch = PadTo(clips.longest_frames())([long_item, short_item])
    assert batch["frames"].tolist() == [num_frames(12 * 16000), num_frames(16000)]
    assert bool((batch["mel"][1, ..., num_frames(16000) :] == 0).all())


def test_finetune_augment_keeps_lengths_and_padding():
    augment = FinetuneAugment(alpha=0.5, memory=8)
    generator = torch.Generator().manual_seed(0)
    frames = torch.tensor([12, 7])
    for _ in range(2):  # the second batch is mixed with the first
        mel = torch.zeros(2, 1, 64, 12)
        mel[0] = torch.randn(1, 64, 12)
        mel[1, ..., :7] = torch.randn(1, 64, 7)
        out, target = augment(mel, frames, torch.eye(2), generator)
        assert out.shape == mel.shape and bool((out[1, ..., 7:] == 0).all())
        torch.testing.assert_close(target.sum(1), torch.ones(2))


def test_learning_rate_follows_the_schedule_times_the_layer_scale():
    torch.manual_seed(0)
    model = TaskClassifier(ATSTEncoder(ATSTConfig("frame", width=32, depth=2, heads=1)), 3)
    optimizer = sgd_with_layer_decay(model, model.encoder, 0.5, 0.9)
    lr = set_learning_rate(optimizer, 10, peak=1.0, warmup=5, total=20)
    assert {round(g["lr"] / lr, 6) for g in optimizer.param_groups} == {1.0, 0.5, 0.25}
    assert all(g["weight_decay"] == 0 and g["momentum"] == 0.9 for g in optimizer.param_groups)


def test_last_block_tokens_are_the_cached_timestamp_embeddings_and_train_only_the_top():
    """The sed finetune_mode tokens equal the embedding cache's (ATSTEmbedder, n_blocks 1), also
    past the 1000-frame chunk, and only the last block and the final norm get gradients."""
    torch.manual_seed(0)
    encoder = ATSTEncoder(ATSTConfig.preset("frame", "tiny", drop_path=0.0))
    audio = 0.1 * torch.randn(2, 12 * 16000)
    expected, _ = ATSTEmbedder(encoder, n_blocks=1).timestamp_embeddings(audio)
    tokens = LastBlockTokens(encoder)
    x, mask = tokens([audio[0], audio[1, : 5 * 16000]])
    assert x.shape[1] == expected.shape[1] == 300 and int(mask[1].sum()) == 125
    torch.testing.assert_close(x[0], expected[0], atol=1e-4, rtol=1e-4)
    short, _ = ATSTEmbedder(encoder, n_blocks=1).timestamp_embeddings(audio[1:, : 5 * 16000])
    torch.testing.assert_close(x[1, :125], short[0], atol=1e-4, rtol=1e-4)
    x[mask].sum().backward()
    top = {id(p) for p in [*encoder.blocks[-1].parameters(), *encoder.final_norm.parameters()]}
    for name, parameter in encoder.named_parameters():
        assert (parameter.grad is not None) == (id(parameter) in top), name
    tokens.train()
    assert encoder.blocks[-1].training and not encoder.blocks[0].training
    LastBlockTokens(encoder, drop_path=0.1)  # the DCASE encoder's stochastic depth
    assert encoder.blocks[-1].drop_path.rate == pytest.approx(0.1)
    assert encoder.blocks[0].drop_path.rate == 0.0


def test_training_loss_mixes_the_distillation_term_with_lambda():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]], requires_grad=True)
    teacher_logits = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    batch = {
        "mel": torch.zeros(2, 1, 64, 8),
        "frames": torch.tensor([8, 8]),
        "target": torch.eye(2),
    }
    generator = torch.Generator().manual_seed(0)
    loss, parts = training_loss(
        lambda mel, frames: logits,
        batch,
        soft_binary=False,
        generator=generator,
        teacher=lambda mel, frames: teacher_logits,
        lambda_d=0.25,
    )
    loss_c = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss_d = torch.nn.functional.cross_entropy(logits, teacher_logits.softmax(-1))
    torch.testing.assert_close(loss, 0.25 * loss_d + 0.75 * loss_c)
    assert set(parts) == {"loss", "loss_c", "loss_d"}
    alone, parts = training_loss(lambda mel, frames: logits, batch, True, generator)
    target = batch["target"]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(alone, expected)
    assert "loss_d" not in parts
