"""Leaderboard, summary.json, plots (units, colours, chance, published, empty PSD-ROC),
``bench --set`` overrides and the Python benchmark API."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from scipy import stats

from atst_hear import cli
from atst_hear.bench import plots
from atst_hear.bench.api import run_benchmark
from atst_hear.bench.leaderboard import (
    confidence_half_width,
    leaderboard_markdown,
    seed_statistics,
    with_seed_statistics,
)
from atst_hear.bench.overrides import OverrideError, apply_overrides, parse_overrides
from atst_hear.resources import names, shipped


def runs(values_by_seed: dict[int, list[float]], model="m", task="t", protocol="knn"):
    return pd.DataFrame(
        [
            {"model": model, "task": task, "protocol": protocol, "metric": "top1_acc"}
            | {"seed": seed, "fold": f"fold{i}", "value": v}
            for seed, values in values_by_seed.items()
            for i, v in enumerate(values)
        ]
    )


def test_interval_is_student_t_over_seed_means():
    frame = runs({0: [0.5, 0.7], 1: [0.8, 0.8], 2: [0.7, 0.9]})  # 2 folds per seed
    (row,) = seed_statistics(frame).to_dict("records")
    assert row["n_seeds"] == 3 and row["seed_means"] == {0: 0.6, 1: 0.8, 2: 0.8}
    seed_means = [0.6, 0.8, 0.8]
    expected = stats.t.ppf(0.975, 2) * stats.tstd(seed_means) / math.sqrt(3)
    assert row["ci95"] == pytest.approx(expected)
    assert math.isnan(confidence_half_width([0.5]))
    assert math.isnan(confidence_half_width([0.5, math.inf]))


def summary_rows(**overrides):
    base = {
        "model": "atst",
        "task": "esc50",
        "protocol": "paper-linear",
        "metric": "top1_acc",
        "mean": 0.9,
        "std": 0.01,
        "n": 3,
        "valid_from_train": False,
        "variant_of": None,
        "variant": "{}",
        "published": math.nan,
        "published_plus_minus": "",
        "published_unit": "",
        "published_protocol": "",
        "published_source": "",
        "difference": math.nan,
        "protocol_mismatch": False,
    }
    return base | overrides


def test_leaderboard_is_tasks_by_models_with_best_in_bold():
    summary = pd.DataFrame(
        [
            summary_rows(model="atst", mean=0.9),
            summary_rows(model="logmel", mean=0.7),
            summary_rows(model="atst", task="dcase", metric="segment_1s_er", mean=0.4),
            summary_rows(model="logmel", task="dcase", metric="segment_1s_er", mean=0.6),
        ]
    )
    frame = pd.concat(
        [
            runs({0: [0.89], 1: [0.91]}, model="atst", task="esc50", protocol="paper-linear"),
            runs({0: [0.7], 1: [0.7]}, model="logmel", task="esc50", protocol="paper-linear"),
        ]
    )
    frame.loc[:, "metric"] = "top1_acc"
    text = leaderboard_markdown(with_seed_statistics(summary, frame), "toy")
    assert "| task | metric | atst | logmel |" in text
    ci = stats.t.ppf(0.975, 1) * stats.tstd([0.89, 0.91]) / math.sqrt(2)
    assert f"| esc50 | top1_acc | **0.900 ± {ci:.3f}** | 0.700 ± 0.000 |" in text
    assert "| dcase | segment_1s_er | **0.400** | 0.600 |" in text  # error rate: lower wins


def capture_figures(monkeypatch):
    figures = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.__setitem__(path.name, fig))
    return figures


def test_task_bars_use_one_unit_per_axis(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    summary = pd.DataFrame(
        [
            summary_rows(model="atst", published=95.0, published_unit="percent"),
            summary_rows(model="logmel", mean=0.70),  # no published number: a fraction
            summary_rows(model="logmel", protocol="knn", mean=0.60),
        ]
    )
    plots.plot_task_bars(summary, tmp_path, {("esc50", "top1_acc"): 0.02})
    (ax,) = figures["task-esc50.png"].axes
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [60.0, 70.0, 90.0]  # the old code drew logmel as 0.7 beside 90
    assert ax.get_ylabel() == "top1_acc (%)"
    colours = {p.get_facecolor() for p in ax.patches}
    assert len(colours) == 2  # one per protocol
    (chance,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert chance.get_ydata()[0] == pytest.approx(2.0)
    (published,) = [c for c in ax.collections if type(c).__name__ == "PathCollection"]
    assert published.get_offsets()[0][1] == pytest.approx(95.0)


def test_empty_psd_roc_is_not_drawn(tmp_path, monkeypatch):
    figures = capture_figures(monkeypatch)
    unit = tmp_path / "units" / "u"
    unit.mkdir(parents=True)
    flat = {"efpr": [0, 50, 100], "etpr": [0, 0, 0], "value": 0.0}
    (unit / "psd_roc.json").write_text(json.dumps({"psds1": flat, "psds2": flat}))
    frame = pd.DataFrame(
        [{"task": "dcase", "model": "m", "protocol": "sed", "seed": 0, "fold": "test"}]
    ).assign(unit_dir="units/u")
    assert plots.plot_psd_roc(frame, tmp_path, tmp_path) == []
    rising = {"efpr": [0, 50, 100], "etpr": [0, 0.2, 0.4], "value": 0.2}
    (unit / "psd_roc.json").write_text(json.dumps({"psds1": flat, "psds2": rising}))
    assert len(plots.plot_psd_roc(frame, tmp_path, tmp_path)) == 1
    assert [ax.get_title() for ax in figures["psd-roc-dcase.png"].axes] == ["dcase · psds2"]


def test_overrides_edit_the_suite_document():
    suite = {
        "seeds": [0, 1, 2],
        "models": {"a": {"module": "x"}},
        "protocols": [{"protocol": "knn"}, {"protocol": "hear-mlp", "params": {"grid": "fast"}}],
    }
    changed = apply_overrides(
        suite,
        parse_overrides(
            [
                "seeds=[0]",
                "protocols.hear-mlp.params.grid_points=1",
                "protocols.0.params.k=3",
                "models.a.options.n_blocks=2",
            ]
        ),
    )
    assert changed["seeds"] == [0]
    assert changed["protocols"] == [
        {"protocol": "knn", "params": {"k": 3}},
        {"protocol": "hear-mlp", "params": {"grid": "fast", "grid_points": 1}},
    ]
    assert changed["models"]["a"]["options"] == {"n_blocks": 2}
    assert suite["seeds"] == [0, 1, 2]  # the input is not modified
    for bad, message in [
        ("models.typo.options.x=1", "no model named 'typo'"),
        ("protocols.sed.params.epochs=1", "no entry for protocol 'sed'"),
        ("protocols.5.params.k=1", "index 5"),
        ("seeds.x=1", "not an index"),
        ("seeds.0.x=1", "not a mapping"),
    ]:
        with pytest.raises(OverrideError, match=message):
            apply_overrides(suite, parse_overrides([bad]))
    with pytest.raises(OverrideError, match="KEY=VALUE"):
        parse_overrides(["seeds"])


def knn_suite(make_task, tmp_path):
    make_task("multiclass", name="scene")
    path = tmp_path / "suite.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "toy",
                "seeds": [0, 1, 2],
                "tasks_dir": str(tmp_path / "tasks"),
                "models": {"logmel": {"module": "atst_hear.bench.baselines"}},
                "tasks": {"scene": {}},
                "protocols": [{"protocol": "knn"}],
            }
        )
    )
    return path


def test_bench_set_and_python_api_write_the_same_report(make_task, tmp_path, capsys):
    suite = knn_suite(make_task, tmp_path)
    cli_out, api_out = tmp_path / "cli", tmp_path / "api"
    command = ["bench", "--suite", str(suite), "--out", str(cli_out), "--quiet"]
    assert cli.main([*command, "--set", "protocols.knn.params.k=3"]) == 0
    result = run_benchmark(suite, api_out, overrides={"protocols.knn.params.k": 3}, progress=False)
    assert result.summary.ok and result.n_units == 1
    assert set(result.report) >= {"scores", "summary", "leaderboard", "summary_json"}
    cli_scores, api_scores = (pd.read_csv(d / "scores.csv") for d in (cli_out, api_out))
    assert json.loads(cli_scores.params[0])["k"] == 3
    pd.testing.assert_series_equal(cli_scores.value, api_scores.value)
    assert (cli_out / "leaderboard.md").read_text() == (api_out / "leaderboard.md").read_text()
    cli_json, api_json = (json.loads((d / "summary.json").read_text()) for d in (cli_out, api_out))
    assert cli_json["groups"] == api_json["groups"]
    assert cli_json["groups"][0]["n_seeds"] == 1  # knn is not seeded
    with pytest.raises(ValueError, match="jobs"):
        run_benchmark(suite, api_out, jobs=0)
    assert cli.main([*command, "--set", "protocols.sed.params.x=1"]) == 2
    assert "no entry for protocol 'sed'" in capsys.readouterr().err


def test_layers_suite_sweeps_n_blocks():
    assert "layers" in names("suites")
    suite = yaml.safe_load(shipped("suites", "layers").read_text())
    sweeps = [m["sweep"]["n_blocks"] for m in suite["models"].values()]
    assert sweeps and all(len(values) >= 2 for values in sweeps)
