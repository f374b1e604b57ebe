"""Speed of one pre-training step of the tiny ATST-Frame recipe on CPU, part by part.

Two measurements of the shipped ``frame-tiny`` recipe (batch 32, 1 s crops) on generated audio:

* ``parts``: the step taken apart by hand, each part timed on its own: ``data`` (decode and crop
  one batch; in training a data-loader worker does this beside the step), ``views`` (front-end,
  mixup, frequency random-resize-crop, block masks), ``teacher`` (forward, no gradient),
  ``student`` (forward and loss), ``backward``, ``optimizer`` (AdamW) and ``ema``;
* ``trainer``: steps/s of :func:`run_pretraining` itself (the Lightning loop with logging,
  checkpoints and the data worker): the median time from one step's start to the next's.
  ``other`` is the trainer's step time minus the parts it runs in-process;
* ``optimizer_ab``: the AdamW step of the tiny student as ``torch.optim.AdamW`` runs it by
  default on CPU (a loop over tensors) and fused (``fused=True``, what training uses), the two
  interleaved in one process.

``--before REF`` also measures the package as committed at ``REF`` (``git archive``), in
subprocesses interleaved with the working tree (before, after, before, after, ...), because
timings on a shared machine drift; every measurement records the load average around it.

    .venv/bin/python benchmarks/bench_pretrain.py --before HEAD --out results/bench_pretrain.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("data", "views", "teacher", "student", "backward", "optimizer", "ema")
IN_STEP = PARTS[1:]  # what the trainer's process does itself (data comes from a worker)


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def write_audio(folder: Path, n_files: int) -> None:
    import numpy as np

    from atst_hear.audio import SAMPLE_RATE, write_wav

    rng = np.random.default_rng(0)
    for index in range(n_files):
        seconds = rng.uniform(1.0, 1.25)  # the demo suite's clip lengths
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        wave = 0.3 * np.sin(2 * np.pi * (200 + 40 * index) * t) + 0.02 * rng.standard_normal(len(t))
        write_wav(folder / f"clip{index:03d}.wav", wave.astype(np.float32), SAMPLE_RATE)


def compare_adamw(student, repeats: int) -> dict[str, float]:
    """Median seconds of one AdamW step over the student's parameters: default vs fused."""
    import torch

    params = [p for p in student.parameters() if p.requires_grad]
    for param in params:
        param.grad = torch.randn_like(param)
    variants = {
        name: torch.optim.AdamW(params, lr=1e-3, weight_decay=0.04, **options)
        for name, options in (("default", {}), ("fused", {"fused": True}))
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats + 1):
        for name, optimizer in variants.items():
            start = time.perf_counter()
            optimizer.step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def measure(steps: int, warmup: int, trainer_steps: int) -> dict:
    """One measurement of the package on ``sys.path`` (run in a subprocess by ``main``)."""
    import lightning as L
    import numpy as np
    import torch

    from atst_hear.pretrain import training
    from atst_hear.pretrain.data import PretrainDataModule, open_source
    from atst_hear.pretrain.heads import ema_update, symmetric_byol_loss
    from atst_hear.pretrain.module import PretrainModule
    from atst_hear.pretrain.recipes import load_recipe
    from atst_hear.pretrain.training import Hardware, run_pretraining

    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    write_audio(work / "audio", 64)
    load_before = load_average()
    recipe = load_recipe(flavour="frame", arch="tiny", overrides={"warmup_steps": 5})

    # --- parts ----------------------------------------------------------------------------
    L.seed_everything(0, verbose=False)
    module = PretrainModule(recipe)
    module.train()
    optimizer = module.configure_optimizers()
    for group in optimizer.param_groups:
        group["lr"], group["weight_decay"] = 1e-3, 0.04 if group.get("name") == "decayed" else 0.0
    data = PretrainDataModule(
        open_source([str(work / "audio")]),
        recipe.crop_lengths(),
        recipe.batch_size,
        0,
        recipe.seed,
    )
    batches = iter(data.train_dataloader())
    generator = torch.Generator().manual_seed(0)
    times: dict[str, list[float]] = {part: [] for part in PARTS}
    model = module.model
    for step in range(warmup + steps):
        clock = {}
        start = time.perf_counter()
        batch = next(batches)
        clock["data"] = time.perf_counter()
        views = module.views(batch["waves"][0], generator)
        clock["views"] = time.perf_counter()
        mask = views.token_mask
        with torch.no_grad():
            teacher_x = model.teacher.encoder(views.mel)[-1]
            teacher = model.teacher.represent(model.teacher.encoder.final_norm(teacher_x)[mask])
        clock["teacher"] = time.perf_counter()
        student_x = model.student.encoder(views.mel, token_mask=mask)[-1]
        student = model.student.represent(model.student.encoder.final_norm(student_x)[mask])
        half = len(student) // 2
        loss = symmetric_byol_loss(
            (student[:half], student[half:]), (teacher[:half], teacher[half:])
        )
        clock["student"] = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        clock["backward"] = time.perf_counter()
        optimizer.step()
        clock["optimizer"] = time.perf_counter()
        ema_update(*model.ema_pairs(), 0.99)
        clock["ema"] = time.perf_counter()
        if step >= warmup:
            previous = start
            for part in PARTS:
                times[part].append(clock[part] - previous)
                previous = clock[part]
    parts = {part: statistics.median(values) for part, values in times.items()}
    optimizer_ab = compare_adamw(model.student, steps)

    # --- the trainer ----------------------------------------------------------------------
    starts: list[float] = []

    class StepClock(L.Callback):
        def on_train_batch_start(self, *args) -> None:
            starts.append(time.perf_counter())

    build_trainer = training.build_trainer

    def timed_trainer(out_dir, hardware, callbacks, *rest, **limits):
        return build_trainer(out_dir, hardware, [*callbacks, StepClock()], *rest, **limits)

    training.build_trainer = timed_trainer
    timed = load_recipe(
        flavour="frame",
        arch="tiny",
        overrides={"warmup_steps": 1, "max_steps": warmup + 1 + trainer_steps},
    )
    run_pretraining(timed, [str(work / "audio")], work / "run", Hardware("cpu", 1), progress=False)
    # start to start: everything the loop does per step, the median of the timed steps
    step_seconds = statistics.median(np.diff(starts[warmup:]))
    in_step = sum(parts[part] for part in IN_STEP)
    return {
        "parts_s": parts,
        "trainer_step_s": step_seconds,
        "trainer_steps_per_s": 1.0 / step_seconds,
        "other_s": step_seconds - in_step,
        "optimizer_ab_s": optimizer_ab,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "torch_threads": torch.get_num_threads(),
        "package": str(Path(__import__("atst_hear").__file__).parent),
    }


def shares(result: dict) -> dict[str, float]:
    """Share of the trainer's step time of each in-process part and of the rest."""
    total = result["trainer_step_s"]
    out = {part: result["parts_s"][part] / total for part in IN_STEP}
    out["other"] = result["other_s"] / total
    return out


def summarise(results: list[dict]) -> dict:
    step = statistics.median(r["trainer_step_s"] for r in results)
    parts = {p: statistics.median(r["parts_s"][p] for r in results) for p in PARTS}
    merged = {
        "trainer_step_s": step,
        "parts_s": parts,
        "other_s": step - sum(parts[p] for p in IN_STEP),
    }
    return {
        "trainer_steps_per_s": 1.0 / step,
        "trainer_step_s": step,
        "parts_s": parts,
        "share_of_step": shares(merged),
        "optimizer_ab_s": {
            name: statistics.median(r["optimizer_ab_s"][name] for r in results)
            for name in results[0]["optimizer_ab_s"]
        },
        "rounds": len(results),
    }


def run_tree(tree: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure",
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--trainer-steps",
        str(args.trainer_steps),
    ]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"measurement in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps of the parts loop")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--trainer-steps", type=int, default=20, help="timed trainer steps")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per tree")
    parser.add_argument("--before", metavar="REF", help="also measure the package at git REF")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.steps, args.warmup, args.trainer_steps)))
        return 0
    trees = {"after": ROOT}
    before_commit = None
    if args.before:
        # a name such as HEAD moves as work is committed: record what it meant
        before_commit = subprocess.run(
            ["git", "rev-parse", args.before], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-before-") as before_dir:
        if args.before:
            archive = subprocess.run(
                ["git", "archive", before_commit, "atst_hear"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", before_dir], input=archive, check=True)
            trees = {"before": Path(before_dir), "after": ROOT}
        results: dict[str, list[dict]] = {name: [] for name in trees}
        for round_index in range(args.rounds):
            for name, tree in trees.items():
                result = run_tree(tree, args)
                results[name].append(result)
                print(
                    f"round {round_index + 1} {name}: {result['trainer_steps_per_s']:.2f} steps/s "
                    f"(load {result['load_average_before'][0]:.1f})",
                    flush=True,
                )
    report = {
        "benchmark": "tiny ATST-Frame pre-training step on CPU (benchmarks/bench_pretrain.py)",
        "recipe": "frame-tiny (batch 32, 1 s crops), generated 1-1.25 s clips",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "torch": __import__("torch").__version__,
        },
        "settings": {
            "steps": args.steps,
            "warmup": args.warmup,
            "trainer_steps": args.trainer_steps,
            "rounds": args.rounds,
            "before": args.before,
            "before_commit": before_commit,
        },
        "summary": {name: summarise(items) for name, items in results.items()},
        "measurements": results,
    }
    for name, summary in report["summary"].items():
        share = ", ".join(f"{k} {v:.0%}" for k, v in summary["share_of_step"].items())
        print(f"{name}: {summary['trainer_steps_per_s']:.2f} steps/s; {share}")
    if args.out:
        from atst_hear.fileio import write_json_atomic

        write_json_atomic(args.out, report)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
