"""End-to-end pre-training runs on CPU: checkpoints, loading, resume."""

from __future__ import annotations

import os

import pytest
import torch

import atst_hear.hear.clip as hear_clip
import atst_hear.hear.frame as hear_frame
from atst_hear.models.checkpoints import load_archive
from atst_hear.pretrain.checkpoint import RECIPE_KEY, check_pretrain_layout
from atst_hear.pretrain.recipes import RecipeError
from atst_hear.pretrain.training import Hardware, latest_checkpoint, run_pretraining

CPU = Hardware(accelerator="cpu", devices=1)


@pytest.fixture(scope="module")
def frame_runs(tmp_path_factory, audio_folder, tiny_recipe):
    """An uninterrupted 6-step run, and one stopped at step 3, then resumed to step 6.

    Mixup is off: its memory bank is not checkpointed (a resumed run refills it, see views.py);
    everything else must match bit for bit.
    """
    recipe = tiny_recipe("frame", mixup_ratio=0.0)
    whole = tmp_path_factory.mktemp("whole")
    parts = tmp_path_factory.mktemp("parts")
    data = [str(audio_folder)]
    release = run_pretraining(recipe, data, whole, CPU, progress=False)
    assert run_pretraining(recipe, data, parts, CPU, stop_at_step=3, progress=False) is None
    stopped = load_archive(parts / "checkpoints" / "last.ckpt")
    resumed = run_pretraining(recipe, data, parts, CPU, resume=True, progress=False)
    return {
        "recipe": recipe,
        "whole": whole,
        "parts": parts,
        "release": release,
        "resumed": resumed,
        "stopped": stopped,
    }


def test_resume_reproduces_the_uninterrupted_run(frame_runs):
    assert frame_runs["stopped"]["global_step"] == 3
    whole = load_archive(frame_runs["whole"] / "checkpoints" / "last.ckpt")
    parts = load_archive(frame_runs["parts"] / "checkpoints" / "last.ckpt")
    assert whole["global_step"] == parts["global_step"] == 6
    assert whole["state_dict"].keys() == parts["state_dict"].keys()
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, parts["state_dict"][key]), key
    assert whole["PretrainDataModule"] == parts["PretrainDataModule"]
    # and training did move the weights
    first = frame_runs["stopped"]["state_dict"]["model.student.encoder.pos_embed"]
    assert not torch.equal(first, whole["state_dict"]["model.student.encoder.pos_embed"])


def test_periodic_checkpoints_hold_the_teacher_and_data_position_of_their_step(frame_runs):
    # the step-3 checkpoint of the uninterrupted run is written during training; the stopped run
    # wrote its step-3 state after training ended: a resume from either must continue alike
    periodic = load_archive(frame_runs["whole"] / "checkpoints" / "step-00000003.ckpt")
    stopped = frame_runs["stopped"]
    assert periodic["global_step"] == stopped["global_step"] == 3
    for key, value in stopped["state_dict"].items():
        assert torch.equal(value, periodic["state_dict"][key]), key
    assert periodic["PretrainDataModule"] == stopped["PretrainDataModule"]


def test_checkpoints_every_n_steps_and_last(frame_runs):
    names = sorted(p.name for p in (frame_runs["whole"] / "checkpoints").glob("*.ckpt"))
    assert names == ["last.ckpt", "step-00000003.ckpt", "step-00000006.ckpt"]
    assert (frame_runs["whole"] / "recipe.yaml").is_file()
    assert list((frame_runs["whole"] / "logs" / "csv").glob("version_*/metrics.csv"))


def test_the_log_counts_passes_over_the_data(frame_runs):
    # 12 files in batches of 4: step 2 completes the first pass, step 5 the second; Lightning's
    # own epoch stays 0 because the stream never ends
    import pandas as pd

    (metrics,) = (frame_runs["whole"] / "logs" / "csv").glob("version_*/metrics.csv")
    rows = pd.read_csv(metrics).dropna(subset=["data_passes_done"])
    assert rows.groupby("step")["data_passes_done"].first().tolist() == [0, 0, 1, 1, 1, 2]
    assert set(rows["epoch"]) == {0}


def test_release_checkpoint_loads_unchanged_through_the_hear_module(frame_runs):
    release = frame_runs["release"]
    assert release == frame_runs["whole"] / "atst_frame.ckpt"
    archive = load_archive(release)
    assert set(archive) == {
        "epoch",
        "global_step",
        "pytorch-lightning_version",
        "hyper_parameters",
        "state_dict",
    }
    check_pretrain_layout(archive["state_dict"], str(release))
    hyper = archive["hyper_parameters"]
    assert hyper["arch"] == "tiny" and hyper["anchor_len"] == 0.5 and hyper["nproc"] == 1
    assert hyper["learning_rate"] == pytest.approx(0.05 * 4 / 256)
    assert hyper[RECIPE_KEY]["batch_size"] == 4
    for role in ("teacher", "student"):
        model = hear_frame.load_model(release, encoder=role)
        loaded = model.encoder.state_dict()
        for key, value in loaded.items():
            assert torch.equal(value, archive["state_dict"][f"model.{role}.encoder.{key}"])
    audio = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(0))
    scene = hear_frame.get_scene_embeddings(audio, hear_frame.load_model(release))
    assert scene.shape == (2, 4 * 192) and torch.isfinite(scene).all()


def test_a_resume_refuses_a_changed_recipe_and_a_new_run_an_existing_folder(
    frame_runs, audio_folder
):
    data = [str(audio_folder)]
    changed = frame_runs["recipe"].__class__.from_dict(
        {**frame_runs["recipe"].to_dict(), "ema": 0.9}
    )
    with pytest.raises(RecipeError, match="ema"):
        run_pretraining(changed, data, frame_runs["parts"], CPU, resume=True, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        run_pretraining(frame_runs["recipe"], data, frame_runs["parts"], CPU, progress=False)


def test_clip_pretraining_writes_a_checkpoint_the_clip_module_loads(
    tmp_path, audio_folder, tiny_recipe
):
    recipe = tiny_recipe("clip", max_steps=3, checkpoint_every=10, positive_seconds=0.4)
    release = run_pretraining(recipe, [str(audio_folder)], tmp_path, CPU, progress=False)
    archive = load_archive(release)
    check_pretrain_layout(archive["state_dict"], str(release))
    assert archive["hyper_parameters"]["train_len"] == 0.5
    model = hear_clip.load_model(release)
    assert model.encoder.config.flavour == "clip" and model.encoder.config.train_len == 0.5
    scene = hear_clip.get_scene_embeddings(0.1 * torch.ones(1, 12000), model)
    assert scene.shape == (1, 2 * 4 * 192) and torch.isfinite(scene).all()


def test_resume_takes_the_newest_of_last_and_slurm_checkpoints(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"x")
    hpc = tmp_path / "hpc_ckpt_1.ckpt"
    hpc.write_bytes(b"x")
    os.utime(last, (1000, 1000))
    os.utime(hpc, (2000, 2000))
    assert latest_checkpoint(tmp_path) == hpc
    os.utime(last, (3000, 3000))
    assert latest_checkpoint(tmp_path) == last
