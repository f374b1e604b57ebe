"""Tiny generated HEAR task folders for benchmark tests.

``make_task(kind, ...)`` writes a task folder under the test's ``tmp_path`` and returns its path.
Every label is a pure tone of its own frequency over a little noise, so even the log-mel baseline
separates the classes and a working protocol scores well above chance:

* ``"multiclass"``: trainvaltest, one tone per clip;
* ``"multilabel"``: trainvaltest, clips mix one to two tones (and some are silent noise);
* ``"kfold"``: multiclass with ``n_folds`` folds (``presplit_kfold``);
* ``"event"``: trainvaltest event task, tone bursts at known times (ms) in longer clips;
  ``weak_clips=n`` adds DESED-style weakly labelled splits ``weak_train`` / ``weak_valid`` (n
  clips each, labels in ``weak_labels.json``, named by ``weak_splits`` / ``weak_label_file``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from atst_hear.audio import SAMPLE_RATE, write_wav
from atst_hear.tasks.folder import Event
from atst_hear.tasks.writing import task_metadata, write_task_files

LABELS = ("high", "low", "mid")
FREQUENCIES = {"high": 2400.0, "low": 300.0, "mid": 900.0}


def tone_clip(
    duration_s: float,
    events: list[tuple[str, float, float]],
    rng: np.random.Generator,
) -> torch.Tensor:
    """Noise with a tone for each ``(label, start_ms, end_ms)``."""
    n = int(round(duration_s * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    wave = 0.02 * rng.standard_normal(n)
    for label, start_ms, end_ms in events:
        a, b = int(start_ms * SAMPLE_RATE / 1000), int(end_ms * SAMPLE_RATE / 1000)
        phase = rng.uniform(0, 2 * np.pi)
        wave[a:b] += 0.3 * np.sin(2 * np.pi * FREQUENCIES[label] * t[a:b] + phase)
    return torch.from_numpy(wave.astype(np.float32))


def _scene_split(folder, split, n, duration, rng, multilabel):
    labels = {}
    for i in range(n):
        if multilabel:
            k = i % 4  # 0: silence, 1-2 labels otherwise
            chosen = [] if k == 0 else list(rng.choice(LABELS, size=min(k, 2), replace=False))
        else:
            chosen = [LABELS[i % len(LABELS)]]
        name = f"{split}_{i:03d}.wav"
        wave = tone_clip(duration, [(c, 0.0, duration * 1000) for c in chosen], rng)
        write_wav(folder / str(SAMPLE_RATE) / split / name, wave, SAMPLE_RATE)
        labels[name] = [str(c) for c in chosen]
    return labels


def _event_split(folder, split, n, duration, rng):
    labels = {}
    for i in range(n):
        events = []
        if i % 5 != 4:  # every fifth clip has no event at all
            for label in rng.choice(LABELS, size=2, replace=False):
                start = float(rng.uniform(0, duration * 1000 - 700))
                events.append(
                    (str(label), round(start, 1), round(start + rng.uniform(300, 600), 1))
                )
        name = f"{split}_{i:03d}.wav"
        write_wav(
            folder / str(SAMPLE_RATE) / split / name, tone_clip(duration, events, rng), SAMPLE_RATE
        )
        labels[name] = [Event(label, start, end) for label, start, end in events]
    return labels


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # the small heads of these tests run fastest single-threaded, and CI cores are shared
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def make_task(tmp_path):
    counter = iter(range(1000))

    def make(
        kind: str = "multiclass",
        name: str | None = None,
        n_train: int = 12,
        n_eval: int = 6,
        duration: float | None = None,
        n_folds: int = 3,
        seed: int = 0,
        root: Path | None = None,
        weak_clips: int = 0,
    ) -> Path:
        rng = np.random.default_rng(seed)
        name = name or f"toy_{kind}_{next(counter)}"
        folder = (root or tmp_path / "tasks") / name
        event = kind == "event"
        duration = duration or (3.0 if event else 0.5)
        evaluation = {
            "multiclass": ["top1_acc", "mAP", "d_prime", "aucroc"],
            "kfold": ["top1_acc", "mAP"],
            "multilabel": ["mAP", "d_prime", "aucroc", "top1_acc"],
            "event": ["event_onset_200ms_fms", "segment_1s_er"],
        }[kind]
        if kind == "kfold":
            splits = [f"fold{i:02d}" for i in range(n_folds)]
            sizes = {s: n_eval for s in splits}
        else:
            splits = ["train", "valid", "test"]
            sizes = {"train": n_train, "valid": n_eval, "test": n_eval}
        split_labels = {}
        for split in splits:
            if event:
                split_labels[split] = _event_split(folder, split, sizes[split], duration, rng)
            else:
                split_labels[split] = _scene_split(
                    folder, split, sizes[split], duration, rng, kind == "multilabel"
                )
        extra = {}
        if weak_clips:
            weak = {}
            for split in ("weak_train", "weak_valid"):
                strong = _event_split(folder, split, weak_clips, duration, rng)
                weak[split] = {f: sorted({e.label for e in events}) for f, events in strong.items()}
            (folder / "weak_labels.json").write_text(json.dumps(weak))
            extra = {
                "weak_label_file": "weak_labels.json",
                "weak_splits": ["weak_train", "weak_valid"],
            }
        metadata = task_metadata(
            task_name=name,
            embedding_type="event" if event else "scene",
            prediction_type="multilabel" if kind in ("multilabel", "event") else "multiclass",
            split_mode="presplit_kfold" if kind == "kfold" else "trainvaltest",
            splits=splits,
            sample_duration=duration,
            evaluation=evaluation,
            **extra,
        )
        write_task_files(folder, metadata, split_labels, labels=LABELS)
        return folder

    return make
