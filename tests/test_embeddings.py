"""Parity with the official ATST code and the HEAR contract of the default mode."""

import numpy as np
import pytest
import torch

from atst_hear.embeddings import ATSTEmbedder, finetune_embedding
from atst_hear.frontend import LogMelFrontend
from atst_hear.models import ATSTConfig, ATSTEncoder
from atst_hear.models.checkpoints import load_encoder

PARITY_ATOL = 1e-4
FRAME_LENGTHS = ["0.5", "1", "4", "10", "10.01", "23.3"]
CLIP_LENGTHS = ["0.5", "1", "4", "6", "10", "13.7"]


@pytest.fixture(scope="module")
def frame_encoder(official_fixtures):
    return load_encoder(official_fixtures / "frame_tiny.ckpt")


@pytest.fixture(scope="module")
def clip_encoder(official_fixtures):
    return load_encoder(official_fixtures / "clip_tiny.ckpt")


@pytest.fixture(scope="module")
def frame_reference(official_fixtures):
    return dict(np.load(official_fixtures / "frame_tiny_reference.npz"))


@pytest.fixture(scope="module")
def clip_reference(official_fixtures):
    return dict(np.load(official_fixtures / "clip_tiny_reference.npz"))


def assert_parity(ours: torch.Tensor, reference: np.ndarray) -> None:
    assert tuple(ours.shape) == reference.shape
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference, rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("length", FRAME_LENGTHS)
def test_frame_official_parity(frame_encoder, frame_reference, length):
    model = ATSTEmbedder(frame_encoder, compat="official")
    audio = torch.from_numpy(frame_reference[f"audio_{length}s"])
    assert_parity(model.scene_embeddings(audio), frame_reference[f"scene_{length}s"])
    embeddings, timestamps = model.timestamp_embeddings(audio)
    assert_parity(embeddings, frame_reference[f"timestamp_{length}s"])
    assert_parity(timestamps, frame_reference[f"timestamps_{length}s"])


@pytest.mark.parametrize("length", CLIP_LENGTHS)
def test_clip_official_parity(clip_encoder, clip_reference, length):
    model = ATSTEmbedder(clip_encoder, compat="official")
    audio = torch.from_numpy(clip_reference[f"audio_{length}s"])
    assert_parity(model.scene_embeddings(audio), clip_reference[f"scene_{length}s"])
    if f"layers_{length}s" in clip_reference:
        with torch.inference_mode():
            mel = LogMelFrontend()(audio)
            blocks = clip_encoder(mel, torch.full((2,), mel.shape[-1]), n_blocks=3)
            layers = torch.stack([clip_encoder.final_norm(x) for x in blocks])
        assert_parity(layers, clip_reference[f"layers_{length}s"])


def test_dino_and_lightning_clip_give_identical_embeddings(official_fixtures, clip_reference):
    audio = torch.from_numpy(clip_reference["audio_13.7s"])
    for compat in ("official", "default"):
        a = ATSTEmbedder(load_encoder(official_fixtures / "clip_tiny.ckpt"), compat)
        b = ATSTEmbedder(load_encoder(official_fixtures / "clip_tiny_dino.ckpt"), compat)
        assert torch.equal(a.scene_embeddings(audio), b.scene_embeddings(audio))


# --- default mode: the HEAR contract -----------------------------------------------------------
HEAR_LENGTHS = [0.02, 0.5, 1.07, 1.98, 2.74, 4.0, 10.0, 10.01, 25.0, 65.0]


@pytest.fixture(scope="module", params=["frame", "clip"])
def default_model(request, frame_encoder, clip_encoder):
    return ATSTEmbedder(frame_encoder if request.param == "frame" else clip_encoder)


@pytest.mark.parametrize("seconds", HEAR_LENGTHS)
def test_default_mode_hear_contract(default_model, seconds):
    n_samples = int(seconds * 16000)
    batch_size = 1 + HEAR_LENGTHS.index(seconds) % 4
    generator = torch.Generator().manual_seed(HEAR_LENGTHS.index(seconds))
    audio = torch.rand(batch_size, n_samples, generator=generator) * 2 - 1

    scene = default_model.scene_embeddings(audio)
    assert scene.dtype == torch.float32
    assert scene.shape == (batch_size, default_model.scene_embedding_size)
    embeddings, timestamps = default_model.timestamp_embeddings(audio)
    assert embeddings.dtype == torch.float32 and timestamps.dtype == torch.float32
    assert embeddings.shape[:2] == timestamps.shape and embeddings.shape[0] == batch_size
    assert embeddings.shape[2] == default_model.timestamp_embedding_size
    assert timestamps.shape[1] >= 1
    duration_ms = 1000 * n_samples / 16000
    assert float(timestamps.min()) >= 0 and float(timestamps.max()) <= duration_ms
    if timestamps.shape[1] > 1:
        # one regular, centred 40 ms grid: validator 2021.0.2 demands |diff - mean| < 1e-3 ms
        assert float((torch.diff(timestamps) - 40).abs().max()) < 1e-3
        assert float(timestamps[0, 0]) == 15.0
        assert float(timestamps.max()) >= duration_ms - 50  # the end of the audio is covered
    assert bool(torch.isfinite(embeddings).all()) and bool(torch.isfinite(scene).all())

    # a clip embedded alone equals itself embedded in a batch
    alone_scene = default_model.scene_embeddings(audio[-1:])
    alone_embeddings, _ = default_model.timestamp_embeddings(audio[-1:])
    torch.testing.assert_close(alone_scene[0], scene[-1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone_embeddings[0], embeddings[-1], atol=1e-5, rtol=1e-5)


def relative_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def test_scene_is_a_mean_over_the_whole_clip(default_model):
    torch.manual_seed(3)
    ten = torch.rand(1, 160000) * 2 - 1
    twenty = torch.cat([ten, ten], dim=1)
    reference = default_model.scene_embeddings(ten)[0]
    assert relative_distance(default_model.scene_embeddings(twenty)[0], reference) < 0.01
    # the official Frame code halves this one (zero vector of a 1-frame tail chunk)
    longer = torch.cat([ten, ten[:, :160]], dim=1)
    assert relative_distance(default_model.scene_embeddings(longer)[0], reference) < 0.01


def test_official_mode_keeps_the_official_quirks(frame_encoder):
    torch.manual_seed(4)
    ten = torch.rand(1, 160000) * 2 - 1
    official = ATSTEmbedder(frame_encoder, compat="official")
    longer = torch.cat([ten, ten[:, :160]], dim=1)
    halved = official.scene_embeddings(ten)[0] / 2
    assert relative_distance(official.scene_embeddings(longer)[0], halved) < 0.01
    _, timestamps = official.timestamp_embeddings(torch.rand(1, 480000))
    assert timestamps.shape[1] == 749  # 1001-frame chunks lose a token per chunk
    assert float(timestamps[0, 0]) == 0.0


def test_batching_limit_does_not_change_results(frame_encoder, clip_encoder):
    torch.manual_seed(5)
    audio = torch.rand(3, 16000 * 23) * 2 - 1
    for encoder in (frame_encoder, clip_encoder):
        wide = ATSTEmbedder(encoder, max_batch_tokens=100_000)
        narrow = ATSTEmbedder(encoder, max_batch_tokens=encoder.config.max_tokens + 1)
        torch.testing.assert_close(
            wide.scene_embeddings(audio), narrow.scene_embeddings(audio), atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(
            wide.timestamp_embeddings(audio)[0], narrow.timestamp_embeddings(audio)[0]
        )


def test_n_blocks_selects_the_last_blocks(frame_encoder, clip_encoder):
    audio = torch.rand(2, 32000)
    full_frame = ATSTEmbedder(frame_encoder)
    last_frame = ATSTEmbedder(frame_encoder, n_blocks=1)
    assert last_frame.scene_embedding_size == 128 == last_frame.timestamp_embedding_size
    torch.testing.assert_close(
        last_frame.timestamp_embeddings(audio)[0],
        full_frame.timestamp_embeddings(audio)[0][..., -128:],
    )
    full_clip, last_clip = ATSTEmbedder(clip_encoder), ATSTEmbedder(clip_encoder, n_blocks=1)
    scene, last = full_clip.scene_embeddings(audio), last_clip.scene_embeddings(audio)
    assert last.shape == (2, 256)
    torch.testing.assert_close(last[:, :128], scene[:, 256:384])  # last cls
    torch.testing.assert_close(last[:, 128:], scene[:, 640:])  # last token mean
    with pytest.raises(ValueError, match="n_blocks must be in 1..3"):
        ATSTEmbedder(frame_encoder, n_blocks=4)


def test_prompt_tokens_add_a_prompt_mean_per_block():
    torch.manual_seed(6)
    encoder = ATSTEncoder(ATSTConfig("frame", width=64, depth=2, heads=1, n_prompt=2)).eval()
    model = ATSTEmbedder(encoder)
    scene = model.scene_embeddings(torch.rand(2, 40000))
    assert model.scene_embedding_size == 2 * 2 * 64 == scene.shape[1]
    assert model.timestamp_embeddings(torch.rand(1, 16000))[0].shape == (1, 25, 128)


def test_bad_audio_is_rejected_with_a_reason(frame_encoder):
    model = ATSTEmbedder(frame_encoder)
    with pytest.raises(ValueError, match="2-D"):
        model.scene_embeddings(torch.zeros(16000))
    with pytest.raises(ValueError, match="floating point"):
        model.scene_embeddings(torch.zeros(1, 16000, dtype=torch.int16))
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.timestamp_embeddings(torch.full((1, 16000), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        model.scene_embeddings(torch.zeros(1, 0))
    official = ATSTEmbedder(frame_encoder, compat="official")
    with pytest.raises(ValueError, match="compat='official' cannot embed 300 samples"):
        official.scene_embeddings(torch.zeros(1, 300))
    with pytest.raises(ValueError, match="compat must be one of"):
        ATSTEmbedder(frame_encoder, compat="fast")


def test_float64_input_gives_float32_output(frame_encoder):
    model = ATSTEmbedder(frame_encoder)
    assert model.scene_embeddings(torch.rand(1, 16000, dtype=torch.float64)).dtype == torch.float32


def test_twenty_minutes_run_in_bounded_passes(frame_encoder, monkeypatch):
    """HEAR allows 20 min of audio: passes stay under max_batch_tokens, scene memory is flat."""
    model = ATSTEmbedder(frame_encoder, max_batch_tokens=2000)
    pass_tokens = []
    original = frame_encoder.forward

    def spy(mel, *args, **kwargs):
        pass_tokens.append(mel.shape[0] * (mel.shape[-1] // 4))
        return original(mel, *args, **kwargs)

    monkeypatch.setattr(frame_encoder, "forward", spy)
    scene = model.scene_embeddings(torch.rand(1, 20 * 60 * 16000) * 2 - 1)
    assert scene.shape == (1, 384) and bool(torch.isfinite(scene).all())
    assert sum(pass_tokens) == 30000 and max(pass_tokens) <= 2000


# --- the differentiable fine-tuning embedding (finetune protocol, C2F distillation) -----------
def small_encoder(flavour: str) -> ATSTEncoder:
    torch.manual_seed(0)
    return ATSTEncoder(ATSTConfig(flavour, width=64, depth=2, heads=1)).eval()


def test_frame_embedding_leaves_out_a_short_second_chunk():
    model = small_encoder("frame")
    mel = torch.randn(2, 1, 64, 1201)
    lengths = torch.tensor([1201, 1201])
    with torch.no_grad():
        both = finetune_embedding(model, mel, lengths)
        first = finetune_embedding(model, mel[..., :1001], torch.tensor([1001, 1001]))
    assert torch.allclose(both, first, atol=1e-6)


def test_clip_official_pooling_scales_non_final_chunk_means():
    model = small_encoder("clip")
    mel = torch.randn(1, 1, 64, 1201)
    lengths = torch.tensor([1201])
    with torch.no_grad():
        fixed = finetune_embedding(model, mel, lengths, "default")
        official = finetune_embedding(model, mel, lengths, "official")
        chunk_means = [
            finetune_embedding(model, mel[..., s : s + 601], torch.tensor([min(601, 1201 - s)]))[
                :, 64:
            ]
            for s in (0, 601)
        ]
    assert torch.allclose(fixed[:, :64], official[:, :64], atol=1e-6)  # cls parts agree
    # chunk 0 holds 150 tokens but official divides by all 300 from its start on
    expected = (0.5 * chunk_means[0] + chunk_means[1]) / 2
    assert torch.allclose(official[:, 64:], expected, atol=1e-5)
    assert torch.allclose(fixed[:, 64:], (chunk_means[0] + chunk_means[1]) / 2, atol=1e-5)


def test_padding_does_not_change_an_example_embedding():
    model = small_encoder("frame")
    mel = torch.randn(1, 1, 64, 300)
    padded = torch.cat([mel, torch.zeros(1, 1, 64, 100)], dim=-1)
    with torch.no_grad():
        alone = finetune_embedding(model, mel, torch.tensor([300]))
        in_batch = finetune_embedding(model, padded, torch.tensor([300]))
    assert torch.allclose(alone, in_batch, atol=1e-5)
