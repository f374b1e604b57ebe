"""Metrics: each against a hand-computed case, and the hear-mlp scores against hear-eval-kit's
formulas (re-stated here from ``heareval/score.py`` 2021.1.3, ``hear-contract.md`` §3.6)."""

from __future__ import annotations

import math
from collections import ChainMap

import numpy as np
import pytest
from scipy import stats

from atst_hear.tasks.clip_metrics import (
    aucroc,
    chroma_accuracy,
    d_prime,
    mean_average_precision,
    top1_accuracy,
)
from atst_hear.tasks.decoding import FrameScores, active_runs
from atst_hear.tasks.event_metrics import event_based_scores, segment_based_error_rate
from atst_hear.tasks.folder import Event, TaskFolderError
from atst_hear.tasks.psds import (
    PSDS1,
    PSDS_THRESHOLDS,
    intersection_f1,
    merged_reference,
    psds_from_operating_points,
    psds_from_scores,
)
from atst_hear.tasks.scores import (
    HEAREVAL_SCORES,
    SCORE_SPECS,
    SCORES,
    EventPredictions,
    compute_scores,
    score_spec,
)
from atst_hear.tasks.writing import task_metadata

# --- hand-computed cases -----------------------------------------------------------------------
TARGETS = np.eye(3)[[0, 1, 2, 0]]
PREDICTIONS = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.1, 0.4], [0.2, 0.5, 0.3]]
)  # argmax 0, 1, 0, 1: clips 0 and 1 correct


def test_top1_and_chroma_accuracy_by_hand():
    assert top1_accuracy(PREDICTIONS, TARGETS) == pytest.approx(0.5)
    # 14 pitch classes: class 13 is an octave above class 1
    targets = np.eye(14)[[1, 1, 2]]
    predictions = np.eye(14)[[13, 1, 3]]
    assert chroma_accuracy(predictions, targets) == pytest.approx(2 / 3)
    assert top1_accuracy(predictions, targets) == pytest.approx(1 / 3)


def test_mean_average_precision_by_hand():
    # class 0: positives are clips 0 and 3 with scores .7 and .2; ranking .7(+) .5(-) .2(+) .1(-)
    # AP = (1/1 + 2/3) / 2 = 5/6. class 1: positive clip 1 (.6) ranked second after .5? no:
    # scores .2 .6 .1 .5 -> .6(+) first: AP 1. class 2: positive clip 2 (.4) ranked first: AP 1.
    assert mean_average_precision(PREDICTIONS, TARGETS) == pytest.approx((5 / 6 + 1 + 1) / 3)


def test_mean_average_precision_classes_without_positives():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    predictions = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.4], [0.6, 0.3, 0.2]])
    # hear-eval-kit: the empty class counts with AP 0; the paper's variant drops it
    assert mean_average_precision(predictions, targets) == pytest.approx(2 / 3)
    assert mean_average_precision(
        predictions, targets, skip_classes_without_positives=True
    ) == pytest.approx(1.0)


def test_aucroc_and_d_prime_by_hand():
    # class 0 AUC: positives {.7, .2}, negatives {.1, .5}: pairs won 3 of 4 -> .75
    # class 1 AUC: positive .6 vs negatives .2 .1 .5 -> 1; class 2: .4 vs .1 .3 .3 -> 1
    aucs = np.array([0.75, 1.0, 1.0])
    assert aucroc(PREDICTIONS, TARGETS) == pytest.approx(aucs.mean())
    assert math.isinf(d_prime(PREDICTIONS, TARGETS))  # AUC 1 -> ppf(1) = inf, as in hear
    softer = PREDICTIONS.copy()
    softer[1, 1] = 0.05  # class 1 positive now below 2 of 3 negatives... AUC 1/3
    softer[2, 2] = 0.31  # class 2 positive above all negatives still: AUC 1 -> make it 2/3
    softer[3, 2] = 0.35
    expected_auc = np.array([0.75, 0.0, 2 / 3])
    # class 1: .05 below .2, .1, .5 -> AUC 0
    assert aucroc(softer, TARGETS) == pytest.approx(expected_auc.mean())


def test_d_prime_finite_by_hand():
    targets = np.eye(2)[[0, 0, 1, 1]]
    predictions = np.array([[0.8, 0.2], [0.4, 0.6], [0.6, 0.4], [0.3, 0.7]])
    # class 0: positives .8 .4 vs negatives .6 .3 -> pairs (.8>.6,.8>.3,.4<.6,.4>.3) 3/4
    # class 1: positives .4 .7 vs negatives .2 .6 -> 3/4
    expected = stats.norm.ppf(0.75) * math.sqrt(2)
    assert d_prime(predictions, targets) == pytest.approx(expected)


def test_clip_scores_reject_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\[n_clips, n_classes\]"):
        top1_accuracy(np.zeros((3, 2)), np.zeros((3, 4)))


LABELS = ["a", "b"]


def test_event_onset_fms_by_hand():
    reference = {"f.wav": [Event("a", 1000, 2000), Event("b", 3000, 4000)]}
    predicted = {"f.wav": [Event("a", 1150, 1500), Event("b", 3300, 4000)]}
    # a: onset 150 ms off (inside the 200 ms collar) -> TP; b: 300 ms off -> FP and FN
    scores = event_based_scores(predicted, reference, LABELS, t_collar=0.2)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["f_measure"] == pytest.approx(0.5)
    # onset + offset (50 ms collar, 20 %): a's offset is 500 ms early -> nothing matches
    strict = compute_scores(
        ["event_onset_offset_50ms_20perc_fms"],
        EventPredictions(predicted, reference, LABELS),
    )
    assert strict["event_onset_offset_50ms_20perc_fms"] == pytest.approx(0.0)


def test_segment_error_rate_by_hand():
    reference = {"f.wav": [Event("a", 0, 1000), Event("a", 1000, 2000)]}
    predicted = {"f.wav": [Event("b", 0, 1000)]}
    # segment 1: a missed, b inserted -> 1 substitution; segment 2: a missed -> 1 deletion
    # ER = (S + D + I) / N = (1 + 1 + 0) / 2
    result = segment_based_error_rate(predicted, reference, LABELS)
    assert result["error_rate"] == pytest.approx(1.0)
    assert result["substitution_rate"] == pytest.approx(0.5)
    assert result["deletion_rate"] == pytest.approx(0.5)


def _frames(reference, durations, hop=40.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    scores, times = {}, {}
    for name, events in reference.items():
        n = int(durations[name] // hop)
        centres = (np.arange(n) + 0.5) * hop
        s = rng.uniform(0, noise, (n, len(LABELS))) if noise else np.zeros((n, len(LABELS)))
        for event in events:
            active = (centres > event.start) & (centres < event.end)
            s[active, LABELS.index(event.label)] = 0.9
        scores[name], times[name] = s, centres
    return FrameScores(LABELS, hop, scores, times)


def test_decode_and_active_runs_by_hand():
    active = np.array([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=bool)
    assert active_runs(active) == [(0, 0, 2), (1, 1, 3), (0, 3, 4)]
    frames = FrameScores(
        LABELS, 40.0, {"f.wav": active.astype(float)}, {"f.wav": np.array([20.0, 60, 100, 140])}
    )
    events = frames.decode(0.5, {"f.wav": 150.0})["f.wav"]
    assert events == [Event("a", 0.0, 80.0), Event("b", 40.0, 120.0), Event("a", 120.0, 150.0)]


def test_psds_perfect_and_empty_systems():
    reference = {
        "f1.wav": [Event("a", 1000, 3000), Event("b", 4000, 6000)],
        "f2.wav": [Event("b", 200, 1800)],
    }
    durations = {"f1.wav": 8000.0, "f2.wav": 8000.0}
    perfect = _frames(reference, durations)
    inputs = EventPredictions(perfect.decode(0.5, durations), reference, LABELS, perfect, durations)
    scores = compute_scores(
        ["psds1", "psds2", "psds1_sed_scores_eval", "psds2_sed_scores_eval", "intersection_f1"],
        inputs,
    )
    for name, value in scores.items():
        assert value == pytest.approx(1.0, abs=0.02), name
    silent = FrameScores(
        LABELS, 40.0, {k: np.zeros_like(v) for k, v in perfect.scores.items()}, perfect.timestamps
    )
    empty = EventPredictions(silent.decode(0.5, durations), reference, LABELS, silent, durations)
    assert compute_scores(["psds1", "psds1_sed_scores_eval"], empty) == {
        "psds1": 0.0,
        "psds1_sed_scores_eval": 0.0,
    }


@pytest.mark.filterwarnings("ignore:A similar operating point exists")
def test_psds_libraries_on_noisy_scores():
    """Our psds_eval PSDS equals sed_scores_eval's own psds_eval reference (same 50 thresholds)
    and is close to the exact value."""
    from sed_scores_eval.base_modules.scores import create_score_dataframe
    from sed_scores_eval.intersection_based.reference import approximate_psds

    rng = np.random.default_rng(3)
    hop = 200.0
    reference = {
        f"f{i}.wav": [
            Event("a", 5000 + 3000 * i, 25000),
            Event("b", 40000, 50000 + 2500 * i),
            Event("a", 80000, 110000),
        ]
        for i in range(3)
    }
    durations = dict.fromkeys(reference, 120000.0)
    scores, times = {}, {}
    for name, events in reference.items():
        centres = (np.arange(int(durations[name] // hop)) + 0.5) * hop
        s = 0.6 * rng.uniform(0, 1, (len(centres), 2)) ** 4
        for e in events:
            active = (centres > e.start) & (centres < e.end)
            s[active, LABELS.index(e.label)] = rng.uniform(0.3, 1) + rng.uniform(
                -0.05, 0.05, active.sum()
            )
        scores[name], times[name] = s, centres
    frames = FrameScores(LABELS, hop, scores, times).median_filtered(3)
    ours = psds_from_operating_points(
        {t: frames.decode(t, durations) for t in PSDS_THRESHOLDS},
        reference,
        durations,
        LABELS,
        PSDS1,
    )
    exact = psds_from_scores(frames, reference, durations, PSDS1)
    score_frames = {
        f: create_score_dataframe(
            frames.scores[f], frames.boundaries(f, durations[f]) / 1000, LABELS
        )
        for f in frames.scores
    }
    with pytest.warns(FutureWarning):  # psds_eval 0.5.3 on pandas 2
        expected = approximate_psds(
            score_frames,
            {
                f: [(e.start / 1000, e.end / 1000, e.label) for e in ev]
                for f, ev in reference.items()
            },
            {f: d / 1000 for f, d in durations.items()},
            thresholds=np.array(PSDS_THRESHOLDS),
            dtc_threshold=0.7,
            gtc_threshold=0.7,
            alpha_ct=0.0,
            alpha_st=1.0,
        )[0]
    assert 0.2 < ours.value < 0.9
    assert ours.value == pytest.approx(expected, abs=1e-9)
    assert exact.value == pytest.approx(ours.value, abs=0.05)
    assert ours.efpr and max(ours.efpr) <= 100 and len(ours.efpr) == len(ours.etpr)


def test_intersection_f1_by_hand():
    reference = {"f.wav": [Event("a", 0, 2000), Event("b", 3000, 5000)]}
    # a: detected over [0, 1000] ms, inside its ground truth and covering half of it -> TP
    # b: detected over [8000, 9000] ms, far from its ground truth -> 1 FP and 1 FN
    centres = (np.arange(250) + 0.5) * 40.0
    scores = np.zeros((250, 2))
    scores[centres < 1000, 0] = 0.9
    scores[(centres > 8000) & (centres < 9000), 1] = 0.9
    frames = FrameScores(LABELS, 40.0, {"f.wav": scores}, {"f.wav": centres})
    # F1_a = 1, F1_b = 0: macro 0.5 (psds_eval would drop class b as NaN and report 1.0)
    assert intersection_f1(frames, reference, {"f.wav": 10000.0}) == pytest.approx(0.5)


def test_merged_reference_joins_overlapping_same_class_events():
    merged = merged_reference(
        {"f.wav": [Event("a", 0, 1000), Event("a", 800, 1500), Event("b", 900, 1000)]}
    )
    assert merged["f.wav"] == [Event("a", 0, 1500), Event("b", 900, 1000)]


def test_unknown_score_name():
    with pytest.raises(ValueError, match="unknown score 'f1'"):
        score_spec("f1")


# --- parity with hear-eval-kit's formulas ------------------------------------------------------
def _hear_top1(predictions, targets):
    correct = 0
    for target, prediction in zip(targets, predictions):
        correct += int(np.argmax(prediction) == np.argmax(target))
    return correct / len(targets)


def _hear_chroma(predictions, targets):
    correct = 0
    for target, prediction in zip(targets, predictions):
        correct += int(np.argmax(prediction) % 12 == np.argmax(target) % 12)
    return correct / len(targets)


def _hear_map(predictions, targets):
    from sklearn.metrics import average_precision_score

    return average_precision_score(targets, predictions, average="macro")


def _hear_dprime(predictions, targets):
    from sklearn.metrics import roc_auc_score

    try:
        auc = roc_auc_score(targets, predictions, average=None)
        return np.mean(stats.norm().ppf(auc) * np.sqrt(2.0))
    except ValueError:
        return np.nan


def _hear_aucroc(predictions, targets):
    from sklearn.metrics import roc_auc_score

    try:
        return roc_auc_score(targets, predictions, average="macro")
    except ValueError:
        return np.nan


def _hear_sed_eval(metric_class, params, predicted, reference, labels, keys):
    from dcase_util.containers import MetaDataContainer

    def container(events):
        return MetaDataContainer(
            [
                {
                    "event_label": str(e["label"]),
                    "event_onset": e["start"] / 1000.0,
                    "event_offset": e["end"] / 1000.0,
                    "file": name,
                }
                for name, items in events.items()
                for e in items
            ]
        )

    ref, est = container(reference), container(predicted)
    metric = metric_class(event_label_list=list(labels), **params)
    for name in predicted:
        metric.evaluate(
            reference_event_list=ref.filter(filename=name),
            estimated_event_list=est.filter(filename=name),
        )
    overall = dict(ChainMap(*metric.results_overall_metrics().values()))
    return tuple((key, overall[key]) for key in keys)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_clip_scores_equal_hear_eval_kit(seed):
    rng = np.random.default_rng(seed)
    n, c = 40, 14
    targets = np.eye(c)[rng.integers(0, c, n)]
    predictions = rng.dirichlet(np.ones(c), n)
    multilabel = (rng.uniform(size=(n, c)) < 0.2).astype(float)
    ours = compute_scores(
        ["top1_acc", "pitch_acc", "chroma_acc", "mAP", "d_prime", "aucroc"], predictions, targets
    )
    assert ours["top1_acc"] == _hear_top1(predictions, targets)
    assert ours["pitch_acc"] == _hear_top1(predictions, targets)
    assert ours["chroma_acc"] == _hear_chroma(predictions, targets)
    assert ours["mAP"] == pytest.approx(_hear_map(predictions, targets))
    np.testing.assert_equal(ours["d_prime"], _hear_dprime(predictions, targets))
    np.testing.assert_equal(ours["aucroc"], _hear_aucroc(predictions, targets))
    assert mean_average_precision(predictions, multilabel) == pytest.approx(
        _hear_map(predictions, multilabel)
    )


def test_event_scores_equal_hear_eval_kit():
    import sed_eval

    rng = np.random.default_rng(7)
    labels = ["beep", "buzz", "hum"]

    def random_events(n_files, jitter):
        out = {}
        for i in range(n_files):
            events = []
            for label in labels:
                if rng.uniform() < 0.7:
                    start = float(rng.uniform(0, 3000)) + jitter * rng.normal()
                    events.append(
                        {
                            "label": label,
                            "start": max(0.0, start),
                            "end": max(0.0, start) + float(rng.uniform(100, 900)),
                        }
                    )
            out[f"clip{i}.wav"] = events
        return out

    reference = random_events(6, 0)
    predicted = {
        k: [dict(e, start=e["start"] + rng.normal(0, 120)) for e in v if rng.uniform() < 0.8]
        for k, v in reference.items()
    }
    for value in predicted.values():
        for e in value:
            e["start"] = min(max(0.0, e["start"]), e["end"] - 1)
    inputs = EventPredictions(predicted, reference, labels)
    ours = compute_scores(
        [
            "event_onset_200ms_fms",
            "event_onset_50ms_fms",
            "event_onset_offset_50ms_20perc_fms",
            "segment_1s_er",
        ],
        inputs,
    )
    fms = ("f_measure", "precision", "recall")
    cases = {
        "event_onset_200ms_fms": (
            sed_eval.sound_event.EventBasedMetrics,
            {"evaluate_onset": True, "evaluate_offset": False, "t_collar": 0.2},
            fms,
        ),
        "event_onset_50ms_fms": (
            sed_eval.sound_event.EventBasedMetrics,
            {"evaluate_onset": True, "evaluate_offset": False, "t_collar": 0.05},
            fms,
        ),
        "event_onset_offset_50ms_20perc_fms": (
            sed_eval.sound_event.EventBasedMetrics,
            {
                "evaluate_onset": True,
                "evaluate_offset": True,
                "t_collar": 0.05,
                "percentage_of_length": 0.2,
            },
            fms,
        ),
        "segment_1s_er": (
            sed_eval.sound_event.SegmentBasedMetrics,
            {"time_resolution": 1.0},
            ("error_rate",),
        ),
    }
    for name, (metric_class, params, keys) in cases.items():
        expected = _hear_sed_eval(metric_class, params, predicted, reference, labels, keys)
        assert ours[name] == pytest.approx(expected[0][1]), name
        for key, value in expected:
            assert ours[f"{name}_{key}"] == pytest.approx(value), (name, key)


def test_score_names_come_from_the_one_score_table():
    assert tuple(SCORE_SPECS) == SCORES and set(HEAREVAL_SCORES) < set(SCORES)
    # heareval/score.py's available_scorers, in its order
    assert HEAREVAL_SCORES == (
        "top1_acc",
        "pitch_acc",
        "chroma_acc",
        "mAP",
        "d_prime",
        "aucroc",
        "event_onset_200ms_fms",
        "event_onset_50ms_fms",
        "event_onset_offset_50ms_20perc_fms",
        "segment_1s_er",
    )
    args = ("t", "scene", "multiclass", "trainvaltest", ["train", "valid", "test"], 1.0)
    assert task_metadata(*args, list(SCORES))["evaluation"] == list(SCORES)
    with pytest.raises(TaskFolderError, match="unknown score names \\['f1'\\]"):
        task_metadata(*args, ["f1"])
