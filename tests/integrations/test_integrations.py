"""The X-ARES encoder, the EVAR plug-in and the plain module, each against its contract."""

from __future__ import annotations

import importlib
import sys

import pytest
import torch
from torch import nn

from atst_hear.hear import clip, frame
from atst_hear.integrations import xares
from atst_hear.integrations.evar import AR_ATST_HEAR
from atst_hear.integrations.modules import FrameEmbeddings
from atst_hear.integrations.xares import ATSTXaresEncoder


def audio(batch=2, samples=50000, seed=0):
    return torch.randn(batch, samples, generator=torch.Generator().manual_seed(seed))


def test_plain_module_returns_the_hear_timestamp_embeddings(official_fixtures):
    checkpoint = official_fixtures / "frame_tiny.ckpt"
    module = FrameEmbeddings.from_pretrained(checkpoint, n_blocks=2)
    assert isinstance(module, nn.Module)
    x = audio().clamp(-1, 1)
    expected, times = frame.get_timestamp_embeddings(x, frame.load_model(checkpoint, n_blocks=2))
    out = module(x)
    torch.testing.assert_close(out, expected)
    assert out.shape[-1] == module.embedding_dim and module.hop_ms == 40.0
    torch.testing.assert_close(module.timestamps(x.shape[1]), times[0])
    with pytest.raises(TypeError, match="load_model"):
        FrameEmbeddings(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="model must be one of"):
        FrameEmbeddings.from_pretrained(checkpoint, model="wav2vec")


def check_xares_contract(encoder) -> None:
    """X-ARES's encoder contract (src/xares/audio_encoder_checker.py), restated."""
    assert type(encoder).__name__.endswith("Encoder")
    assert isinstance(encoder, nn.Module)
    for name in ("output_dim", "sampling_rate", "hop_size_in_ms"):
        assert hasattr(encoder, name), name
    x = audio()  # the checker feeds randn: peaks near 4.5, no level check may refuse it
    out = encoder(x)
    assert isinstance(out, torch.Tensor) and out.ndim == 3
    assert out.shape[0] == 2 and out.shape[2] == encoder.output_dim
    duration_ms = 1000 * x.shape[1] / encoder.sampling_rate
    # X-ARES's own example: 50000 samples -> 78 frames at ~40 ms
    assert abs(out.shape[1] - duration_ms / encoder.hop_size_in_ms) <= 1


def test_xares_encoder_meets_the_contract(official_fixtures, monkeypatch):
    monkeypatch.setenv(xares.ENV_CHECKPOINT, str(official_fixtures / "frame_tiny.ckpt"))
    monkeypatch.setenv(xares.ENV_OPTIONS, '{"n_blocks": 1}')
    encoder = ATSTXaresEncoder()  # X-ARES constructs it without arguments
    check_xares_contract(encoder)
    assert encoder.sampling_rate == 16000 and encoder.hop_size_in_ms == 40.0
    assert encoder.output_dim == 128  # width 128, one block
    assert encoder(audio(1)[0]).shape[0] == 1  # 1-D audio, as X-ARES's examples accept
    check_xares_contract(ATSTXaresEncoder("clip", random_init="tiny"))
    monkeypatch.setenv(xares.ENV_OPTIONS, "[1]")
    with pytest.raises(ValueError, match="JSON object"):
        ATSTXaresEncoder()


def test_xares_finds_exactly_one_encoder_class():
    # X-ARES's attr_from_py_path: the one attribute of the module whose name ends in Encoder
    module = importlib.import_module("atst_hear.integrations.xares")
    assert [name for name in dir(module) if name.endswith("Encoder")] == ["ATSTXaresEncoder"]


class AttrDict(dict):
    """EVAR passes an EasyDict: a dict whose keys are attributes too."""

    __getattr__ = dict.__getitem__


def test_evar_plugin_loads_the_way_evar_does(official_fixtures, tmp_path, monkeypatch):
    # EVAR: ar = eval('evar.' + cfg.audio_repr)(cfg).to(device); ar.precompute(...); ar(X)
    package = tmp_path / "evar"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ar_atst_hear.py").write_text(
        "from atst_hear.integrations.evar import AR_ATST_HEAR  # noqa: F401\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "evar", raising=False)
    evar = importlib.import_module("evar")
    importlib.import_module("evar.ar_atst_hear")
    cfg = AttrDict(
        audio_repr="ar_atst_hear.AR_ATST_HEAR",
        weight_file=str(official_fixtures / "clip_tiny.ckpt"),
        model="clip",
        n_blocks=1,
        feature_d=256,
        sample_rate=16000,
        batch_size=128,  # EVAR's own keys are ignored
    )
    ar = eval("evar." + cfg.audio_repr, {"evar": evar})(cfg).to("cpu")
    ar.precompute("cpu", None)
    x = audio()
    scene = nn.DataParallel(ar)(x)  # EVAR wraps it in DataParallel
    assert scene.shape == (2, cfg.feature_d)
    reference = clip.load_model(cfg.weight_file, n_blocks=1, max_amplitude=None)
    torch.testing.assert_close(scene, clip.get_scene_embeddings(x, reference))
    frames = ar.encode_frames(x)
    assert frames.shape == (2, 128, 78)  # [B, D, T] as evar/ar_base.py defines it
    with pytest.raises(ValueError, match="feature_d to that"):
        AR_ATST_HEAR({**cfg, "feature_d": 1536})
    with pytest.raises(ValueError, match="16 kHz"):
        AR_ATST_HEAR({**cfg, "sample_rate": 44100})
