"""``atst-hear pretrain`` / ``distill`` command lines, and a 2-process CPU DDP run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import atst_hear.hear.frame as hear_frame
from atst_hear.cli import main
from atst_hear.models.checkpoints import load_archive

TINY = [
    "--set", "batch_size=4", "--set", "head_hidden=64", "--set", "crop_seconds=0.5",
    "--set", "warmup_steps=1", "--set", "max_steps=4", "--set", "num_workers=1",
    "--set", "checkpoint_every=2", "--set", "mixup_memory=16",
]  # fmt: skip


def test_pretrain_needs_a_recipe(tmp_path, audio_folder, capsys):
    base = ["pretrain", "--data", str(audio_folder), "--out", str(tmp_path / "run")]
    assert main(base) == 2
    assert "--flavour and --arch" in capsys.readouterr().err
    assert main([*base, "--flavour", "frame", "--arch", "huge"]) == 2
    assert "no shipped recipe" in capsys.readouterr().err
    assert main([*base, "--flavour", "frame", "--arch", "tiny", "--set", "ema"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main([*base, "--flavour", "frame", "--arch", "tiny", "--set", "emma=0.9"]) == 2
    assert "unknown recipe fields ['emma']" in capsys.readouterr().err
    recipe = tmp_path / "mine.yaml"
    recipe.write_text("flavour: clip\narch: tiny\n")
    assert main([*base, "--recipe", str(recipe), "--flavour", "frame"]) == 2
    assert "not 'frame'" in capsys.readouterr().err


def test_distill_reports_missing_files(tmp_path, capsys):
    code = main(
        ["distill", "--clip-teacher", str(tmp_path / "none.ckpt"), "--frame-student",
         str(tmp_path / "none.ckpt"), "--task", str(tmp_path / "task"), "--out", str(tmp_path)]
    )  # fmt: skip
    assert code == 2
    assert "task" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_cpu_ddp_run_stops_and_resumes(tmp_path, audio_folder):
    """Two gloo processes: each reads its own half of the data; resume restores both ranks."""
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "atst_hear.cli", "pretrain", "--flavour", "frame", "--arch",
        "tiny", "--data", str(audio_folder), "--out", str(out), "--accelerator", "cpu",
        "--devices", "2", "--quiet", *TINY,
    ]  # fmt: skip
    first = subprocess.run([*command, "--stop-at-step", "2"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    stopped = load_archive(out / "checkpoints" / "last.ckpt")
    assert stopped["global_step"] == 2
    state = stopped["PretrainDataModule"]
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    # 12 files shuffled, 6 per rank: 2 batches of 4 carry each rank into its second pass
    assert [r["positions"] for r in state["ranks"]] == [{0: [1, 2, 0]}, {0: [1, 2, 0]}]
    second = subprocess.run([*command, "--resume"], capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    final = load_archive(out / "atst_frame.ckpt")
    assert final["global_step"] == 4
    hyper = final["hyper_parameters"]
    assert hyper["nproc"] == 2 and hyper["learning_rate"] == pytest.approx(0.008 * 2 * 4 / 256)
    model = hear_frame.load_model(out / "atst_frame.ckpt")
    assert torch.isfinite(hear_frame.get_scene_embeddings(0.1 * torch.ones(1, 8000), model)).all()


def test_recipe_overrides_read_scientific_notation_and_check_types():
    from atst_hear.pretrain.recipes import RecipeError, load_recipe, parse_overrides

    recipe = load_recipe(
        flavour="frame", arch="tiny", overrides=parse_overrides(["learning_rate=4e-4"])
    )
    assert recipe.learning_rate == pytest.approx(4e-4)
    for item, message in [
        ("learning_rate=fast", "learning_rate must be a number"),
        ("max_steps=2.5", "max_steps must be an integer"),
        ("freq_scale=[0.6]", "freq_scale must be a pair of numbers"),
        ("drop_path=true", "drop_path must be a number"),
    ]:
        with pytest.raises(RecipeError, match=message):
            load_recipe(flavour="frame", arch="tiny", overrides=parse_overrides([item]))
