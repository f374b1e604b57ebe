"""The HEAR modules as hear-eval-kit and both hearvalidator versions use them."""

import importlib

import numpy as np
import pytest
import torch

from atst_hear.models.checkpoints import CheckpointError

MODULES = ["atst_hear.hear.frame", "atst_hear.hear.clip", "atst_hear.hear.c2f"]
FIXTURE = {"frame": "frame_tiny.ckpt", "clip": "clip_tiny.ckpt", "c2f": "frame_tiny.ckpt"}


def load(name, official_fixtures, **options):
    module = importlib.import_module(name)
    path = official_fixtures / FIXTURE[name.rsplit(".", 1)[-1]]
    return module, module.load_model(str(path), **options)


def validator_2021_0_6(module, model):
    """The checks of hearvalidator 2021.0.6 (hear-contract.md §1.3) that raise errors."""
    assert model.sample_rate in [16000, 22050, 32000, 44100, 48000]
    assert isinstance(model.scene_embedding_size, int)
    assert isinstance(model.timestamp_embedding_size, int)
    for length in (1.07, 1.98, 4.0):
        audio = torch.rand(2, int(length * model.sample_rate)) * 2 - 1
        embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
        assert embeddings.dtype == torch.float32
        embeddings, timestamps = (
            embeddings.detach().cpu().numpy(),
            timestamps.detach().cpu().numpy(),
        )
        assert embeddings.ndim == 3 and timestamps.ndim == 2
        assert embeddings.shape[0] == 2 and embeddings.shape[:2] == timestamps.shape
        assert embeddings.shape[2] == model.timestamp_embedding_size
        diff = np.diff(timestamps)
        assert np.max(np.abs(diff - np.mean(diff))) <= 1
        assert np.max(timestamps) <= 1000 * length
        assert np.max(diff) <= 50 and np.min(timestamps) <= np.mean(diff)  # would only warn
    scene = module.get_scene_embeddings(torch.rand(4, int(2.74 * 16000)) * 2 - 1, model)
    assert scene.dtype == torch.float32 and scene.detach().cpu().numpy().dtype == np.float32
    assert scene.shape == (4, model.scene_embedding_size)


def validator_2021_0_2(module, model):
    """The stricter checks of hearvalidator 2021.0.2, what pip installs on Python >= 3.9."""
    assert model.sample_rate in [16000, 22050, 44100, 48000]
    audio = torch.rand(16, 2 * model.sample_rate) * 2 - 1
    embeddings, timestamps = module.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32
    assert embeddings.shape[0] == 16 and embeddings.shape[:2] == timestamps.shape
    assert embeddings.shape[2] == model.timestamp_embedding_size
    diff = torch.diff(timestamps)
    assert bool(((diff - diff.mean()).abs() < 1e-3).all())
    scene = module.get_scene_embeddings(torch.rand(8, int(3.74 * 16000)) * 2 - 1, model)
    assert scene.dtype == torch.float32 and scene.shape == (8, model.scene_embedding_size)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("compat", ["default", "official"])
def test_modules_pass_both_validator_versions(name, compat, official_fixtures):
    module, model = load(name, official_fixtures, compat=compat)
    assert not model.training
    if compat == "official":
        # token-start timestamps are the official quirk, but the grid is still regular
        _, stamps = module.get_timestamp_embeddings(torch.rand(1, 16000), model)
        assert float(stamps[0, 0]) == 0.0
    validator_2021_0_2(module, model)
    validator_2021_0_6(module, model)


def test_declared_sizes_match_outputs(official_fixtures):
    frame, frame_model = load("atst_hear.hear.frame", official_fixtures)
    clip, clip_model = load("atst_hear.hear.clip", official_fixtures, n_blocks=2)
    assert (frame_model.scene_embedding_size, frame_model.timestamp_embedding_size) == (384, 384)
    assert (clip_model.scene_embedding_size, clip_model.timestamp_embedding_size) == (512, 256)


def test_load_model_without_a_path(monkeypatch, official_fixtures):
    from atst_hear.hear import clip, frame

    monkeypatch.delenv("ATST_HEAR_CHECKPOINT", raising=False)
    monkeypatch.delenv("ATST_HEAR_CHECKPOINT_FRAME", raising=False)
    with pytest.raises(ValueError, match=r"needs a checkpoint.*drive\.google\.com"):
        frame.load_model()
    monkeypatch.setenv("ATST_HEAR_CHECKPOINT", str(official_fixtures / "clip_tiny_dino.ckpt"))
    assert clip.load_model().scene_embedding_size == 768
    monkeypatch.setenv("ATST_HEAR_CHECKPOINT_FRAME", str(official_fixtures / "frame_tiny.ckpt"))
    assert frame.load_model().encoder.config.flavour == "frame"


def test_random_init_is_deterministic_and_leaves_global_rng_alone():
    from atst_hear.hear import frame

    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = frame.load_model(random_init="tiny", seed=7)
    assert torch.equal(torch.rand(1), expected_next)
    b = frame.load_model(random_init="tiny", seed=7)
    c = frame.load_model(random_init="tiny", seed=8)
    assert a.encoder.config.width == 192 and a.encoder.config.depth == 4
    assert torch.equal(a.encoder.pos_embed, b.encoder.pos_embed)
    assert not torch.equal(a.encoder.pos_embed, c.encoder.pos_embed)
    with pytest.raises(ValueError, match="either a checkpoint path or random_init"):
        frame.load_model("x.ckpt", random_init="tiny")


def test_wrong_flavour_and_wrong_model_object(official_fixtures):
    from atst_hear.hear import clip, frame

    with pytest.raises(CheckpointError, match="ATST-Clip encoder.*use atst_hear.hear.clip"):
        frame.load_model(str(official_fixtures / "clip_tiny.ckpt"))
    with pytest.raises(CheckpointError, match="use atst_hear.hear.frame"):
        clip.load_model(str(official_fixtures / "frame_tiny.ckpt"))
    with pytest.raises(TypeError, match="must come from an atst_hear.hear module"):
        frame.get_scene_embeddings(torch.rand(1, 16000), torch.nn.Linear(1, 1))


def test_student_encoder_option(official_fixtures):
    _, teacher = load("atst_hear.hear.frame", official_fixtures)
    _, student = load("atst_hear.hear.frame", official_fixtures, encoder="student")
    assert not torch.equal(teacher.encoder.pos_embed, student.encoder.pos_embed)
