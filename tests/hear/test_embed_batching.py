"""``atst-hear embed``: length batching, worker decoding, --random-init, --device auto."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atst_hear.audio import write_wav
from atst_hear.cli import main
from atst_hear.hear.commands import RANDOM_INIT_SIZES, length_batches, resolve_device
from atst_hear.models.encoder import ARCHS


def test_length_batches_group_equal_lengths_only():
    assert length_batches([10, 20, 10, 10, 20, 5], batch_size=2) == [[1, 4], [0, 2], [3], [5]]
    assert length_batches([], batch_size=4) == []


def test_random_init_sizes_are_the_encoder_presets():
    assert sorted(RANDOM_INIT_SIZES) == sorted(ARCHS)


def _clips(folder, rng):
    # equal lengths after resampling (1 s at 16 / 44.1 kHz), and odd ones out
    specs = [(16000, 16000), (44100, 44100), (16000, 16000), (12000, 16000), (16000, 16000)]
    specs += [(8000, 8000), (16000, 16000), (30, 16000)]
    files = []
    for number, (frames, rate) in enumerate(specs):
        path = folder / f"clip{number}.wav"
        write_wav(path, rng.uniform(-0.5, 0.5, frames), rate)
        files.append(str(path))
    return files


@pytest.mark.parametrize("kind", ["scene", "timestamp"])
def test_batched_embeddings_equal_one_at_a_time(tmp_path, kind):
    files = _clips(tmp_path, np.random.default_rng(0))
    common = ["embed", "--model", "frame", "--random-init", "tiny", "--kind", kind]
    assert (
        main(
            [*common, "--batch-size", "1", "--workers", "0", "--out", str(tmp_path / "one"), *files]
        )
        == 0
    )
    assert (
        main(
            [
                *common,
                "--batch-size",
                "4",
                "--workers",
                "1",
                "--out",
                str(tmp_path / "many"),
                *files,
            ]
        )
        == 0
    )
    for number in range(len(files)):
        single = np.load(tmp_path / "one" / f"clip{number}.npy")
        batched = np.load(tmp_path / "many" / f"clip{number}.npy")
        np.testing.assert_allclose(batched, single, rtol=0, atol=1e-5)
        if kind == "timestamp":
            np.testing.assert_array_equal(
                np.load(tmp_path / "many" / f"clip{number}.timestamps.npy"),
                np.load(tmp_path / "one" / f"clip{number}.timestamps.npy"),
            )


def test_random_init_is_seeded_and_exclusive_with_checkpoint(tmp_path, official_fixtures):
    (path,) = _clips(tmp_path, np.random.default_rng(1))[:1]
    base = ["embed", "--model", "clip", "--random-init", "tiny", "--workers", "0", path]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--out", str(tmp_path / "b")]) == 0
    assert main([*base, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (np.load(tmp_path / d / "clip0.npy") for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(SystemExit):
        main(
            [
                *base,
                "--out",
                str(tmp_path / "d"),
                "--checkpoint",
                str(official_fixtures / "clip_tiny.ckpt"),
            ]
        )
    with pytest.raises(SystemExit):
        main([*base, "--out", str(tmp_path / "d"), "--batch-size", "0"])


def test_device_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"
