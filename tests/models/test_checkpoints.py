import os
import pickle

import pytest
import torch

from atst_hear.models import ATSTConfig, ATSTEncoder
from atst_hear.models.checkpoints import (
    CheckpointError,
    UnsafeCheckpointError,
    load_archive,
    load_encoder,
    read_encoder_weights,
    save_safetensors,
)

FIXTURE_LAYOUTS = {
    "frame_tiny.ckpt": ("frame", "lightning-pretrain"),
    "clip_tiny.ckpt": ("clip", "lightning-pretrain"),
    "clip_tiny_dino.ckpt": ("clip", "dino"),
}


@pytest.mark.parametrize("name", list(FIXTURE_LAYOUTS))
def test_fixtures_load_with_shapes_inferred(official_fixtures, name):
    weights = read_encoder_weights(official_fixtures / name)
    flavour, layout = FIXTURE_LAYOUTS[name]
    # the archives claim arch "small" / "ast_base"; the shapes say otherwise
    assert (weights.config.flavour, weights.layout) == (flavour, layout)
    assert (weights.config.width, weights.config.depth, weights.config.heads) == (128, 3, 2)
    assert weights.config.train_len == (10.0 if flavour == "frame" else 6.0)
    encoder = weights.build()
    assert not encoder.training
    # mask_embed, pos_embed, patch weight+bias, 11 tensors per block, final norm (+cls)
    assert len(encoder.state_dict()) == 4 + 11 * 3 + 2 + int(flavour == "clip")


def test_lightning_and_dino_clip_archives_hold_the_same_encoder(official_fixtures):
    lightning = load_encoder(official_fixtures / "clip_tiny.ckpt").state_dict()
    dino = load_encoder(official_fixtures / "clip_tiny_dino.ckpt").state_dict()
    assert lightning.keys() == dino.keys()
    for key in lightning:
        torch.testing.assert_close(lightning[key], dino[key], rtol=0, atol=0)


def test_student_encoder_is_available_from_pretraining_archives(official_fixtures):
    teacher = read_encoder_weights(official_fixtures / "frame_tiny.ckpt").state_dict
    student = read_encoder_weights(official_fixtures / "frame_tiny.ckpt", "student").state_dict
    archive = load_archive(official_fixtures / "frame_tiny.ckpt")
    expected = archive["state_dict"]["model.student.encoder.pos_embed"]
    torch.testing.assert_close(student["pos_embed"], expected)
    assert teacher.keys() == student.keys()


def _encoder_tensors(flavour="frame", **overrides):
    torch.manual_seed(0)
    return ATSTEncoder(ATSTConfig(flavour, width=64, depth=2, heads=1, **overrides)).state_dict()


def test_finetuned_and_c2f_layouts(tmp_path):
    encoder = _encoder_tensors("frame", n_prompt=2)
    finetuned = {f"encoder.encoder.{k}": v for k, v in encoder.items()}
    finetuned["head.linear.weight"] = torch.zeros(10, 64)
    torch.save({"state_dict": finetuned, "hyper_parameters": {}}, tmp_path / "ft.ckpt")
    weights = read_encoder_weights(tmp_path / "ft.ckpt")
    assert weights.layout == "finetuned" and weights.config.n_prompt == 2
    assert weights.config.heads == 1  # width 64 // 64

    # ATST-SED / C2F: the Frame encoder's final norm may be stored as "norm", with a cls_token
    c2f = {}
    for key, value in encoder.items():
        key = key.replace("norm_frame.", "norm.")
        c2f[f"encoder.encoder.frame_encoder.{key}"] = value
    c2f["encoder.encoder.frame_encoder.cls_token"] = torch.zeros(1, 1, 64)
    torch.save({"state_dict": c2f}, tmp_path / "c2f.ckpt")
    weights = read_encoder_weights(tmp_path / "c2f.ckpt")
    assert weights.layout == "c2f" and weights.config.flavour == "frame"
    built = weights.build().state_dict()
    torch.testing.assert_close(built["norm_frame.weight"], encoder["norm_frame.weight"])
    with pytest.raises(CheckpointError, match="single encoder"):
        read_encoder_weights(tmp_path / "c2f.ckpt", encoder="student")


def test_bare_state_dict_and_safetensors_round_trip(tmp_path, official_fixtures):
    weights = read_encoder_weights(official_fixtures / "clip_tiny_dino.ckpt")
    save_safetensors(weights, tmp_path / "clip.safetensors")
    again = read_encoder_weights(tmp_path / "clip.safetensors")
    assert again.config == weights.config and again.layout == "safetensors"
    for key, value in weights.state_dict.items():
        torch.testing.assert_close(again.state_dict[key], value, rtol=0, atol=0)
    torch.save(weights.state_dict, tmp_path / "bare.pt")
    assert read_encoder_weights(tmp_path / "bare.pt").config == weights.config


class _RunsCode:
    """Unpickling this calls os.system: exactly what safe loading must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_refused_unless_trusted(tmp_path, official_fixtures):
    archive = load_archive(official_fixtures / "frame_tiny.ckpt")
    marker = tmp_path / "pwned"
    archive["callbacks"] = {"evil": _RunsCode(marker)}
    torch.save(archive, tmp_path / "evil.ckpt")
    with pytest.raises(UnsafeCheckpointError, match=r"system.*trust_checkpoint=True"):
        load_encoder(tmp_path / "evil.ckpt")
    assert not marker.exists()

    archive["callbacks"] = {"harmless_but_unlisted": print}
    torch.save(archive, tmp_path / "callable.ckpt")
    with pytest.raises(UnsafeCheckpointError, match="builtins.print"):
        load_encoder(tmp_path / "callable.ckpt")
    assert load_encoder(tmp_path / "callable.ckpt", trust_checkpoint=True).config.width == 128


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_broken_files_give_clear_errors(tmp_path, official_fixtures):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "missing.ckpt")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_encoder(tmp_path / "empty.ckpt")
    (tmp_path / "garbage.ckpt").write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_encoder(tmp_path / "garbage.ckpt")
    data = (official_fixtures / "frame_tiny.ckpt").read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.ckpt: not a readable"):
        load_encoder(tmp_path / "truncated.ckpt")
    (tmp_path / "pickle.ckpt").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(CheckpointError, match="pickle.ckpt"):
        load_encoder(tmp_path / "pickle.ckpt")
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_encoder(tmp_path / "bad.safetensors")


def test_checkpoint_of_another_model_is_named(tmp_path):
    resnet_like = {
        "state_dict": {
            "model.conv1.weight": torch.zeros(8, 3, 3, 3),
            "model.fc.weight": torch.zeros(10, 8),
        }
    }
    torch.save(resnet_like, tmp_path / "resnet.ckpt")
    with pytest.raises(CheckpointError, match=r"no ATST encoder found.*model\.conv1\.weight"):
        load_encoder(tmp_path / "resnet.ckpt")
    broken = _encoder_tensors()
    del broken["blocks.1.mlp.fc2.weight"]
    torch.save(broken, tmp_path / "incomplete.pt")
    with pytest.raises(CheckpointError, match=r"missing \['blocks.1.mlp.fc2.weight'\]"):
        load_encoder(tmp_path / "incomplete.pt")
    ambiguous = _encoder_tensors()
    ambiguous["norm.weight"] = ambiguous.pop("norm_frame.weight")
    torch.save(ambiguous, tmp_path / "ambiguous.pt")
    with pytest.raises(CheckpointError, match="cannot tell ATST-Clip"):
        load_encoder(tmp_path / "ambiguous.pt")
