"""bfloat16 autocast: HEAR embeddings stay float32 and near the float32 ones; embed --precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atst_hear.audio import write_wav
from atst_hear.cli import main
from atst_hear.frontend import LogMelFrontend
from atst_hear.hear import clip, frame
from atst_hear.hear.commands import precision_context

# Largest |bf16 - fp32| over every value of the scene and timestamp embeddings of a tiny random
# model (outputs of a layer norm: standard deviation ~1, max |value| ~3.5), 10.5 s clips at three
# loudness levels: measured 0.017 (scene) and 0.031 (timestamps) with a float32 log-mel, 0.07
# and 0.12 when the mel filterbank product also ran in bfloat16. The bound sits between.
BF16_MAX_ABS_DIFF = 0.06


def _audio(seconds: float = 10.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(3, int(seconds * 16000), generator=generator) * 2 - 1
    return noise * torch.tensor([[1.0], [0.1], [0.01]])


def test_frontend_is_float32_under_autocast():
    wave = _audio(2.0)
    frontend = LogMelFrontend()
    expected = frontend(wave)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mel = frontend(wave)
    assert mel.dtype == torch.float32
    assert torch.equal(mel, expected)


@pytest.mark.parametrize("module", [frame, clip], ids=["frame", "clip"])
def test_bf16_autocast_embeddings_are_float32_and_close(module):
    model = module.load_model(None, random_init="tiny", seed=0)
    audio = _audio()
    scene = module.get_scene_embeddings(audio, model)
    stamps, times = module.get_timestamp_embeddings(audio, model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scene_bf16 = module.get_scene_embeddings(audio, model)
        stamps_bf16, times_bf16 = module.get_timestamp_embeddings(audio, model)
    assert scene_bf16.dtype == stamps_bf16.dtype == times_bf16.dtype == torch.float32
    assert torch.equal(times_bf16, times)
    assert 0 < (scene_bf16 - scene).abs().max() < BF16_MAX_ABS_DIFF
    assert 0 < (stamps_bf16 - stamps).abs().max() < BF16_MAX_ABS_DIFF


def test_embed_precision_flag(tmp_path):
    path = tmp_path / "a.wav"
    write_wav(path, np.random.default_rng(0).uniform(-0.5, 0.5, 24000), 16000)
    outputs = {}
    for precision in ("32", "bf16"):
        out = tmp_path / precision
        common = ["embed", "--model", "frame", "--random-init", "tiny", "--workers", "0"]
        argv = [*common, "--device", "cpu", "--precision", precision, "--out", str(out)]
        assert main([*argv, str(path)]) == 0
        outputs[precision] = np.load(out / "a.npy")
    assert outputs["bf16"].dtype == np.float32
    difference = np.abs(outputs["bf16"] - outputs["32"]).max()
    assert 0 < difference < BF16_MAX_ABS_DIFF


def test_precision_context_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        precision_context("16", "cpu")
