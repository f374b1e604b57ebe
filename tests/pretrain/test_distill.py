"""ATST-C2F distillation: embedding pooling, optimiser groups, and a whole run on a tiny task."""

from __future__ import annotations

import json

import pytest
import torch

import atst_hear.hear.c2f as hear_c2f
from atst_hear.finetuning import TaskClassifier, load_classifier
from atst_hear.models.checkpoints import CheckpointError, load_archive
from atst_hear.models.encoder import ATSTConfig, ATSTEncoder, layer_decay_groups
from atst_hear.pretrain.distill import (
    DistillRecipe,
    choose_splits,
    run_distillation,
)
from atst_hear.pretrain.training import Hardware
from atst_hear.tasks.folder import TaskFolder


def encoder(flavour: str) -> ATSTEncoder:
    torch.manual_seed(0)
    return ATSTEncoder(ATSTConfig(flavour, width=64, depth=2, heads=1)).eval()


def test_layerwise_learning_rate_scales():
    classifier = TaskClassifier(encoder("frame"), n_classes=3)
    groups = layer_decay_groups(classifier, classifier.encoder, 0.5)
    by_scale = {g["lr_scale"]: g["params"] for g in groups}
    params = dict(classifier.named_parameters())
    assert any(p is params["encoder.pos_embed"] for p in by_scale[0.25])  # 0.5 ** depth
    assert any(p is params["encoder.blocks.0.attn.qkv.weight"] for p in by_scale[0.25])
    assert any(p is params["encoder.blocks.1.attn.qkv.weight"] for p in by_scale[0.5])
    assert any(p is params["encoder.norm_frame.weight"] for p in by_scale[0.5])
    assert any(p is params["head.linear.weight"] for p in by_scale[1.0])


def test_splits_default_to_train_valid_test_and_k_fold_rotation(tmp_path, make_tone_task):
    task = TaskFolder.open(make_tone_task(tmp_path, {"train": 3, "valid": 3, "test": 3}))
    splits = choose_splits(task, None, None, None)
    assert (splits.train, splits.valid, splits.test) == (["train"], "valid", "test")
    with pytest.raises(ValueError, match="unknown splits"):
        choose_splits(task, ["fold00"], None, None)


def test_teacher_without_head_needs_finetuning(official_fixtures):
    with pytest.raises(CheckpointError, match="--finetune-teacher"):
        load_classifier(official_fixtures / "clip_tiny.ckpt", "clip", 3, drop_path=0.1)
    with pytest.raises(CheckpointError, match="expected ATST-Clip"):
        load_classifier(official_fixtures / "frame_tiny.ckpt", "clip", 3, drop_path=0.1)


def test_distillation_end_to_end(tmp_path, official_fixtures, make_tone_task):
    """Fine-tune the official-layout Clip fixture as teacher, distil into the Frame fixture."""
    task_dir = make_tone_task(tmp_path / "task", {"train": 12, "valid": 6, "test": 6})
    recipe = DistillRecipe(
        epochs=2,
        warmup_epochs=1,
        batch_size=6,
        learning_rate=2.0,
        num_workers=0,
        mixup=True,
        mixup_memory=12,
    )
    out = tmp_path / "c2f"
    result = run_distillation(
        official_fixtures / "clip_tiny.ckpt",
        official_fixtures / "frame_tiny.ckpt",
        task_dir,
        out,
        recipe,
        finetune_teacher=True,
        hardware=Hardware(accelerator="cpu", devices=1),
        progress=False,
    )
    assert result == out / "c2f.ckpt"
    teacher = load_archive(out / "clip-teacher" / "clip_finetuned.ckpt")
    assert teacher["hyper_parameters"]["role"] == "clip-finetuned"
    assert teacher["hyper_parameters"]["atst_hear_recipe"]["lambda_d"] == 0.0
    archive = load_archive(result)
    assert {k.split(".")[0] for k in archive["state_dict"]} == {"encoder", "head"}
    assert archive["hyper_parameters"]["labels"] == ["high", "low", "mid"]
    # the student moved away from its pre-trained start
    start = load_archive(official_fixtures / "frame_tiny.ckpt")["state_dict"]
    assert not torch.equal(
        archive["state_dict"]["encoder.pos_embed"], start["model.teacher.encoder.pos_embed"]
    )
    model = hear_c2f.load_model(result)
    assert model.encoder.config.flavour == "frame" and model.encoder.config.width == 128
    scene = hear_c2f.get_scene_embeddings(0.1 * torch.ones(2, 16000), model)
    assert scene.shape == (2, 3 * 128)
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores["c2f"]) == {"top1_acc", "mAP"} and set(scores["clip_teacher"]) == {
        "top1_acc",
        "mAP",
    }
    # the fine-tuned teacher now has a head for this task and loads without --finetune-teacher
    load_classifier(out / "clip-teacher" / "clip_finetuned.ckpt", "clip", 3, drop_path=0.0)
    with pytest.raises(CheckpointError, match="another task"):
        load_classifier(out / "clip-teacher" / "clip_finetuned.ckpt", "clip", 5, drop_path=0.0)
