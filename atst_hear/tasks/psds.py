"""PSDS with psds_eval 0.5.3 (50 thresholds, the ATST paper's protocol) and with sed_scores_eval
(exact PSD-ROC), and sed_scores_eval's intersection F1. The two PSDS libraries disagree by
about a point, so their values always carry separate names."""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .decoding import FrameScores
from .event_metrics import import_quietly
from .folder import Event, EventDict, as_event

logger = logging.getLogger(__name__)

PSDS_THRESHOLDS = tuple(np.arange(1 / 100, 1, 1 / 50).round(4).tolist())  # 0.01, 0.03, ..., 0.99


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
        for event in sorted((as_event(i) for i in items), key=lambda e: (e.label, e.start)):
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
    PSDSEval = import_quietly("psds_eval").PSDSEval

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
            as_event(e).label
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
            for e in map(as_event, by_threshold[t][f])
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
    world = import_quietly("psds_eval.psds").WORLD
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
    intersection_based = import_quietly("sed_scores_eval.intersection_based")

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
    create_score_dataframe = import_quietly(
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
    intersection_based = import_quietly("sed_scores_eval.intersection_based")

    scores = _score_dataframes(frame_scores, durations_ms)
    f_scores, *_ = intersection_based.fscore(
        scores=scores,
        ground_truth=_sed_scores_ground_truth(reference, scores),
        threshold=threshold,
        dtc_threshold=dtc,
        gtc_threshold=gtc,
    )
    return float(f_scores["macro_average"])
