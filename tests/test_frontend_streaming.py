"""The chunked, streamed front-end: whole-clip values, bounded pieces (issue 14, flat memory)."""

from __future__ import annotations

import pytest
import torch
import torchaudio

from atst_hear import frontend
from atst_hear.embeddings import ATSTEmbedder
from atst_hear.frontend import LogMelFrontend, MelStream, num_frames
from atst_hear.models import ATSTConfig, ATSTEncoder


def whole_clip_reference(wave: torch.Tensor) -> torch.Tensor:
    """The official recipe in one piece: MelSpectrogram + AmplitudeToDB(top_db=80) + scaling."""
    mel = torchaudio.transforms.MelSpectrogram(
        16000, n_fft=1024, win_length=1024, hop_length=160, f_min=60.0, f_max=7800.0, n_mels=64
    )(wave.float()).unsqueeze(1)
    db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80.0)(mel)
    return frontend.normalise_db(db)


@pytest.mark.parametrize("n_samples", [513, 640, 16159, 48123])
@pytest.mark.parametrize("chunk_frames", [2, 7, 100, 3000])
def test_chunked_front_end_equals_the_whole_clip_transform(n_samples, chunk_frames):
    torch.manual_seed(n_samples)
    # a loud, a quiet and a near-silent clip: the per-example floor differs
    wave = torch.randn(3, n_samples) * torch.tensor([[1.0], [1e-2], [1e-5]])
    expected = whole_clip_reference(wave)
    chunked = LogMelFrontend(chunk_frames=chunk_frames)
    assert chunked(wave).shape == expected.shape == (3, 1, 64, num_frames(n_samples))
    torch.testing.assert_close(chunked(wave), expected, rtol=0, atol=1e-6)
    stream = chunked.stream(wave)
    start, stop = num_frames(n_samples) // 3, num_frames(n_samples)
    torch.testing.assert_close(
        stream.frames(start, stop, [2, 0]), expected[[2, 0], ..., start:stop], rtol=0, atol=1e-6
    )


def test_long_audio_is_embedded_from_bounded_front_end_pieces(monkeypatch):
    """Before: the log-mel (and STFT) of the whole clip was built at once."""
    torch.manual_seed(0)
    model = ATSTEmbedder(ATSTEncoder(ATSTConfig("frame", width=64, depth=2, heads=1)).eval())
    spans = []
    original = frontend.LogMelFrontend.decibels

    def spy(self, wave, start, stop, rows=None):
        spans.append(stop - start)
        return original(self, wave, start, stop, rows)

    monkeypatch.setattr(frontend.LogMelFrontend, "decibels", spy)
    monkeypatch.setattr(
        frontend.LogMelFrontend, "forward", lambda *a: pytest.fail("whole-clip front-end used")
    )
    audio = torch.rand(1, 5 * 60 * 16000) * 0.2 - 0.1
    scene = model.scene_embeddings(audio)
    assert scene.shape == (1, 128) and bool(torch.isfinite(scene).all())
    assert max(spans) <= frontend.CHUNK_FRAMES
    # one pass for the peaks, one for the encoder's chunks
    assert sum(spans) <= 2 * num_frames(audio.shape[1]) + frontend.CHUNK_FRAMES


def test_stream_values_match_forward_and_stream_holds_no_mel():
    wave = torch.randn(2, 40000)
    stream = LogMelFrontend().stream(wave)
    assert isinstance(stream, MelStream) and stream.n_frames == num_frames(40000)
    assert not [name for name, value in vars(stream).items() if name == "mel"]
    torch.testing.assert_close(
        stream.frames(0, stream.n_frames, [0, 1]), LogMelFrontend()(wave), rtol=0, atol=0
    )


def test_passes_hold_a_bounded_number_of_block_outputs(monkeypatch):
    """With every block of a wide model, max_batch_tokens alone let a pass hold GBs."""
    from atst_hear import embeddings

    torch.manual_seed(0)
    encoder = ATSTEncoder(ATSTConfig("frame", width=64, depth=2, heads=1)).eval()
    audio = torch.rand(2, 45 * 16000) * 0.2 - 0.1
    unbounded = ATSTEmbedder(encoder).scene_embeddings(audio)
    monkeypatch.setattr(embeddings, "MAX_PASS_VALUES", 2 * 64 * 600)
    held = []
    original = encoder.forward

    def spy(mel, *args, n_blocks=1, **kwargs):
        outputs = original(mel, *args, n_blocks=n_blocks, **kwargs)
        held.append(sum(x.numel() for x in outputs))
        return outputs

    monkeypatch.setattr(encoder, "forward", spy)
    bounded = ATSTEmbedder(encoder).scene_embeddings(audio)
    assert len(held) > 1 and max(held) <= 2 * 64 * 600
    torch.testing.assert_close(bounded, unbounded, rtol=1e-5, atol=1e-5)
