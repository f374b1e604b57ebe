"""``atst-hear distill`` with the ``[train]`` extra alone: no metric library of ``[bench]``."""

from __future__ import annotations

import subprocess
import sys

# the [bench] extra's libraries (and what they pull in), which a [train]-only install lacks:
# import names, then distribution names
BENCH_ONLY = {
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "pandas": "pandas",
    "sed_eval": "sed_eval",
    "psds_eval": "psds_eval",
    "sed_scores_eval": "sed_scores_eval",
    "dcase_util": "dcase_util",
    "matplotlib": "matplotlib",
}

# runs the CLI as if the BENCH_ONLY libraries were not installed: a None entry in sys.modules
# makes ``import`` fail and ``importlib.util.find_spec`` return None, and their distributions
# are not found (torchmetrics, under lightning, imports scipy and matplotlib when it finds them)
RUN_WITHOUT_BENCH = """
import importlib.metadata
import sys

modules, distributions = (value.split(",") for value in sys.argv[1:3])
sys.modules.update(dict.fromkeys(modules))
from_name = importlib.metadata.Distribution.from_name.__func__


def hidden_from_name(cls, name):
    if name.lower().replace("-", "_") in distributions:
        raise importlib.metadata.PackageNotFoundError(name)
    return from_name(cls, name)


importlib.metadata.Distribution.from_name = classmethod(hidden_from_name)
from atst_hear.cli import main

sys.exit(main(sys.argv[3:]))
"""


def run_cli_without_bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_WITHOUT_BENCH,
            ",".join(BENCH_ONLY),
            ",".join(name.replace("-", "_") for name in BENCH_ONLY.values()),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_distill_help_needs_no_bench_library():
    done = run_cli_without_bench("distill", "--help")
    assert done.returncode == 0, done.stderr
    assert "--clip-teacher" in done.stdout


def test_two_step_distillation_needs_no_bench_library(tmp_path, official_fixtures, make_tone_task):
    # 12 training clips in batches of 6, one epoch: 2 steps for the teacher, 2 for the student
    task = make_tone_task(
        tmp_path / "task", {"train": 12, "valid": 6, "test": 6}, evaluation=("top1_acc",)
    )
    out = tmp_path / "c2f"
    settings = ["epochs=1", "warmup_epochs=0", "batch_size=6", "num_workers=0", "mixup=true"]
    done = run_cli_without_bench(
        "distill",
        "--clip-teacher", str(official_fixtures / "clip_tiny.ckpt"),
        "--frame-student", str(official_fixtures / "frame_tiny.ckpt"),
        "--task", str(task),
        "--out", str(out),
        "--finetune-teacher",
        "--accelerator", "cpu",
        "--quiet",
        *[arg for setting in settings for arg in ("--set", setting)],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "c2f.ckpt").is_file() and (out / "scores.json").is_file()
