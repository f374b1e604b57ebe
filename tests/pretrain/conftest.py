"""Generated audio, a tiny labelled task and small recipes for pre-training tests.

Audio: tones over noise, 0.6-1.2 s, mostly 16 kHz, some at 22.05 kHz (resampled on reading).
The tiny recipes keep the real machinery (tiny encoder, masks, mixup, EMA, schedules) but use
0.5 s crops, batches of 4 and narrow heads so a step takes a fraction of a second on CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atst_hear.audio import write_wav
from atst_hear.tasks.writing import task_metadata, write_task_files

TONES = {"low": 300.0, "mid": 900.0, "high": 2400.0}


def tone(frequency: float, seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * frequency * t) + 0.02 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def write_audio_folder(folder: Path, n_files: int = 12, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(n_files):
        rate = 22050 if index % 4 == 3 else 16000
        frequency = list(TONES.values())[index % len(TONES)] * (1 + 0.1 * index)
        path = folder / f"sub{index % 2}" / f"clip{index:02d}.wav"
        write_wav(path, tone(frequency, rng.uniform(0.6, 1.2), rate, rng), rate)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def audio_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pretrain-audio")
    write_audio_folder(folder)
    return folder


@pytest.fixture
def make_audio_folder():
    """``make_audio_folder(folder, n_files)``: writes generated clips into ``folder``."""
    return write_audio_folder


def tiny_overrides(**extra) -> dict:
    values = {
        "batch_size": 4,
        "learning_rate": 0.05,
        "warmup_steps": 2,
        "max_steps": 6,
        "head_hidden": 64,
        "head_out": 32,
        "crop_seconds": 0.5,
        "positive_seconds": 0.5,
        "mixup_memory": 16,
        "num_workers": 0,
        "checkpoint_every": 3,
        "log_every": 1,
    }
    values.update(extra)
    return values


def build_tiny_recipe(flavour: str = "frame", **extra):
    from atst_hear.pretrain.recipes import load_recipe

    return load_recipe(flavour=flavour, arch="tiny", overrides=tiny_overrides(**extra))


@pytest.fixture(scope="session")
def tiny_recipe():
    """``tiny_recipe(flavour, **overrides)``: the shipped tiny recipe, shrunk for tests."""
    return build_tiny_recipe


def write_tone_task(
    folder: Path,
    per_split: dict[str, int],
    seed: int = 0,
    evaluation: tuple[str, ...] = ("top1_acc", "mAP"),
) -> Path:
    """A multiclass trainvaltest task: each clip one tone (its label) over noise, 1 s."""
    rng = np.random.default_rng(seed)
    labels: dict[str, dict[str, list[str]]] = {}
    for split, count in per_split.items():
        labels[split] = {}
        for index in range(count):
            label = list(TONES)[index % len(TONES)]
            name = f"{split}{index:03d}.wav"
            write_wav(folder / "16000" / split / name, tone(TONES[label], 1.0, 16000, rng), 16000)
            labels[split][name] = [label]
    metadata = task_metadata(
        "tones", "scene", "multiclass", "trainvaltest", list(per_split), 1.0, list(evaluation)
    )
    write_task_files(folder, metadata, labels)
    return folder


@pytest.fixture(scope="session")
def make_tone_task():
    """``make_tone_task(folder, {split: n_clips})``: a three-tone multiclass task folder."""
    return write_tone_task
