"""Named scores, the names a task's ``evaluation`` may list: the one table of score names
(:data:`SCORE_SPECS`; :data:`SCORES` and :data:`HEAREVAL_SCORES` are read from it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .clip_metrics import aucroc, chroma_accuracy, d_prime, mean_average_precision, top1_accuracy
from .decoding import FrameScores
from .event_metrics import event_based_scores, segment_based_error_rate
from .folder import EventDict
from .psds import PSDS1, PSDS2, PSDSParams, intersection_f1, psds_eval_from_scores, psds_from_scores


@dataclass
class EventPredictions:
    """What event scores may need: decoded events, and frame scores for threshold-free scores."""

    events: EventDict
    reference: EventDict
    labels: list[str]
    frame_scores: FrameScores | None = None
    durations_ms: Mapping[str, float] | None = None

    def require_frame_scores(self, name: str) -> tuple[FrameScores, Mapping[str, float]]:
        if self.frame_scores is None or self.durations_ms is None:
            raise ValueError(f"score {name!r} needs frame scores and clip durations")
        return self.frame_scores, self.durations_ms


@dataclass(frozen=True)
class ScoreSpec:
    """A named score: ``compute`` returns one float or an ordered dict of sub-scores, the first
    being the score itself (hear-eval-kit's tuple scores)."""

    name: str
    compute: Callable[..., float | dict[str, float]]
    event: bool = False
    maximize: bool = True
    frame_scores: bool = False  # needs EventPredictions.frame_scores (threshold-free scores)
    hear_eval_kit: bool = True  # hear-eval-kit implements it too (heareval/score.py)


def _event_fms(t_collar: float, evaluate_offset: bool = False, percentage_of_length: float = 0.5):
    def compute(p: EventPredictions) -> dict[str, float]:
        scores = event_based_scores(
            p.events,
            p.reference,
            p.labels,
            t_collar=t_collar,
            evaluate_offset=evaluate_offset,
            percentage_of_length=percentage_of_length,
        )
        return {k: scores[k] for k in ("f_measure", "precision", "recall")}

    return compute


def _segment_er(p: EventPredictions) -> dict[str, float]:
    return {"error_rate": segment_based_error_rate(p.events, p.reference, p.labels)["error_rate"]}


def _psds_score(params: PSDSParams) -> Callable[[EventPredictions], float]:
    def compute(p: EventPredictions) -> float:
        frames, durations = p.require_frame_scores("psds")
        return psds_eval_from_scores(frames, p.reference, durations, params).value

    return compute


def _psds_exact_score(params: PSDSParams) -> Callable[[EventPredictions], float]:
    def compute(p: EventPredictions) -> float:
        frames, durations = p.require_frame_scores("psds")
        return psds_from_scores(frames, p.reference, durations, params).value

    return compute


def _intersection_f1_score(p: EventPredictions) -> float:
    frames, durations = p.require_frame_scores("intersection_f1")
    return intersection_f1(frames, p.reference, durations)


_ATST_HEAR_ONLY = {"event": True, "frame_scores": True, "hear_eval_kit": False}

SCORE_SPECS: dict[str, ScoreSpec] = {
    spec.name: spec
    for spec in (
        ScoreSpec("top1_acc", top1_accuracy),
        ScoreSpec("pitch_acc", top1_accuracy),
        ScoreSpec("chroma_acc", chroma_accuracy),
        ScoreSpec("mAP", mean_average_precision),
        ScoreSpec("d_prime", d_prime),
        ScoreSpec("aucroc", aucroc),
        ScoreSpec("event_onset_200ms_fms", _event_fms(0.2), event=True),
        ScoreSpec("event_onset_50ms_fms", _event_fms(0.05), event=True),
        ScoreSpec(
            "event_onset_offset_50ms_20perc_fms",
            _event_fms(0.05, evaluate_offset=True, percentage_of_length=0.2),
            event=True,
        ),
        ScoreSpec("segment_1s_er", _segment_er, event=True, maximize=False),
        # "psds1"/"psds2" are the ATST paper's protocol (psds_eval, 50 thresholds); the exact
        # sed_scores_eval values carry their library's name so the two never share a column
        ScoreSpec("psds1", _psds_score(PSDS1), **_ATST_HEAR_ONLY),
        ScoreSpec("psds2", _psds_score(PSDS2), **_ATST_HEAR_ONLY),
        ScoreSpec("psds1_sed_scores_eval", _psds_exact_score(PSDS1), **_ATST_HEAR_ONLY),
        ScoreSpec("psds2_sed_scores_eval", _psds_exact_score(PSDS2), **_ATST_HEAR_ONLY),
        ScoreSpec("intersection_f1", _intersection_f1_score, **_ATST_HEAR_ONLY),
    )
}

# what a task's "evaluation" may name; the scores hear-eval-kit implements come first
SCORES = tuple(SCORE_SPECS)
HEAREVAL_SCORES = tuple(name for name, spec in SCORE_SPECS.items() if spec.hear_eval_kit)


def score_spec(name: str) -> ScoreSpec:
    try:
        return SCORE_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown score {name!r}; known: {sorted(SCORE_SPECS)}") from None


def flatten_score(name: str, value: float | dict[str, float]) -> dict[str, float]:
    """hear-eval-kit's naming: ``name`` holds the main value, ``name_<sub>`` every sub-score."""
    if isinstance(value, dict):
        main = next(iter(value.values()))
        return {name: float(main), **{f"{name}_{k}": float(v) for k, v in value.items()}}
    return {name: float(value)}


# How a protocol averages mAP over classes: hear-eval-kit (and EVAR, with scikit-learn >= 1.1)
# counts a class without a positive clip in the evaluated split as AP 0; the ATST paper's
# evaluation (audiossl atst/downstream/utils.py Metric.compute) drops NaN APs, which is what
# scikit-learn < 1.1 returns for such classes (>= 1.1 returns 0, scikit-learn PR #19085)
MAP_ALL_CLASSES = "all-classes"
MAP_PRESENT_CLASSES = "present-classes"
MAP_CONVENTIONS = (MAP_ALL_CLASSES, MAP_PRESENT_CLASSES)


def clip_score(
    name: str, predictions: np.ndarray, targets: np.ndarray, map_convention: str = MAP_ALL_CLASSES
) -> float | dict[str, float]:
    """One clip-level score; ``mAP`` follows ``map_convention`` (see :data:`MAP_CONVENTIONS`)."""
    if map_convention not in MAP_CONVENTIONS:
        raise ValueError(f"unknown mAP convention {map_convention!r}; known: {MAP_CONVENTIONS}")
    if name == "mAP":
        return mean_average_precision(
            predictions,
            targets,
            skip_classes_without_positives=map_convention == MAP_PRESENT_CLASSES,
        )
    return score_spec(name).compute(predictions, targets)


def compute_scores(
    names: Iterable[str], *args: Any, map_convention: str = MAP_ALL_CLASSES
) -> dict[str, float]:
    """Every named score on the same inputs, flattened; the first name is the primary score.

    Clip-level inputs are ``(predictions, targets)``; ``map_convention`` sets how ``mAP``
    treats classes without positives (event scores take one ``EventPredictions``)."""
    results: dict[str, float] = {}
    for name in names:
        spec = score_spec(name)
        value = spec.compute(*args) if spec.event else clip_score(name, *args, map_convention)
        results.update(flatten_score(name, value))
    return results
