"""Naive baseline on the demo suite: how hard is each demo task without any learned embedding?

Scene tasks: the mean and standard deviation over time of each of 64 log-mel bands (128
numbers per clip), standardised, into a scikit-learn logistic regression (one-vs-rest for the
multilabel task), its C chosen on the validation split; k-fold tasks rotate like hear-eval-kit
(test fold i, validate on fold i+1, train on the rest) and report the mean over folds.

Event task: the same mean/std features over a 110 ms window around every 40 ms frame, relative
to the file's background level, into a one-vs-rest logistic regression per frame; then
hear-eval-kit's post-processing (250 ms median filter, threshold 0.5, events shorter than
125 ms dropped) for the sed_eval scores, and the median-filtered frame scores for PSDS.

Every score in a task's ``evaluation`` list is computed by ``atst_hear.tasks.scores``, as the
benchmark runner computes it.

    .venv/bin/python benchmarks/demo_baseline.py [TASKS_DIR] [--seed N] [--tasks NAME ...]

generates the suite into TASKS_DIR (default ``demo-tasks``) if it is not there yet and prints
a Markdown table: a task is a useful demo when the baseline is clearly above chance and
clearly below 100 %.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torchaudio
from scipy.ndimage import uniform_filter1d
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from atst_hear.audio import SAMPLE_RATE, read_audio
from atst_hear.bench.demo.suite import MANIFEST_FILE, generate_suite
from atst_hear.tasks.clip_metrics import mean_average_precision
from atst_hear.tasks.decoding import FrameScores
from atst_hear.tasks.folder import TaskFolder
from atst_hear.tasks.scores import EventPredictions, compute_scores

C_GRID = (0.01, 0.1, 1.0, 10.0)
HOP_MS = 10.0
EVENT_FRAME_STEP = 4  # event predictions every 40 ms, as ATST-Frame's tokens
EVENT_CONTEXT = 11  # frames (110 ms) summarised around each prediction
MEDIAN_FILTER_MS = 250.0
MIN_EVENT_MS = 125.0
EXTRA_SCORES = ("frame_mAP",)  # printed after the task's own evaluation scores

# the ATST front-end's mel constants, so the baseline sees what the models see
MEL = torchaudio.transforms.MelSpectrogram(
    SAMPLE_RATE, n_fft=1024, win_length=1024, hop_length=160, f_min=60, f_max=7800, n_mels=64
)


def log_mel(path: Path) -> np.ndarray:
    """``[64, T]`` log-mel energies (dB) of one file."""
    with torch.no_grad():
        mel = MEL(read_audio(path))
    return (10.0 * torch.log10(mel + 1e-10)).numpy()


def mean_std(mel: np.ndarray) -> np.ndarray:
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1)])


def targets(task: TaskFolder, labels: list[list[str]]) -> np.ndarray:
    """``[n, classes]`` one-hot (multiclass) or multi-hot (multilabel) targets."""
    matrix = np.zeros((len(labels), len(task.labels)))
    for row, items in enumerate(labels):
        matrix[row, [task.label_index[label] for label in items]] = 1
    return matrix


def classifier(c: float, multilabel: bool):
    linear = LogisticRegression(C=c, max_iter=3000)
    return make_pipeline(StandardScaler(), OneVsRestClassifier(linear) if multilabel else linear)


def fit(task: TaskFolder, x: np.ndarray, y: np.ndarray, c: float):
    model = classifier(c, task.is_multilabel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter at large C
        return model.fit(x, y if task.is_multilabel else y.argmax(axis=1))


def probabilities(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``[n, n_classes]`` scores, with zero columns for classes absent from training."""
    proba = model.predict_proba(x)
    if proba.shape[1] == n_classes:
        return proba
    full = np.zeros((len(x), n_classes))
    full[:, model.classes_] = proba
    return full


def fit_on_valid(task: TaskFolder, train, valid, score):
    """The classifier whose C gives the best ``score(predictions, targets)`` on ``valid``."""
    models = [fit(task, *train, c) for c in C_GRID]
    scores = [score(probabilities(m, valid[0], len(task.labels)), valid[1]) for m in models]
    return models[int(np.argmax(scores))]


# --- scene tasks ----------------------------------------------------------------------------
def scene_scores(task: TaskFolder) -> dict[str, float]:
    data = {}
    for split in task.splits:
        files = task.split_labels(split)
        x = np.stack([mean_std(log_mel(task.audio_path(split, f))) for f in files])
        data[split] = (x, targets(task, list(files.values())))
    if task.is_kfold:
        rotations = [
            (
                [s for j, s in enumerate(task.splits) if j not in (i, (i + 1) % len(task.splits))],
                task.splits[(i + 1) % len(task.splits)],
                task.splits[i],
            )
            for i in range(len(task.splits))
        ]
    else:
        rotations = [(["train"], "valid", "test")]
    primary = task.primary_score
    runs = []
    for train_splits, valid_split, test_split in rotations:
        train = tuple(np.concatenate([data[s][k] for s in train_splits]) for k in range(2))
        model = fit_on_valid(
            task, train, data[valid_split], lambda p, y: compute_scores([primary], p, y)[primary]
        )
        x_test, y_test = data[test_split]
        predictions = probabilities(model, x_test, len(task.labels))
        runs.append(compute_scores(task.evaluation, predictions, y_test))
    summary = {name: float(np.mean([run[name] for run in runs])) for name in runs[0]}
    if len(runs) > 1:
        summary |= {f"{name}_std": float(np.std([run[name] for run in runs])) for name in runs[0]}
    return summary


def scene_chance(task: TaskFolder) -> float:
    """Accuracy of always answering the most frequent test class; for multilabel, the mAP of
    constant scores (the mean prevalence of the classes)."""
    test = task.splits[0] if task.is_kfold else "test"
    y = targets(task, list(task.split_labels(test).values()))
    prevalence = y.mean(axis=0)
    return float(prevalence.mean() if task.is_multilabel else prevalence.max())


# --- event task -----------------------------------------------------------------------------
def frame_features(mel: np.ndarray) -> np.ndarray:
    """``[frames, 128]``: mean and std over a window around every EVENT_FRAME_STEP-th frame,
    relative to the file's median level per band (its background)."""
    mel = mel - np.median(mel, axis=1, keepdims=True)
    mean = uniform_filter1d(mel, EVENT_CONTEXT, axis=1, mode="nearest")
    square = uniform_filter1d(mel**2, EVENT_CONTEXT, axis=1, mode="nearest")
    std = np.sqrt(np.maximum(square - mean**2, 0.0))
    return np.concatenate([mean, std])[:, ::EVENT_FRAME_STEP].T


def frame_times_ms(n_frames: int) -> np.ndarray:
    return np.arange(n_frames) * EVENT_FRAME_STEP * HOP_MS


def event_split(task: TaskFolder, split: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``(features, frame targets)`` of every file, by file name."""
    data = {}
    for name, events in task.split_labels(split).items():
        x = frame_features(log_mel(task.audio_path(split, name)))
        times = frame_times_ms(len(x))
        y = np.zeros((len(x), len(task.labels)))
        for event in events:
            y[(times >= event.start) & (times < event.end), task.label_index[event.label]] = 1
        data[name] = (x, y)
    return data


def stacked(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.concatenate([pair[k] for pair in data.values()]) for k in range(2))


def frame_map(predictions: np.ndarray, targets: np.ndarray) -> float:
    return mean_average_precision(predictions, targets, skip_classes_without_positives=True)


def event_scores(task: TaskFolder) -> dict[str, float]:
    train, valid = stacked(event_split(task, "train")), stacked(event_split(task, "valid"))
    model = fit_on_valid(task, train, valid, frame_map)
    test = event_split(task, "test")
    hop = EVENT_FRAME_STEP * HOP_MS
    frame_scores = FrameScores(
        list(task.labels),
        hop,
        {name: probabilities(model, x, len(task.labels)) for name, (x, _) in test.items()},
        {name: frame_times_ms(len(x)) for name, (x, _) in test.items()},
    ).median_filtered(int(round(MEDIAN_FILTER_MS / hop)))
    durations = {name: 1000.0 * task.sample_duration for name in test}
    events = {
        name: [e for e in found if e.end - e.start >= MIN_EVENT_MS]
        for name, found in frame_scores.decode(0.5, durations).items()
    }
    reference = task.split_labels("test")
    scores = compute_scores(
        task.evaluation,
        EventPredictions(events, reference, list(task.labels), frame_scores, durations),
    )
    frame_targets = stacked(test)[1]
    frame_predictions = np.concatenate(list(frame_scores.scores.values()))
    return scores | {"frame_mAP": frame_map(frame_predictions, frame_targets)}


# --- main -----------------------------------------------------------------------------------
def table_row(task: TaskFolder) -> str:
    """One Markdown row: the task's shape, chance level, primary score and other scores."""
    if task.is_event:
        scores, chance = event_scores(task), "~0"
    else:
        scores, chance = scene_scores(task), f"{scene_chance(task):.3f}"
    primary = f"{task.primary_score} {scores[task.primary_score]:.3f}"
    if f"{task.primary_score}_std" in scores:
        primary += f" ± {scores[f'{task.primary_score}_std']:.3f}"
    others = ", ".join(
        f"{name} {scores[name]:.3f}"
        for name in [*task.evaluation[1:], *EXTRA_SCORES]
        if name in scores
    )
    shape = f"{task.embedding_type} {task.prediction_type} {task.split_mode}"
    return f"| {task.name} | {shape} | {len(task.labels)} | {chance} | {primary} | {others} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks_dir", nargs="?", default="demo-tasks", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="suite seed if it must be generated")
    parser.add_argument("--tasks", nargs="+", metavar="NAME", help="only these tasks")
    args = parser.parse_args(argv)
    if not (args.tasks_dir / MANIFEST_FILE).is_file():
        generate_suite(args.tasks_dir, seed=args.seed)
    manifest = json.loads((args.tasks_dir / MANIFEST_FILE).read_text())
    names = [entry["name"] for entry in manifest["tasks"]]
    unknown = sorted(set(args.tasks or ()) - set(names))
    if unknown:
        parser.error(f"{args.tasks_dir / MANIFEST_FILE} lists no tasks {unknown}")
    print(
        f"naive log-mel mean/std + logistic regression on {args.tasks_dir} "
        f"(suite seed {manifest['seed']}, scale {manifest['scale']:g})\n"
    )
    rows = [
        "| task | shape | classes | chance | baseline | other scores |",
        "|---|---|---|---|---|---|",
    ]
    # many-threaded BLAS makes these small fits ~50x slower on a busy 2-core machine
    with threadpool_limits(1):
        for name in names:
            if args.tasks is None or name in args.tasks:
                started = time.perf_counter()
                rows.append(table_row(TaskFolder.open(args.tasks_dir / name)))
                print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
