import math

import pytest
import torch
import torchaudio

from atst_hear import frontend
from atst_hear.frontend import LogMelFrontend, num_frames


def reference_logmel(wave: torch.Tensor) -> torch.Tensor:
    """The official chain, example by example: MelSpectrogram -> AmplitudeToDB -> MinMax."""
    mel = torchaudio.transforms.MelSpectrogram(
        16000, f_min=60, f_max=7800, hop_length=160, win_length=1024, n_fft=1024, n_mels=64
    )(wave[None, None])
    db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=80)(mel)
    return (db + 79.6482) / (50.6842 + 79.6482) * 2 - 1


@pytest.mark.parametrize("n_samples", [513, 16000, 160000, 200000])
def test_frame_count_and_reference_values(n_samples):
    torch.manual_seed(0)
    wave = torch.rand(2, n_samples) - 0.5
    mel = LogMelFrontend()(wave)
    assert mel.shape == (2, 1, 64, num_frames(n_samples))
    assert num_frames(n_samples) == 1 + n_samples // 160
    for row in range(2):
        torch.testing.assert_close(mel[row : row + 1], reference_logmel(wave[row]))


def test_top_db_floor_is_per_example():
    torch.manual_seed(1)
    loud = torch.rand(16000) - 0.5
    loud[8000:] = 0  # silence more than 80 dB below the noise: the floor shows
    quiet = torch.zeros(16000)
    quiet[8000:8100] = 1e-4  # tiny click: its own floor is far below the loud clip's
    batch = LogMelFrontend()(torch.stack([loud, quiet]))
    alone = LogMelFrontend()(quiet[None])
    torch.testing.assert_close(batch[1:], alone)
    # the loud example is floored at its own max - 80 dB
    span_db = (batch[0].max() - batch[0].min()) * (frontend.DB_MAX - frontend.DB_MIN) / 2
    assert math.isclose(float(span_db), 80.0, rel_tol=1e-4)


def test_rejects_bad_shapes_and_too_short_audio():
    with pytest.raises(ValueError, match=r"\[batch, samples\]"):
        LogMelFrontend()(torch.zeros(16000))
    with pytest.raises(ValueError, match="too short"):
        LogMelFrontend()(torch.zeros(1, 400))
