"""Plots of a benchmark report: per-task bars against published values, PSD-ROC curves of SED
units, per-layer curves when a suite sweeps a model option (``n_blocks``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..fileio import atomic_output


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_task_bars(summary: pd.DataFrame, plot_dir: Path) -> list[Path]:
    plt = _pyplot()
    paths = []
    for task, rows in summary.groupby("task"):
        labels = [f"{r.model}\n{r.protocol}" for r in rows.itertuples()]
        scales = [100.0 if r.published_unit == "percent" else 1.0 for r in rows.itertuples()]
        means = [r.mean * s for r, s in zip(rows.itertuples(), scales)]
        stds = [0.0 if math.isnan(r.std) else r.std * s for r, s in zip(rows.itertuples(), scales)]
        fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels) + 1.5), 3.6))
        xs = range(len(labels))
        ax.bar(xs, means, yerr=stds, capsize=4, color="#4c78a8", label="ours (mean ± std)")
        published = [
            (x, r.published) for x, r in zip(xs, rows.itertuples()) if not math.isnan(r.published)
        ]
        if published:
            ax.scatter(
                [p[0] for p in published],
                [p[1] for p in published],
                marker="_",
                s=900,
                color="#e45756",
                linewidths=3,
                label="published",
                zorder=3,
            )
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel(f"{rows.iloc[0].metric}" + (" (%)" if 100.0 in scales else ""))
        ax.set_title(task)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = plot_dir / f"task-{_file_name(task)}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_layer_curves(summary: pd.DataFrame, plot_dir: Path) -> list[Path]:
    plt = _pyplot()
    swept = summary[summary.variant_of.notna() & (summary.variant != "{}")]
    paths = []
    for (base, task, protocol), rows in swept.groupby(["variant_of", "task", "protocol"]):
        points = []
        for r in rows.itertuples():
            ((option, value),) = json.loads(r.variant).items()
            if isinstance(value, int | float):
                points.append((value, r.mean, 0.0 if math.isnan(r.std) else r.std, option))
        if len(points) < 2:
            continue
        points.sort()
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.errorbar(
            [p[0] for p in points],
            [p[1] for p in points],
            yerr=[p[2] for p in points],
            marker="o",
            capsize=3,
        )
        ax.set_xlabel(points[0][3])
        ax.set_ylabel(rows.iloc[0].metric)
        ax.set_title(f"{base} · {task} · {protocol}", fontsize=9)
        fig.tight_layout()
        path = plot_dir / f"layers-{_file_name(base)}-{_file_name(task)}-{protocol}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_psd_roc(frame: pd.DataFrame, out: Path, plot_dir: Path) -> list[Path]:
    """PSD-ROC curves that SED units stored in ``psd_roc.json`` (first seed/fold per model)."""
    plt = _pyplot()
    paths = []
    curves_by_task: dict[str, list[tuple[str, dict]]] = {}
    for (task, model, protocol), rows in frame.groupby(["task", "model", "protocol"]):
        curve_file = out / rows.sort_values(["seed", "fold"]).iloc[0].unit_dir / "psd_roc.json"
        if curve_file.is_file():
            curves_by_task.setdefault(task, []).append(
                (f"{model} ({protocol})", json.loads(curve_file.read_text()))
            )
    for task, entries in curves_by_task.items():
        names = sorted({name for _, curves in entries for name in curves})
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
        for ax, name in zip(axes[0], names):
            for label, curves in entries:
                if name in curves:
                    ax.step(
                        curves[name]["efpr"],
                        curves[name]["etpr"],
                        where="post",
                        label=f"{label}: {curves[name]['value']:.3f}",
                    )
            ax.set_xlabel("eFPR (per hour)")
            ax.set_ylabel("eTPR")
            ax.set_title(name, fontsize=9)
            ax.legend(fontsize=6)
        fig.tight_layout()
        path = plot_dir / f"psd-roc-{_file_name(task)}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
