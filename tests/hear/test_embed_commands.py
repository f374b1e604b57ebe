import numpy as np
import pytest

from atst_hear.audio import write_wav
from atst_hear.cli import main
from atst_hear.hear import frame


def test_embed_command_resamples_and_resumes(tmp_path, official_fixtures, capsys):
    rng = np.random.default_rng(0)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_wav(tmp_path / "a" / "x.wav", rng.uniform(-0.5, 0.5, 44100), 44100)  # 1 s at 44.1 kHz
    write_wav(tmp_path / "b" / "x.wav", rng.uniform(-0.5, 0.5, 8000), 16000)
    checkpoint = str(official_fixtures / "frame_tiny.ckpt")
    files = [str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav")]
    out = tmp_path / "out"
    args = ["embed", "--model", "frame", "--checkpoint", checkpoint, "--out", str(out)]
    assert main([*args, "--kind", "timestamp", *files]) == 0
    first = np.load(out / "a__x.npy")
    assert first.shape == (25, 384) and first.dtype == np.float32
    assert np.load(out / "a__x.timestamps.npy")[0] == 15.0
    assert np.load(out / "b__x.npy").shape == (12, 384)
    assert main([*args, "--kind", "timestamp", *files]) == 0
    assert "0 embeddings" in capsys.readouterr().out.splitlines()[-1]

    assert main([*args, "--kind", "scene", "--overwrite", "--n-blocks", "1", files[0]]) == 0
    assert np.load(out / "x.npy").shape == (128,)


def test_embed_command_reports_bad_audio(tmp_path, official_fixtures, capsys):
    (tmp_path / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    code = main(
        [
            "embed",
            "--model",
            "clip",
            "--checkpoint",
            str(official_fixtures / "clip_tiny.ckpt"),
            "--out",
            str(tmp_path / "out"),
            str(tmp_path / "broken.wav"),
        ]
    )
    assert code == 2
    assert "broken.wav: cannot decode audio" in capsys.readouterr().err


def test_convert_then_load_safetensors(tmp_path, official_fixtures, capsys):
    exported = tmp_path / "frame.safetensors"
    assert main(["convert", str(official_fixtures / "frame_tiny.ckpt"), str(exported)]) == 0
    assert "ATST-Frame teacher encoder" in capsys.readouterr().out
    original = frame.load_model(str(official_fixtures / "frame_tiny.ckpt"))
    converted = frame.load_model(str(exported))
    audio = np.random.default_rng(1).uniform(-1, 1, (2, 24000)).astype(np.float32)
    import torch

    audio = torch.from_numpy(audio)
    assert torch.equal(
        frame.get_scene_embeddings(audio, original), frame.get_scene_embeddings(audio, converted)
    )
    with pytest.raises(SystemExit):
        main(["convert"])
    assert (
        main(["convert", str(official_fixtures / "frame_tiny.ckpt"), str(tmp_path / "x.pt")]) == 2
    )
