"""Scores, each delegating to the library the field uses for it.

Clip-level scores take ``predictions`` (``[N, C]`` class scores) and ``targets`` (``[N, C]`` one-
or multi-hot) and follow hear-eval-kit's formulas (``hear-contract.md`` §3.6): scikit-learn for
mAP and ROC-AUC, scipy for d-prime. Event scores use sed_eval with hear-eval-kit's parameters;
PSDS uses both psds_eval 0.5.3 (50 thresholds, the ATST paper's protocol) and sed_scores_eval
(exact PSD-ROC); the two disagree by about a point and are always reported under separate names.

Events are ``{file: [Event | {"label", "start", "end"}]}`` with times in milliseconds, as in
HEAR task folders; frame scores are :class:`FrameScores`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, stats

from .taskfolder import Event

logger = logging.getLogger(__name__)

PSDS_THRESHOLDS = tuple(np.arange(1 / 100, 1, 1 / 50).round(4).tolist())  # 0.01, 0.03, ..., 0.99


# --- clip-level scores ----------------------------------------------------------------------
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


# --- event scores (sed_eval) ----------------------------------------------------------------
EventLike = Event | Mapping[str, Any]
EventDict = Mapping[str, Sequence[EventLike]]


def _as_event(item: EventLike) -> Event:
    if isinstance(item, Event):
        return item
    return Event(str(item["label"]), float(item["start"]), float(item["end"]))


def _quiet_import(name: str):
    """Import an evaluation library without dcase_util's pkg_resources deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        return importlib.import_module(name)


def _sed_eval():
    return _quiet_import("sed_eval"), _quiet_import("dcase_util.containers").MetaDataContainer


def _sed_eval_container(events: Sequence[EventLike], filename: str):
    _, MetaDataContainer = _sed_eval()

    rows = []
    for item in events:
        event = _as_event(item)
        rows.append(
            {
                "event_label": event.label,
                "event_onset": event.start / 1000.0,
                "event_offset": event.end / 1000.0,
                "file": filename,
            }
        )
    return MetaDataContainer(rows)


def _run_sed_eval(metrics, predicted: EventDict, reference: EventDict):
    # hear-eval-kit evaluates every file that has predictions, one file at a time
    for filename, estimated in predicted.items():
        metrics.evaluate(
            reference_event_list=_sed_eval_container(reference.get(filename, []), filename),
            estimated_event_list=_sed_eval_container(estimated, filename),
        )
    overall = dict(ChainMap(*metrics.results_overall_metrics().values()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # classes without events: mean of nothing
        class_wise = metrics.results_class_wise_average_metrics()
    return overall, class_wise


def event_based_scores(
    predicted: EventDict,
    reference: EventDict,
    labels: Sequence[str],
    *,
    t_collar: float,
    evaluate_offset: bool = False,
    percentage_of_length: float = 0.5,
    empty_system_output_handling: str | None = None,
) -> dict[str, float]:
    """sed_eval event-based F-measure: overall (micro) and class-wise averaged (macro)."""
    sed_eval, _ = _sed_eval()

    kwargs = {}
    if empty_system_output_handling is not None:
        kwargs["empty_system_output_handling"] = empty_system_output_handling
    metrics = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=[str(label) for label in labels],
        evaluate_onset=True,
        evaluate_offset=evaluate_offset,
        t_collar=t_collar,
        percentage_of_length=percentage_of_length,
        **kwargs,
    )
    overall, class_wise = _run_sed_eval(metrics, predicted, reference)
    return {
        "f_measure": float(overall["f_measure"]),
        "precision": float(overall["precision"]),
        "recall": float(overall["recall"]),
        "f_measure_macro": float(class_wise["f_measure"]["f_measure"]),
    }


def segment_based_error_rate(
    predicted: EventDict, reference: EventDict, labels: Sequence[str], time_resolution: float = 1.0
) -> dict[str, float]:
    """sed_eval segment-based error rate (overall) with its components."""
    sed_eval, _ = _sed_eval()

    metrics = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=[str(label) for label in labels], time_resolution=time_resolution
    )
    overall, _ = _run_sed_eval(metrics, predicted, reference)
    return {
        "error_rate": float(overall["error_rate"]),
        "substitution_rate": float(overall["substitution_rate"]),
        "deletion_rate": float(overall["deletion_rate"]),
        "insertion_rate": float(overall["insertion_rate"]),
    }


# --- frame scores, decoding and PSDS --------------------------------------------------------
@dataclass
class FrameScores:
    """Per-file frame probabilities on a regular grid of frame centres.

    ``scores[file]`` is ``[T, C]`` (columns in ``labels`` order), ``timestamps[file]`` the ``T``
    frame centres in ms; frames are ``hop_ms`` long.
    """

    labels: list[str]
    hop_ms: float
    scores: dict[str, np.ndarray]
    timestamps: dict[str, np.ndarray]

    def median_filtered(self, frames: int) -> FrameScores:
        """Scores smoothed over time with a ``frames``-long median filter (per class)."""
        if frames <= 1:
            return self
        return FrameScores(
            self.labels,
            self.hop_ms,
            {f: ndimage.median_filter(s, size=(frames, 1)) for f, s in self.scores.items()},
            self.timestamps,
        )

    def boundaries(self, filename: str, duration_ms: float | None = None) -> np.ndarray:
        """Frame edges in ms (``T + 1`` values), clipped to ``[0, duration_ms]``."""
        centres = np.asarray(self.timestamps[filename], dtype=np.float64)
        edges = np.concatenate([centres - self.hop_ms / 2, centres[-1:] + self.hop_ms / 2])
        edges = np.clip(edges, 0.0, None)
        if duration_ms is not None:
            edges = np.minimum(edges, duration_ms)
        return edges

    def decode(self, threshold: float, durations_ms: Mapping[str, float] | None = None):
        """Events from runs of frames above ``threshold`` (DCASE decoding: frame edges)."""
        events: dict[str, list[Event]] = {}
        for filename, scores in self.scores.items():
            duration = None if durations_ms is None else durations_ms.get(filename)
            edges = self.boundaries(filename, duration)
            events[filename] = [
                Event(self.labels[c], float(edges[start]), float(edges[stop]))
                for c, start, stop in active_runs(scores > threshold)
                if edges[stop] > edges[start]
            ]
        return events


def active_runs(active: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class, first_frame, end_frame_exclusive)`` of every run of True in a ``[T, C]`` mask."""
    padded = np.zeros((active.shape[0] + 2, active.shape[1]), dtype=np.int8)
    padded[1:-1] = active
    changes = np.diff(padded, axis=0)
    runs = []
    for c in range(active.shape[1]):
        starts = np.flatnonzero(changes[:, c] == 1)
        stops = np.flatnonzero(changes[:, c] == -1)
        runs.extend((c, int(a), int(b)) for a, b in zip(starts, stops))
    runs.sort(key=lambda run: (run[1], run[0]))
    return runs


@dataclass(frozen=True)
class PSDSParams:
    """DCASE PSDS scenario parameters."""

    dtc: float
    gtc: float
    cttc: float
    alpha_ct: float
    alpha_st: float
    max_efpr: float = 100.0


PSDS1 = PSDSParams(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=1.0)
PSDS2 = PSDSParams(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0)


@dataclass
class PSDSResult:
    value: float
    efpr: list[float] = field(default_factory=list)  # PSD-ROC x (effective FP per hour)
    etpr: list[float] = field(default_factory=list)  # PSD-ROC y
    # why ``value`` is NaN: the inputs would take psds_eval past its time and memory bounds
    not_computed_because: str | None = None


# psds_eval pairs every detection with every ground-truth event (and the file itself) of its
# file; these bound that work: pairs over all operating points (about 10 s on 2 cores), and
# pairs per call into psds_eval (its intermediate tables stay within a few hundred MB)
PSDS_EVAL_MAX_PAIRS = 10_000_000
PSDS_EVAL_BATCH_PAIRS = 1_000_000


def merged_reference(reference: EventDict) -> dict[str, list[Event]]:
    """Ground truth with overlapping or touching events of one class merged.

    Both PSDS libraries reject overlapping same-class ground truth (real DESED annotations have
    a few); merging them changes no detection's intersection with the class's ground truth.
    """
    merged: dict[str, list[Event]] = {}
    for filename, items in reference.items():
        by_label: dict[str, list[Event]] = {}
        for event in sorted((_as_event(i) for i in items), key=lambda e: (e.label, e.start)):
            runs = by_label.setdefault(event.label, [])
            if runs and event.start <= runs[-1].end:
                runs[-1] = Event(event.label, runs[-1].start, max(runs[-1].end, event.end))
            else:
                runs.append(event)
        merged[filename] = sorted(
            (e for events in by_label.values() for e in events if e.end > e.start),
            key=lambda e: (e.start, e.label),
        )
    return merged


def _psds_eval_tables(reference: EventDict, durations_ms: Mapping[str, float]):
    import pandas as pd

    rows = [
        (f, e.start / 1000.0, e.end / 1000.0, e.label)
        for f, events in merged_reference(reference).items()
        for e in events
    ]
    ground_truth = pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"])
    metadata = pd.DataFrame(
        [(f, d / 1000.0) for f, d in durations_ms.items()], columns=["filename", "duration"]
    )
    return ground_truth, metadata


def _psds_eval(params: PSDSParams, reference, durations_ms, labels):
    PSDSEval = _quiet_import("psds_eval").PSDSEval

    ground_truth, metadata = _psds_eval_tables(reference, durations_ms)
    return PSDSEval(
        dtc_threshold=params.dtc,
        gtc_threshold=params.gtc,
        cttc_threshold=params.cttc,
        ground_truth=ground_truth,
        metadata=metadata,
        class_names=list(labels),
    )


def psds_from_operating_points(
    detections_by_threshold: Mapping[float, EventDict],
    reference: EventDict,
    durations_ms: Mapping[str, float],
    labels: Sequence[str],
    params: PSDSParams,
) -> PSDSResult:
    """PSDS with psds_eval 0.5.3 from detections decoded at a set of thresholds."""
    thresholds = sorted(detections_by_threshold)
    files = sorted({f for t in thresholds for f in detections_by_threshold[t]})
    names = list(labels) + sorted(
        {
            _as_event(e).label
            for t in thresholds
            for events in detections_by_threshold[t].values()
            for e in events
        }
        - set(labels)
    )
    evaluator = _psds_eval(params, reference, durations_ms, labels)
    detections = _Detections.from_events(detections_by_threshold, thresholds, files, names)
    pairs = int(_pairs_per_detection(evaluator, detections).sum())
    if pairs > PSDS_EVAL_MAX_PAIRS:
        return _too_fragmented(f"{pairs:,} in all", len(thresholds), len(files))
    return _bounded_psds_eval(evaluator, detections, params)


def psds_eval_from_scores(
    frame_scores: FrameScores,
    reference: EventDict,
    durations_ms: Mapping[str, float],
    params: PSDSParams,
    thresholds: Sequence[float] = PSDS_THRESHOLDS,
) -> PSDSResult:
    """:func:`psds_from_operating_points` of ``frame_scores`` decoded at ``thresholds`` (the
    decoding of :meth:`FrameScores.decode`, vectorised over files and thresholds)."""
    evaluator = _psds_eval(params, reference, durations_ms, frame_scores.labels)
    try:
        detections = _Detections.from_scores(
            frame_scores, sorted(thresholds), durations_ms, _targets_per_file(evaluator)
        )
    except _TooManyPairs as err:
        return _too_fragmented(
            f"the limit is reached within the first {err.files_seen:,} files",
            len(thresholds),
            len(frame_scores.scores),
        )
    return _bounded_psds_eval(evaluator, detections, params)


class _TooManyPairs(Exception):
    def __init__(self, files_seen: int) -> None:
        super().__init__(files_seen)
        self.files_seen = files_seen


def _too_fragmented(detail: str, n_thresholds: int, n_files: int) -> PSDSResult:
    reason = (
        f"psds_eval would form more than {PSDS_EVAL_MAX_PAIRS:,} detection x ground-truth pairs "
        f"({detail}) over {n_thresholds} thresholds and {n_files:,} files: the frame scores are "
        "too fragmented for it to finish in bounded time and memory. The exact "
        "sed_scores_eval PSDS has no such limit"
    )
    logger.warning("PSDS (psds_eval) not computed: %s", reason)
    return PSDSResult(float("nan"), not_computed_because=reason)


def _targets_per_file(evaluator) -> dict[str, int]:
    """Ground-truth rows psds_eval pairs each detection of a file with (WORLD included)."""
    return evaluator.ground_truth.groupby("filename").size().to_dict()


def _pairs_per_detection(evaluator, detections: _Detections) -> np.ndarray:
    targets = _targets_per_file(evaluator)
    per_file = np.array([targets.get(f, 0) for f in detections.files], dtype=np.int64)
    return per_file[detections.file] if per_file.size else np.zeros(0, dtype=np.int64)


@dataclass
class _Detections:
    """Detections of every operating point as flat arrays, grouped by file within each one.

    ``threshold[i]``, ``file[i]`` (index into ``files``), ``label[i]`` (index into ``labels``),
    ``onset[i]`` / ``offset[i]`` in seconds.
    """

    thresholds: list[float]
    files: list[str]
    labels: list[str]
    threshold: np.ndarray
    file: np.ndarray
    label: np.ndarray
    onset: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_events(cls, by_threshold, thresholds, files, labels) -> _Detections:
        file_index = {f: i for i, f in enumerate(files)}
        label_index = {name: i for i, name in enumerate(labels)}
        rows = [
            (k, file_index[f], label_index[e.label], e.start / 1000.0, e.end / 1000.0)
            for k, t in enumerate(thresholds)
            for f in sorted(by_threshold[t])
            for e in map(_as_event, by_threshold[t][f])
        ]
        columns = np.array(rows, dtype=np.float64).reshape(-1, 5).T
        columns = columns[:, columns[4] > columns[3]]  # psds_eval drops empty events
        # canonical order (threshold, file, class, time), so equal sets have equal digests
        columns = columns[:, np.lexsort(columns[::-1])]
        return cls(
            list(thresholds),
            list(files),
            list(labels),
            columns[0].astype(np.int64),
            columns[1].astype(np.int64),
            columns[2].astype(np.int64),
            columns[3],
            columns[4],
        )

    @classmethod
    def from_scores(
        cls, frame_scores: FrameScores, thresholds, durations_ms, targets_per_file
    ) -> _Detections:
        """Decode at every threshold; raises :class:`_TooManyPairs` as soon as the detections
        so far exceed the pair budget, so fragmented scores cost little time and memory."""
        levels = np.asarray(thresholds, dtype=np.float64)[:, None, None]
        parts: list[tuple[np.ndarray, ...]] = []
        pairs = 0
        for index, (filename, scores) in enumerate(frame_scores.scores.items()):
            edges = frame_scores.boundaries(filename, durations_ms.get(filename))
            # [threshold, class, frame] activity, padded so every run has a rise and a fall
            active = np.zeros((len(thresholds), scores.shape[1], scores.shape[0] + 2), np.int8)
            active[:, :, 1:-1] = (np.asarray(scores).T[None] > levels).astype(np.int8)
            changes = np.diff(active, axis=2)
            # nonzero walks threshold, class, frame: rises and falls pair up in order
            k, label, rise = np.nonzero(changes == 1)
            fall = np.nonzero(changes == -1)[2]
            onset, offset = edges[rise], edges[fall]
            keep = offset > onset
            pairs += int(keep.sum()) * targets_per_file.get(filename, 0)
            if pairs > PSDS_EVAL_MAX_PAIRS:
                raise _TooManyPairs(index + 1)
            parts.append(
                (
                    k[keep],
                    np.full(int(keep.sum()), index),
                    label[keep],
                    onset[keep] / 1000.0,
                    offset[keep] / 1000.0,
                )
            )
        k, file, label, onset, offset = (
            np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i in range(5)
        )
        # threshold-major, files in order within each threshold
        order = np.argsort(k, kind="stable")
        return cls(
            list(thresholds),
            list(frame_scores.scores),
            list(frame_scores.labels),
            k[order],
            file[order].astype(np.int64),
            label[order].astype(np.int64),
            onset[order],
            offset[order],
        )

    def rows_of(self, k: int) -> slice:
        lo, hi = np.searchsorted(self.threshold, [k, k + 1])
        return slice(int(lo), int(hi))

    def digest(self, k: int) -> str:
        """Identifies operating point ``k``'s detection set (psds_eval skips repeats); rows are
        in a canonical order (file, class, time), so equal sets hash alike."""
        rows = self.rows_of(k)
        digest = hashlib.sha256()
        for column in (self.file, self.label, self.onset, self.offset):
            digest.update(np.ascontiguousarray(column[rows]).tobytes())
        return digest.hexdigest()

    def table(self, k: int, rows: slice | None = None):
        """psds_eval's prepared detection table (``_init_det_table``'s columns) for a slice of
        operating point ``k``'s rows."""
        import pandas as pd

        rows = self.rows_of(k) if rows is None else rows
        onset, offset = self.onset[rows], self.offset[rows]
        return pd.DataFrame(
            {
                "filename": np.asarray(self.files, dtype=object)[self.file[rows]],
                "onset": onset,
                "offset": offset,
                "event_label": np.asarray(self.labels, dtype=object)[self.label[rows]],
                "duration": offset - onset,
                "id": np.arange(onset.size),
            }
        )


def _bounded_psds_eval(evaluator, detections: _Detections, params: PSDSParams) -> PSDSResult:
    """psds_eval's PSDS, evaluated a batch of files at a time, or NaN with the reason.

    psds_eval checks each detection table for overlapping same-class events by pairing every
    detection of a file with every other (quadratic: 23 GB for 1,000 noisy clips), then
    evaluates an operating point in one table of all detection x ground-truth pairs. Decoded
    runs of one class never overlap, so the check is left out; pairs are formed a batch of
    files at a time, and since every pair lies within one file the batches' per-class counts
    add up to psds_eval's counts exactly; the rates are psds_eval's formulas on those counts.
    Callers refuse inputs needing more than :data:`PSDS_EVAL_MAX_PAIRS` pairs (a NaN value
    with ``not_computed_because``). Uses psds_eval 0.5.3's internals; setup.cfg pins it.
    """
    pairs = _pairs_per_detection(evaluator, detections)
    n_classes = len(evaluator.class_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # psds_eval warns about its own pandas usage
        for k, threshold in enumerate(detections.thresholds):
            op_id = detections.digest(k)
            if op_id in evaluator.operating_points.id.values:
                continue  # psds_eval skips an operating point identical to an earlier one
            counts = np.zeros((n_classes, n_classes))
            for rows in _file_batches(detections, k, pairs):
                counts += evaluator._evaluate_detections(detections.table(k, rows))[0]
            tpr, fpr, ctr = _psds_eval_rates(evaluator, counts)
            evaluator._add_op(
                opid=op_id,
                counts=counts,
                tpr=tpr,
                fpr=fpr,
                ctr=ctr,
                info={"name": f"Op {k + 1:02d}", "threshold": threshold},
            )
        result = evaluator.psds(
            alpha_ct=params.alpha_ct, alpha_st=params.alpha_st, max_efpr=params.max_efpr
        )
    keep = result.plt.xp <= params.max_efpr
    return PSDSResult(
        float(result.value), result.plt.xp[keep].tolist(), result.plt.yp[keep].tolist()
    )


def _file_batches(detections: _Detections, k: int, pairs: np.ndarray) -> Iterator[slice]:
    """Row slices of operating point ``k``, whole files, about ``PSDS_EVAL_BATCH_PAIRS`` pairs
    each."""
    rows = detections.rows_of(k)
    if rows.start == rows.stop:
        yield rows
        return
    files = detections.file[rows]
    file_starts = np.flatnonzero(np.r_[True, files[1:] != files[:-1]])
    cumulative = np.cumsum(pairs[rows])
    start = 0
    while start < files.size:
        before = cumulative[start - 1] if start else 0
        stop = int(np.searchsorted(cumulative, before + PSDS_EVAL_BATCH_PAIRS, side="right"))
        # round up to the next file boundary: a file's detections stay together
        boundary = int(np.searchsorted(file_starts, max(stop, start + 1)))
        stop = int(file_starts[boundary]) if boundary < file_starts.size else files.size
        yield slice(rows.start + start, rows.start + stop)
        start = stop


def _psds_eval_rates(evaluator, counts: np.ndarray):
    """psds_eval's ``_confusion_matrix_and_rates`` on summed counts: TP ratio, FP rate and
    cross-trigger rate per class (its formulas and class order; a class without ground truth
    gets a NaN TP ratio where psds_eval leaves it uninitialised)."""
    world = _quiet_import("psds_eval.psds").WORLD
    classes = sorted(set(evaluator.class_names) - {world})
    gt_counts = evaluator._get_dataset_counts()
    gt_durations, dataset_duration = evaluator._get_dataset_duration()
    n = len(classes)
    tp_ratio = np.full(n, np.nan)
    fp_rate = np.empty(n)
    ct_rate = np.full((n, n), np.nan)
    for i, name in enumerate(classes):
        if name in gt_counts:
            tp_ratio[i] = counts[i, i] / gt_counts[name]
        fp_rate[i] = counts[i, n] * evaluator.nseconds / dataset_duration
        for j, other in enumerate(classes):
            if j != i:
                ct_rate[i, j] = counts[i, j] * evaluator.nseconds / gt_durations[other]
    return tp_ratio, fp_rate, ct_rate


def psds_from_scores(
    frame_scores: FrameScores,
    reference: EventDict,
    durations_ms: Mapping[str, float],
    params: PSDSParams,
) -> PSDSResult:
    """Exact PSDS with sed_scores_eval from (already post-processed) frame scores."""
    intersection_based = _quiet_import("sed_scores_eval.intersection_based")

    scores = _score_dataframes(frame_scores, durations_ms)
    ground_truth = _sed_scores_ground_truth(reference, scores)
    durations = {f: durations_ms[f] / 1000.0 for f in scores}
    value, _, (etpr, efpr), _ = intersection_based.psds(
        scores=scores,
        ground_truth=ground_truth,
        audio_durations=durations,
        dtc_threshold=params.dtc,
        gtc_threshold=params.gtc,
        # sed_scores_eval refuses a cross-trigger criterion that alpha_ct = 0 would ignore
        cttc_threshold=params.cttc if params.alpha_ct > 0 else None,
        alpha_ct=params.alpha_ct,
        alpha_st=params.alpha_st,
        max_efpr=params.max_efpr,
    )
    keep = np.asarray(efpr) <= params.max_efpr
    return PSDSResult(
        float(value), np.asarray(efpr)[keep].tolist(), np.asarray(etpr)[keep].tolist()
    )


def _score_dataframes(frame_scores: FrameScores, durations_ms: Mapping[str, float]):
    create_score_dataframe = _quiet_import(
        "sed_scores_eval.base_modules.scores"
    ).create_score_dataframe

    return {
        f: create_score_dataframe(
            np.asarray(s, dtype=np.float64),
            frame_scores.boundaries(f, durations_ms[f]) / 1000.0,
            list(frame_scores.labels),
        )
        for f, s in frame_scores.scores.items()
    }


def _sed_scores_ground_truth(reference: EventDict, files) -> dict[str, list[tuple]]:
    return {
        f: [(e.start / 1000.0, e.end / 1000.0, e.label) for e in events]
        for f, events in merged_reference(reference).items()
        if f in files
    }


def intersection_f1(
    frame_scores: FrameScores,
    reference: EventDict,
    durations_ms: Mapping[str, float],
    threshold: float = 0.5,
    dtc: float = 0.5,
    gtc: float = 0.5,
) -> float:
    """Intersection-based macro F1 at one threshold (sed_scores_eval; DCASE criteria 0.5/0.5).

    The DESED baseline computes this with psds_eval's ``compute_macro_f_score``, which gives a
    class without true positives a NaN score and leaves it out of the average; here such a class
    scores 0.
    """
    intersection_based = _quiet_import("sed_scores_eval.intersection_based")

    scores = _score_dataframes(frame_scores, durations_ms)
    f_scores, *_ = intersection_based.fscore(
        scores=scores,
        ground_truth=_sed_scores_ground_truth(reference, scores),
        threshold=threshold,
        dtc_threshold=dtc,
        gtc_threshold=gtc,
    )
    return float(f_scores["macro_average"])


# --- named scores (task_metadata.json "evaluation") ------------------------------------------
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
        ScoreSpec("psds1", _psds_score(PSDS1), event=True, frame_scores=True),
        ScoreSpec("psds2", _psds_score(PSDS2), event=True, frame_scores=True),
        ScoreSpec("psds1_sed_scores_eval", _psds_exact_score(PSDS1), event=True, frame_scores=True),
        ScoreSpec("psds2_sed_scores_eval", _psds_exact_score(PSDS2), event=True, frame_scores=True),
        ScoreSpec("intersection_f1", _intersection_f1_score, event=True, frame_scores=True),
    )
}


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
