"""Online probes during pre-training: probe.csv, logs, resume, diagnostics and learning curves."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from atst_hear.bench.online_probe import (
    CSV_FIELDS,
    PROBE_CSV,
    OnlineProbe,
    ProbeSettings,
    effective_rank,
    scene_spread,
)
from atst_hear.bench.plots import plot_probe_curves
from atst_hear.cli import main
from atst_hear.models.checkpoints import load_archive
from atst_hear.pretrain.heads import masked_prediction_losses
from atst_hear.pretrain.module import PretrainModule
from atst_hear.pretrain.training import Hardware, run_pretraining

CPU = Hardware(accelerator="cpu", devices=1)
FAST_PROTOCOLS = {
    "knn": {"k": 3},
    "paper-linear": {"epochs": 3, "batch_size": 64, "lr_grid": [1.0e-2]},
}


def read_probe_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CSV_FIELDS
        return list(reader)


@pytest.fixture(scope="module")
def probe_task(tmp_path_factory, make_tone_task):
    return make_tone_task(
        tmp_path_factory.mktemp("probe-task"), {"train": 9, "valid": 3, "test": 6}
    )


def probe(task, out, every=2, **settings):
    values = {"protocols": FAST_PROTOCOLS, "diagnostic_clips": 12, **settings}
    return OnlineProbe(ProbeSettings((task,), every=every, **values), out)


@pytest.fixture(scope="module")
def probed_runs(tmp_path_factory, audio_folder, probe_task, tiny_recipe):
    """A 4-step run stopped at step 3 and resumed (probe every 2 steps), and the same 4 steps
    without a probe."""
    recipe = tiny_recipe("frame", max_steps=4, mixup_ratio=0.0)
    data = [str(audio_folder)]
    probed = tmp_path_factory.mktemp("probed")
    plain = tmp_path_factory.mktemp("plain")
    callbacks = [probe(probe_task, probed)]
    run_pretraining(recipe, data, probed, CPU, stop_at_step=3, progress=False, callbacks=callbacks)
    stopped_rows = read_probe_csv(probed / PROBE_CSV)
    # rows an interrupted run wrote after its last checkpoint must not survive the resume
    with open(probed / PROBE_CSV, "a", encoding="utf-8") as handle:
        handle.write("4,teacher,tones,knn,top1_acc,0.123\n")
    callbacks = [probe(probe_task, probed)]
    run_pretraining(recipe, data, probed, CPU, resume=True, progress=False, callbacks=callbacks)
    run_pretraining(recipe, data, plain, CPU, progress=False)
    return {"probed": probed, "plain": plain, "stopped_rows": stopped_rows}


def test_probe_rows_cover_step_zero_every_n_and_the_end(probed_runs):
    stopped = probed_runs["stopped_rows"]
    assert sorted({int(r["step"]) for r in stopped}) == [0, 2, 3]
    rows = read_probe_csv(probed_runs["probed"] / PROBE_CSV)
    assert sorted({int(r["step"]) for r in rows}) == [0, 2, 3, 4]
    keys = [(r["step"], r["encoder"], r["task"], r["protocol"], r["metric"]) for r in rows]
    assert len(keys) == len(set(keys)), "a resumed run duplicated probe rows"
    assert "0.123" not in {r["value"] for r in rows}, "stale rows of the interrupted run kept"
    assert rows[: len(stopped)] == stopped  # the resumed run kept what came before
    at_4 = {(r["protocol"], r["metric"]) for r in rows if r["step"] == "4"}
    assert at_4 == {
        ("knn", "top1_acc"),
        ("paper-linear", "top1_acc"),
        ("diagnostic", "effective_rank"),
        ("diagnostic", "scene_std"),
        ("diagnostic", "heldout_loss"),
        ("diagnostic", "heldout_loss_shuffled"),
    }
    for row in rows:
        assert math.isfinite(float(row["value"]))
        if row["protocol"] != "diagnostic":
            assert 0.0 <= float(row["value"]) <= 1.0


def test_probe_scores_reach_the_lightning_logs(probed_runs):
    metrics = sorted((probed_runs["probed"] / "logs" / "csv").glob("version_*/metrics.csv"))
    assert len(metrics) == 2  # the first start and the resume
    header_and_rows = [
        list(csv.DictReader(path.read_text(encoding="utf-8").splitlines())) for path in metrics
    ]
    first = [r for r in header_and_rows[0] if r.get("probe/teacher/tones/knn")]
    assert sorted(int(r["step"]) for r in first) == [0, 2, 3]
    assert any(r.get("probe/teacher/effective_rank") for r in header_and_rows[1])
    assert list((probed_runs["probed"] / "logs" / "tensorboard").glob("version_*/events.*"))


def test_probe_leaves_training_unchanged(probed_runs):
    probed = load_archive(probed_runs["probed"] / "checkpoints" / "last.ckpt")
    plain = load_archive(probed_runs["plain"] / "checkpoints" / "last.ckpt")
    assert probed["global_step"] == plain["global_step"] == 4
    for key, value in plain["state_dict"].items():
        assert torch.equal(value, probed["state_dict"][key]), key


def test_run_draws_learning_curves(probed_runs):
    plots = probed_runs["probed"] / "plots"
    assert (plots / "probe-curves.png").stat().st_size > 0
    assert (plots / "probe-diagnostics.png").stat().st_size > 0


def test_effective_rank_of_rank_one_and_isotropic_matrices():
    rng = np.random.default_rng(0)
    line = rng.standard_normal((200, 1)) @ rng.standard_normal((1, 16))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    isotropic = rng.standard_normal((4000, 16))
    assert 15.0 < effective_rank(isotropic) <= 16.0
    assert effective_rank(np.ones((10, 4))) == 0.0
    with pytest.raises(ValueError, match="N >= 2"):
        effective_rank(np.ones((1, 4)))


def test_scene_spread_is_one_when_isotropic_and_zero_when_collapsed():
    rng = np.random.default_rng(0)
    assert scene_spread(rng.standard_normal((4000, 32))) == pytest.approx(1.0, abs=0.05)
    point = np.tile(rng.standard_normal(32), (50, 1))
    assert scene_spread(point) == pytest.approx(0.0, abs=1e-9)


def test_shuffled_control_separates_content_from_position():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(4, 10, 8, generator=generator)
    mask = torch.rand(4, 10, generator=generator) < 0.5
    mask[:, 0] = True
    # a student that predicts each clip's own content
    loss, shuffled = masked_prediction_losses(targets[mask], targets, mask)
    assert loss == pytest.approx(0.0, abs=1e-6) and shuffled > 0.5
    # targets that depend on position only: the control scores the same
    by_position = torch.randn(1, 10, 8, generator=generator).expand(4, -1, -1)
    loss, shuffled = masked_prediction_losses(by_position[mask], by_position, mask)
    assert loss == pytest.approx(float(shuffled), abs=1e-6)
    with pytest.raises(ValueError, match="at least 2 clips"):
        masked_prediction_losses(targets[:1][mask[:1]], targets[:1], mask[:1])


def test_heldout_loss_keeps_the_training_modes(tiny_recipe):
    module = PretrainModule(tiny_recipe("frame"))
    module.train()
    loss, shuffled = module.heldout_prediction_loss(
        torch.randn(3, 8000) * 0.1, torch.Generator().manual_seed(0)
    )
    assert math.isfinite(loss) and math.isfinite(shuffled)
    assert all(m.training for m in module.modules())
    with pytest.raises(ValueError, match="ATST-Frame"):
        PretrainModule(tiny_recipe("clip")).heldout_prediction_loss(
            torch.randn(3, 8000), torch.Generator()
        )


def test_probe_settings_are_checked(probe_task, tmp_path):
    with pytest.raises(ValueError, match="positive number of steps"):
        ProbeSettings((probe_task,), every=0)
    with pytest.raises(ValueError, match="encoders"):
        ProbeSettings((probe_task,), every=1, encoders=("ema",))
    with pytest.raises(ValueError, match="unknown protocol"):
        ProbeSettings((probe_task,), every=1, protocols={"linear": {}})
    with pytest.raises(ValueError, match="unknown parameters"):
        ProbeSettings((probe_task,), every=1, protocols={"knn": {"neighbours": 3}})
    with pytest.raises(ValueError, match="at least one"):
        ProbeSettings((), every=1)


def test_probe_csv_plot_and_pretrain_report(tmp_path, capsys):
    lines = ["step,encoder,task,protocol,metric,value"]
    for step, score in ((0, 0.5), (10, 0.6), (20, 0.7)):
        lines += [
            f"{step},teacher,demo_pitch,knn,pitch_acc,{score}",
            f"{step},teacher,demo_pitch,paper-linear,pitch_acc,{score - 0.1}",
            f"{step},teacher,,diagnostic,effective_rank,{4 - step / 10}",
            f"{step},student,,diagnostic,heldout_loss,{1 - step / 40}",
            f"{step},student,,diagnostic,heldout_loss_shuffled,1.0",
        ]
    (tmp_path / PROBE_CSV).write_text("\n".join(lines) + "\n", encoding="utf-8")
    paths = plot_probe_curves(tmp_path / PROBE_CSV, tmp_path / "plots")
    assert [p.name for p in paths] == ["probe-curves.png", "probe-diagnostics.png"]
    assert main(["pretrain-report", str(tmp_path)]) == 0
    assert "probe-curves.png" in capsys.readouterr().out
    assert main(["pretrain-report", str(tmp_path / "missing")]) == 2
    assert "pretrain --probe" in capsys.readouterr().err


def test_pretrain_cli_checks_probe_options(tmp_path, audio_folder, capsys):
    base = ["pretrain", "--flavour", "frame", "--arch", "tiny", "--data", str(audio_folder)]
    assert main([*base, "--out", str(tmp_path / "a"), "--probe-every", "5"]) == 2
    assert "need --probe" in capsys.readouterr().err
    missing = tmp_path / "no-task"
    assert main([*base, "--out", str(tmp_path / "b"), "--probe", f"{missing},{missing}"]) == 2
    assert "not a folder" in capsys.readouterr().err
