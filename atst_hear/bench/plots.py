"""Plots of a benchmark report: per-task bars against published values, PSD-ROC curves of SED
units, per-layer curves when a suite sweeps a model option (``n_blocks``).

Made to be read in a paper: one unit per axis (a task with any published percentage is drawn in
percent throughout, ours included), one colour per protocol (the same in every figure), the
published number as a black tick on its bar, chance as a dashed line, and no figure without
data (an all-zero PSD-ROC is left out).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..fileio import atomic_output

# fixed colours (Tableau 10), so a protocol looks the same in every figure of every report
PROTOCOL_COLOURS = {
    "paper-linear": "#4e79a7",
    "hear-mlp": "#f28e2b",
    "knn": "#59a14f",
    "finetune": "#e15759",
    "sed": "#b07aa1",
    "evar-linear": "#76b7b2",
}
_OTHER_COLOURS = ("#edc948", "#ff9da7", "#9c755f", "#bab0ac")
_LINE_STYLES = ("-", "--", ":", "-.")
# scores whose chance level follows from the label vocabulary alone
_UNIFORM_CHANCE = {"top1_acc", "pitch_acc", "chroma_acc"}
_FIXED_CHANCE = {"aucroc": 0.5, "d_prime": 0.0}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def protocol_colour(protocol: str) -> str:
    if protocol in PROTOCOL_COLOURS:
        return PROTOCOL_COLOURS[protocol]
    return _OTHER_COLOURS[sum(map(ord, protocol)) % len(_OTHER_COLOURS)]


def chance_levels(frame: pd.DataFrame, out: Path) -> dict[tuple[str, str], float]:
    """(task, metric) -> score of uninformed guessing, where the task folder says what it is.

    Accuracy: 1 / number of labels (uniform guessing). mAP: the mean share of test clips that
    carry each label (the expected AP of random scores). AUC-ROC 0.5, d' 0. Event scores have no
    such level and get none.
    """
    from ..tasks.folder import TaskFolder
    from .records import RESULT_FILE, UnitResult

    levels: dict[tuple[str, str], float] = {}
    if frame.empty:
        return levels
    for (task, metric), rows in frame.groupby(["task", "metric"]):
        if metric in _FIXED_CHANCE:
            levels[(task, metric)] = _FIXED_CHANCE[metric]
            continue
        if metric not in _UNIFORM_CHANCE and metric != "mAP":
            continue
        result = out / rows.iloc[0].unit_dir / RESULT_FILE
        try:
            folder = TaskFolder.open(UnitResult.read(result).task["path"])
        except (OSError, KeyError, ValueError):
            continue  # the task folder moved: no chance line rather than a wrong one
        if folder.is_event or not folder.labels:
            continue
        if metric in _UNIFORM_CHANCE:
            levels[(task, metric)] = 1.0 / len(folder.labels)
        elif folder.is_multilabel:
            levels[(task, metric)] = _label_prevalence(folder)
    return levels


def _label_prevalence(folder) -> float:
    split = "test" if "test" in folder.splits else folder.splits[-1]
    clips = folder.split_labels(split)
    if not clips:
        return math.nan
    counts = dict.fromkeys(folder.labels, 0)
    for labels in clips.values():
        for label in set(labels):
            counts[label] = counts.get(label, 0) + 1
    present = [c / len(clips) for c in counts.values() if c]
    return sum(present) / len(present) if present else math.nan


def plot_task_bars(
    summary: pd.DataFrame,
    plot_dir: Path,
    chance: dict[tuple[str, str], float] | None = None,
) -> list[Path]:
    """One figure per task: a bar per (model, protocol), grouped and coloured by protocol."""
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    chance = chance or {}
    paths = []
    for task, rows in summary.groupby("task"):
        rows = rows.sort_values(["protocol", "model"])
        # ours are fractions; published values come in their own unit: draw everything in
        # percent when any published value of the task is a percentage
        percent = bool((rows["published_unit"] == "percent").any())
        scale = 100.0 if percent else 1.0
        xs, x, previous = [], 0.0, None
        for protocol in rows["protocol"]:
            if previous is not None and protocol != previous:
                x += 0.6  # a gap between protocol groups
            xs.append(x)
            x, previous = x + 1.0, protocol
        means = [r.mean * scale if math.isfinite(r.mean) else 0.0 for r in rows.itertuples()]
        errors = [0.0 if not math.isfinite(r.std) else r.std * scale for r in rows.itertuples()]
        colours = [protocol_colour(p) for p in rows["protocol"]]
        fig, ax = plt.subplots(figsize=(max(3.6, 0.55 * len(xs) + 1.6), 3.2))
        ax.bar(xs, means, yerr=errors, capsize=3, color=colours, width=0.8, zorder=2)
        handles = [Patch(color=protocol_colour(p), label=p) for p in dict.fromkeys(rows.protocol)]
        handles.append(Line2D([], [], color="black", lw=1, label="± std over runs"))
        published = [
            (xx, r.published * (1.0 if r.published_unit == "percent" else scale))
            for xx, r in zip(xs, rows.itertuples())
            if math.isfinite(r.published)
        ]
        if published:
            line = ax.scatter(
                [p[0] for p in published],
                [p[1] for p in published],
                marker="_",
                s=500,
                color="black",
                linewidths=2.5,
                zorder=3,
                label="published",
            )
            handles.append(line)
        metric = rows.iloc[0].metric
        level = chance.get((task, metric))
        if level is not None and math.isfinite(level):
            handles.append(
                ax.axhline(level * scale, color="0.35", ls="--", lw=1, zorder=1, label="chance")
            )
        labels, title = _bar_labels(rows, str(task))
        ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(f"{metric} ({'%' if percent else 'fraction'})")
        if metric != "d_prime" and all(v <= scale for v in means):
            ax.set_ylim(0, scale * 1.05)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3, zorder=0)
        ax.legend(
            handles=handles,
            fontsize=7,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
        fig.tight_layout()
        path = plot_dir / f"task-{_file_name(task)}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _bar_labels(rows: pd.DataFrame, task: str) -> tuple[list[str], str]:
    """Tick labels and title: when every bar is a variant of one swept model, the ticks name
    the swept value ("n_blocks=4") and the title names the model."""
    bases = {v for v in rows["variant_of"] if isinstance(v, str) and v}
    models = [str(m) for m in rows["model"]]
    if len(bases) == 1 and all("@" in m for m in models):
        return [m.split("@", 1)[1] for m in models], f"{task} · {bases.pop()}"
    return models, task


def plot_layer_curves(summary: pd.DataFrame, plot_dir: Path) -> list[Path]:
    """One figure per (swept model, task): the score against the swept option, a line per
    protocol (error bars: std over runs)."""
    plt = _pyplot()
    swept = summary[summary.variant_of.notna() & (summary.variant != "{}")]
    paths = []
    for (base, task), rows in swept.groupby(["variant_of", "task"]):
        curves = {}
        for r in rows.itertuples():
            ((option, value),) = json.loads(r.variant).items()
            if isinstance(value, int | float) and not isinstance(value, bool):
                std = 0.0 if not math.isfinite(r.std) else r.std
                curves.setdefault(r.protocol, []).append((value, r.mean, std, option))
        curves = {p: sorted(points) for p, points in curves.items() if len(points) >= 2}
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(4.2, 3.0))
        values = sorted({p[0] for points in curves.values() for p in points})
        step = min((b - a for a, b in zip(values, values[1:])), default=1.0)
        for number, (protocol, points) in enumerate(sorted(curves.items())):
            # a small sideways shift per protocol keeps overlapping error bars apart
            shift = (number - (len(curves) - 1) / 2) * 0.06 * step
            ax.errorbar(
                [p[0] + shift for p in points],
                [p[1] for p in points],
                yerr=[p[2] for p in points],
                marker="o",
                capsize=3,
                color=protocol_colour(protocol),
                label=protocol,
            )
        option = next(iter(curves.values()))[0][3]
        ax.set_xticks(values)
        ax.set_xlabel(option.replace("_", " "))
        ax.set_ylabel(f"{rows.iloc[0].metric} (fraction)")
        ax.set_title(f"{base} · {task}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, frameon=False, title="mean ± std over runs", title_fontsize=7)
        fig.tight_layout()
        path = plot_dir / f"layers-{_file_name(base)}-{_file_name(task)}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _has_signal(curve: dict) -> bool:
    return any(float(v) > 0 for v in curve.get("etpr", []))


def plot_psd_roc(frame: pd.DataFrame, out: Path, plot_dir: Path) -> list[Path]:
    """PSD-ROC curves that SED units stored in ``psd_roc.json`` (first seed/fold per model).

    Curves that never detect anything (eTPR 0 throughout) are left out, and so is a figure
    left with none."""
    plt = _pyplot()
    paths = []
    curves_by_task: dict[str, list[tuple[str, str, dict]]] = {}
    for (task, model, protocol), rows in frame.groupby(["task", "model", "protocol"]):
        curve_file = out / rows.sort_values(["seed", "fold"]).iloc[0].unit_dir / "psd_roc.json"
        if curve_file.is_file():
            curves = {
                name: curve
                for name, curve in json.loads(curve_file.read_text()).items()
                if _has_signal(curve)
            }
            if curves:
                curves_by_task.setdefault(task, []).append((str(model), protocol, curves))
    for task, entries in curves_by_task.items():
        names = sorted({name for _, _, curves in entries for name in curves})
        fig, axes = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.2), squeeze=False)
        for ax, name in zip(axes[0], names):
            highest = 0.0
            for number, (model, protocol, curves) in enumerate(entries):
                if name in curves:
                    # dashes differ per model, so curves that coincide stay visible
                    ax.step(
                        curves[name]["efpr"],
                        curves[name]["etpr"],
                        where="post",
                        color=f"C{number % 10}",
                        ls=_LINE_STYLES[number % len(_LINE_STYLES)],
                        label=f"{model} ({protocol}): {curves[name]['value']:.3f}",
                    )
                    highest = max(highest, *map(float, curves[name]["etpr"]))
            ax.set_xlabel("eFPR (false positives per hour)")
            ax.set_ylabel("eTPR (fraction)")
            # weak detectors stay readable: the axis ends just above the highest curve
            ax.set_ylim(0, min(1.02, max(0.05, 1.15 * highest)))
            ax.set_title(f"{task} · {name}", fontsize=9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(0.0, -0.22))
        fig.tight_layout()
        path = plot_dir / f"psd-roc-{_file_name(task)}.png"
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_probe_curves(probe_csv: Path, plot_dir: Path) -> list[Path]:
    """Learning curves of a pre-training run's ``probe.csv`` (``atst_hear.bench.online_probe``):
    ``probe-curves.png``, the score against the step per task, a line per protocol (dashed: the
    student) and its step-0 (random-init) level as a dotted line; ``probe-diagnostics.png``,
    effective rank, spread and held-out loss against the step."""
    frame = pd.read_csv(probe_csv, dtype={"task": str})
    frame["task"] = frame.task.fillna("")  # diagnostics belong to no task
    if frame.empty:
        raise ValueError(f"{probe_csv}: no probe rows to plot")
    plt = _pyplot()
    styles = {"teacher": "-", "student": "--"}
    paths = []
    is_score = frame.protocol != "diagnostic"
    # a diagnostic and its shuffled control share a panel
    frame["panel"] = frame.task.where(is_score, frame.metric.str.removesuffix("_shuffled"))
    for name, rows, panel_key in (
        ("probe-curves.png", frame[is_score], "task"),
        ("probe-diagnostics.png", frame[~is_score], "metric"),
    ):
        panels = sorted(rows.panel.unique())
        if not panels:
            continue
        columns = min(3, len(panels))
        lines = (len(panels) + columns - 1) // columns
        fig, axes = plt.subplots(
            lines, columns, figsize=(3.6 * columns, 2.8 * lines), squeeze=False
        )
        for ax, panel in zip(axes.flat, panels):
            for (encoder, protocol, metric), curve in rows[rows.panel == panel].groupby(
                ["encoder", "protocol", "metric"]
            ):
                curve = curve.sort_values("step")
                label = f"{encoder} {protocol if panel_key == 'task' else metric}"
                colour = (
                    protocol_colour(protocol)
                    if panel_key == "task"
                    else _OTHER_COLOURS[metric.endswith("shuffled")]
                )
                ax.plot(
                    curve.step,
                    curve.value,
                    styles.get(encoder, ":"),
                    marker="o",
                    markersize=3,
                    color=colour,
                    label=label,
                )
                start = curve[curve.step == 0]
                if len(start):
                    ax.axhline(float(start.value.iloc[0]), color=colour, linestyle=":", lw=1)
            ylabel = rows[rows.panel == panel].metric.iloc[0] if panel_key == "task" else ""
            ax.set_title(str(panel), fontsize=9)
            ax.set_xlabel("step")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, frameon=False)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        fig.suptitle("dotted: step 0 (random initialisation)", fontsize=8)
        fig.tight_layout()
        path = plot_dir / name
        _save(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text))


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
