"""Does the tiny CPU pre-training learn? Ablations of the frame-tiny recipe, scored by the demo probe.

For every run of ``benchmarks/pretrain_ablations.yaml``: pre-train the tiny ATST-Frame with the
shipped recipe and the run's overrides (``atst-hear pretrain``, resumable), then score the
teacher at every probe step with the ``pretrain-demo-probe`` suite's protocol (paper-linear,
3 seeds) beside the random initialisation the runs start from, in one ``atst-hear bench`` run, and
measure the effective rank of the last block's scene embeddings. Writes, under ``--out``
(default ``results/pretrain_ablations``):

    summary.json   every (run, step, task) mean and std, effective ranks, the tasks above random,
                   provenance (toolkit version, git commit, seeds, protocol and its version)
    table.md       the final step of each run against random init, per task
    curves.png     probe score against the pre-training step, per task, random init as a line

Work goes to ``--work`` (default ``runs/pretrain-ablations``); a second invocation reuses
finished runs and benchmark units.

    .venv/bin/python benchmarks/pretrain_ablations.py [--runs default,no-mixup]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
ATST = [sys.executable, "-m", "atst_hear.cli"]
RANDOM = "random-init"
STEP_MARK = "-step"  # model names: <run>-step<N>
# clips whose scene embeddings measure the effective rank: the test splits of three tasks
RANK_TASKS = ("demo_pitch", "demo_speakers", "demo_instruments")

log = logging.getLogger("pretrain_ablations")


def atst(*args: str) -> None:
    log.info("atst-hear %s", " ".join(args))
    subprocess.run([*ATST, *args], check=True, cwd=ROOT)


def corpus_sources(config: dict, demo_tasks: Path, work: Path) -> dict[str, str]:
    """Corpus name -> the --data glob, generating the corpora that the demo generator draws."""
    sources = {}
    for name, corpus in config["corpora"].items():
        folder = work / "corpora" / name
        if "generate" in corpus:
            spec = corpus["generate"]
            atst(
                "demo-tasks", str(folder), "--seed", str(spec["seed"]),
                "--scale", str(spec["scale"]), "--tasks", *spec["tasks"],
            )  # fmt: skip
        sources[name] = corpus["glob"].format(demo_tasks=demo_tasks, corpus=folder)
    return sources


def pretrain(name: str, run: dict, data: str, config: dict, work: Path) -> Path:
    out = work / "runs" / name
    settings = {
        "max_steps": run.get("steps", config["steps"]),
        "checkpoint_every": config["checkpoint_every"],
        **config.get("set", {}),  # for every run
        **run.get("set", {}),
    }
    args = ["pretrain", "--flavour", "frame", "--arch", "tiny", "--accelerator", "cpu"]
    args += ["--devices", "1", "--data", data, "--out", str(out), "--quiet"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    if (out / "atst_frame.ckpt").is_file():
        log.info("%s: finished earlier, reused", name)
        return out
    if (out / "checkpoints" / "last.ckpt").is_file():
        args.append("--resume")
    started = time.monotonic()
    atst(*args)
    (out / "wall_seconds.txt").write_text(f"{time.monotonic() - started:.1f}\n")
    return out


def probe_suite(checkpoints: dict[str, Path], demo_tasks: Path, path: Path) -> dict:
    """The pretrain-demo-probe suite with one model per checkpoint (and the random start)."""
    from atst_hear.resources import shipped

    suite = yaml.safe_load(shipped("suites", "pretrain-demo-probe").read_text())
    random_model = suite["models"]["tiny-frame-random"]
    suite["name"] = "pretrain-ablations"
    suite["description"] = "tiny ATST-Frame ablations, teacher at each probe step, paper-linear"
    suite["tasks_dir"] = str(demo_tasks)
    suite["models"] = {RANDOM: random_model}
    for model, checkpoint in checkpoints.items():
        suite["models"][model] = {"module": "atst_hear.hear.frame", "checkpoint": str(checkpoint)}
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return suite


def effective_ranks(checkpoints: dict[str, Path], demo_tasks: Path) -> dict[str, float]:
    import torch

    from atst_hear.audio import read_audio
    from atst_hear.bench.online_probe import effective_rank
    from atst_hear.hear import frame

    files = [
        path
        for task in RANK_TASKS
        for path in sorted((demo_tasks / task / "16000" / "test").glob("*.wav"))
    ]
    waves = [read_audio(path) for path in files]
    models = {RANDOM: None, **checkpoints}
    ranks = {}
    for name, checkpoint in models.items():
        options = {"random_init": "tiny", "seed": 0} if checkpoint is None else {}
        model = frame.load_model(None if checkpoint is None else str(checkpoint), **options)
        with torch.no_grad():
            width = model.encoder.config.width
            scene = torch.cat([frame.get_scene_embeddings(w[None], model) for w in waves])
        ranks[name] = effective_rank(scene[:, -width:])
    return ranks


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of each task's primary score over seeds (and folds), per model."""
    grouped = scores.groupby(["model", "task", "metric"])["value"]
    return grouped.agg(["mean", "std", "count"]).reset_index()


def split_model(model: str) -> tuple[str, int]:
    if model == RANDOM:
        return RANDOM, 0
    run, _, step = model.rpartition(STEP_MARK)
    return run, int(step)


def write_table(summary: pd.DataFrame, ranks: dict, config: dict, runs: list[str], out: Path):
    tasks = sorted(summary["task"].unique())
    base = summary[summary["model"] == RANDOM].set_index("task")
    lines = [
        "| run | " + " | ".join(tasks) + " | above random | eff. rank |",
        "|---" * (len(tasks) + 3) + "|",
    ]

    def cells(model: str) -> tuple[list[str], int]:
        rows = summary[summary["model"] == model].set_index("task")
        texts, above = [], 0
        for task in tasks:
            mean, std = rows.loc[task, "mean"], rows.loc[task, "std"]
            texts.append(f"{mean:.3f} ± {std:.3f}")
            above += bool(mean > base.loc[task, "mean"])
        return texts, above

    random_cells, _ = cells(RANDOM)
    lines.append(f"| random init | {' | '.join(random_cells)} | – | {ranks[RANDOM]:.1f} |")
    above_counts = {}
    for run in runs:
        model = f"{run}{STEP_MARK}{config['runs'][run].get('steps', config['steps'])}"
        texts, above = cells(model)
        above_counts[run] = above
        lines.append(f"| {run} | {' | '.join(texts)} | {above}/{len(tasks)} | {ranks[model]:.1f} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return above_counts


def plot_curves(summary: pd.DataFrame, runs: list[str], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted(summary["task"].unique())
    columns = 3
    fig, axes = plt.subplots(2, columns, figsize=(11, 6), sharex=True)
    palette = plt.get_cmap("tab20")  # more runs than tab10 has colours: dark hues first
    colours = [palette(i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]
    parsed = summary.assign(
        run=[split_model(m)[0] for m in summary["model"]],
        step=[split_model(m)[1] for m in summary["model"]],
    )
    for ax, task in zip(axes.flat, tasks):
        rows = parsed[parsed["task"] == task]
        start = rows[rows["run"] == RANDOM]
        level, spread = float(start["mean"].iloc[0]), float(start["std"].iloc[0])
        ax.axhline(level, color="black", linestyle=":", linewidth=1, label="random init ± std")
        ax.axhspan(level - spread, level + spread, color="black", alpha=0.08, linewidth=0)
        for index, run in enumerate(runs):
            curve = pd.concat([start, rows[rows["run"] == run]]).sort_values("step")
            ax.plot(curve["step"], curve["mean"], marker=".", color=colours[index % 20], label=run)
        ax.set_title(f"{task} ({rows['metric'].iloc[0]})")
        ax.set_xlabel("pre-training step")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("tiny ATST-Frame teacher, paper-linear probe (mean of 3 seeds)")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks/pretrain_ablations.yaml")
    parser.add_argument("--runs", help="comma-separated run names (default: all)")
    parser.add_argument("--demo-tasks", type=Path, default=ROOT / "demo-tasks")
    parser.add_argument("--work", type=Path, default=ROOT / "runs/pretrain-ablations")
    parser.add_argument("--out", type=Path, default=ROOT / "results/pretrain_ablations")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = yaml.safe_load(args.config.read_text())
    runs = list(config["runs"]) if args.runs is None else args.runs.split(",")
    unknown = sorted(set(runs) - set(config["runs"]))
    if unknown:
        parser.error(f"unknown runs {unknown}; {args.config} defines {sorted(config['runs'])}")
    started = time.monotonic()
    atst("demo-tasks", str(args.demo_tasks))
    sources = corpus_sources(config, args.demo_tasks.resolve(), args.work.resolve())
    checkpoints, wall = {}, {}
    for name in runs:
        run = config["runs"][name]
        folder = pretrain(name, run, sources[run["data"]], config, args.work.resolve())
        wall[name] = float((folder / "wall_seconds.txt").read_text())
        for step in run.get("probe_steps", config["probe_steps"]):
            checkpoints[f"{name}{STEP_MARK}{step}"] = (
                folder / "checkpoints" / f"step-{step:08d}.ckpt"
            )
    suite_path = args.work / "suite.yaml"
    suite = probe_suite(checkpoints, args.demo_tasks.resolve(), suite_path)
    bench_out = args.work / "probe"
    atst("bench", "--suite", str(suite_path), "--out", str(bench_out), "--quiet", "--device", "cpu")
    scores = pd.read_csv(bench_out / "scores.csv")
    summary = summarise(scores)
    ranks = effective_ranks(checkpoints, args.demo_tasks.resolve())

    args.out.mkdir(parents=True, exist_ok=True)
    above = write_table(summary, ranks, config, runs, args.out)
    plot_curves(summary, runs, args.out)
    first = scores.iloc[0]
    record = {
        "toolkit_version": str(first["toolkit_version"]),
        "git_commit": str(first["git_commit"]),
        "protocol": str(first["protocol"]),
        "protocol_version": int(first["protocol_version"]),
        "probe_params": suite["protocols"][0]["params"],
        "seeds": suite["seeds"],
        "config": config,
        "runs": runs,
        "pretrain_wall_seconds": wall,
        "tasks_above_random_at_last_step": above,
        "effective_rank": ranks,
        "scores": summary.to_dict(orient="records"),
        "seconds_this_invocation": round(time.monotonic() - started, 1),  # reuse makes it short
    }
    (args.out / "summary.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    shutil.copy(args.config, args.out / "config.yaml")
    log.info("wrote %s (%.0f s)", args.out, record["seconds_this_invocation"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
