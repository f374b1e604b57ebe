"""Clip-level scores of ``predictions`` (``[N, C]`` class scores) against ``targets`` (``[N, C]``
one- or multi-hot), with hear-eval-kit's formulas: scikit-learn for mAP and ROC-AUC, scipy for
d-prime (each imported inside the score, so top-1 accuracy needs only numpy)."""

from __future__ import annotations

import warnings

import numpy as np


def _check_matrix_pair(predictions: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, ...]:
    predictions, targets = np.asarray(predictions, dtype=np.float64), np.asarray(targets)
    if predictions.ndim != 2 or predictions.shape != targets.shape:
        raise ValueError(
            f"predictions and targets must both be [n_clips, n_classes]; got "
            f"{predictions.shape} and {targets.shape}"
        )
    if len(predictions) == 0:
        raise ValueError("cannot score an empty set of predictions")
    return predictions, targets


def top1_accuracy(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of clips whose highest-scoring class is the target's (first) class."""
    predictions, targets = _check_matrix_pair(predictions, targets)
    return float(np.mean(predictions.argmax(axis=1) == targets.argmax(axis=1)))


def chroma_accuracy(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy ignoring octave errors: class indices compared modulo 12 (NSynth pitch)."""
    predictions, targets = _check_matrix_pair(predictions, targets)
    return float(np.mean(predictions.argmax(axis=1) % 12 == targets.argmax(axis=1) % 12))


def mean_average_precision(
    predictions: np.ndarray, targets: np.ndarray, skip_classes_without_positives: bool = False
) -> float:
    """Macro-averaged average precision (scikit-learn).

    hear-eval-kit averages over every class, including classes with no positive clip (whose AP
    scikit-learn sets to 0); the ATST paper's linear evaluation drops those classes
    (``skip_classes_without_positives=True``).
    """
    from sklearn.metrics import average_precision_score

    predictions, targets = _check_matrix_pair(predictions, targets)
    if skip_classes_without_positives:
        present = targets.sum(axis=0) > 0
        if not present.any():
            return float("nan")
        predictions, targets = predictions[:, present], targets[:, present]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive class found")
        return float(average_precision_score(targets, predictions, average="macro"))


def d_prime(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of ``sqrt(2) * Phi^-1(AUC)``; NaN when some class's AUC is undefined.

    Like hear-eval-kit, a class with AUC 1 makes the score ``inf``.
    """
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    predictions, targets = _check_matrix_pair(predictions, targets)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auc = roc_auc_score(targets, predictions, average=None)
    except ValueError:
        return float("nan")
    with np.errstate(invalid="ignore"):  # AUC 1 and 0 in one task: inf - inf = NaN, as in hear
        return float(np.mean(stats.norm().ppf(auc) * np.sqrt(2.0)))


def aucroc(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Macro ROC-AUC (scikit-learn); NaN when some class's AUC is undefined."""
    from sklearn.metrics import roc_auc_score

    predictions, targets = _check_matrix_pair(predictions, targets)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(roc_auc_score(targets, predictions, average="macro"))
    except ValueError:
        return float("nan")
