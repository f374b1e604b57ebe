"""psds_eval in bounded time and memory: same values as its public API, or NaN with a reason."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from atst_hear.tasks import psds
from atst_hear.tasks.decoding import FrameScores
from atst_hear.tasks.folder import Event
from atst_hear.tasks.psds import PSDS1, PSDS2
from atst_hear.tasks.scores import EventPredictions, compute_scores

LABELS = ["alarm", "dog", "speech"]
# a few of the 50 thresholds (psds_eval's public API is slow), up to three empty repeats
THRESHOLDS = psds.PSDS_THRESHOLDS[::5] + (0.93, 0.97)


def case(n_files: int = 8, noise: float = 0.2, seed: int = 0):
    rng = np.random.default_rng(seed)
    hop, frames = 40.0, 150
    scores, stamps, reference, durations = {}, {}, {}, {}
    for i in range(n_files):
        name = f"f{i:02d}.wav"
        mask = np.zeros((frames, len(LABELS)))
        events = []
        for _ in range(rng.integers(1, 4)):
            c, start = int(rng.integers(len(LABELS))), int(rng.integers(0, frames - 20))
            stop = start + int(rng.integers(5, 60))
            mask[start:stop, c] = 1
            events.append(Event(LABELS[c], start * hop, min(stop, frames) * hop))
        # scores stay below 0.9, so the top thresholds decode identical (empty) detection sets
        scores[name] = np.clip(0.5 * mask + 0.2 + rng.normal(0, noise, mask.shape), 0, 0.85)
        stamps[name] = hop / 2 + hop * np.arange(frames)
        reference[name] = events
        durations[name] = frames * hop
    return FrameScores(LABELS, hop, scores, stamps).median_filtered(3), reference, durations


def psds_eval_public_api(frames, reference, durations, params):
    """What psds_eval computes through its documented API (quadratic, unbatched)."""
    evaluator = psds._psds_eval(params, reference, durations, LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, threshold in enumerate(THRESHOLDS):
            rows = [
                (f, e.start / 1000, e.end / 1000, e.label)
                for f, events in frames.decode(threshold, durations).items()
                for e in events
            ]
            table = pd.DataFrame(rows, columns=["filename", "onset", "offset", "event_label"])
            evaluator.add_operating_point(table, info={"name": f"Op {i + 1:02d}"})
        result = evaluator.psds(params.alpha_ct, params.alpha_st, params.max_efpr)
    return result, len(evaluator.operating_points)


@pytest.mark.parametrize("params", [PSDS1, PSDS2], ids=["psds1", "psds2"])
def test_batched_psds_eval_equals_the_public_api_exactly(params, monkeypatch):
    frames, reference, durations = case()
    expected, n_points = psds_eval_public_api(frames, reference, durations, params)
    assert n_points < len(THRESHOLDS)  # repeated operating points were skipped
    monkeypatch.setattr(psds, "PSDS_EVAL_BATCH_PAIRS", 40)  # many small batches
    from_scores = psds.psds_eval_from_scores(frames, reference, durations, params, THRESHOLDS)
    detections = {t: frames.decode(t, durations) for t in THRESHOLDS}
    from_points = psds.psds_from_operating_points(detections, reference, durations, LABELS, params)
    keep = expected.plt.xp <= params.max_efpr
    for result in (from_scores, from_points):
        assert result.not_computed_because is None
        assert result.value == float(expected.value)
        assert result.efpr == expected.plt.xp[keep].tolist()
        assert result.etpr == expected.plt.yp[keep].tolist()


def test_fragmented_scores_give_nan_and_a_reason_quickly(monkeypatch, caplog):
    frames, reference, durations = case(n_files=40, noise=0.4)
    monkeypatch.setattr(psds, "PSDS_EVAL_MAX_PAIRS", 2_000)
    monkeypatch.setattr(
        psds._Detections,
        "table",
        lambda *a, **k: pytest.fail("psds_eval ran although the budget was exceeded"),
    )
    result = psds.psds_eval_from_scores(frames, reference, durations, PSDS1)
    assert np.isnan(result.value) and not result.efpr
    assert "more than 2,000 detection x ground-truth pairs" in result.not_computed_because
    assert "within the first" in result.not_computed_because
    assert "PSDS (psds_eval) not computed" in caplog.text
    detections = {t: frames.decode(t, durations) for t in psds.PSDS_THRESHOLDS[:5]}
    refused = psds.psds_from_operating_points(detections, reference, durations, LABELS, PSDS2)
    assert np.isnan(refused.value) and "in all" in refused.not_computed_because
    # the exact library has no such limit
    assert np.isfinite(psds.psds_from_scores(frames, reference, durations, PSDS1).value)


def test_named_psds_score_is_nan_when_refused(monkeypatch):
    frames, reference, durations = case(n_files=6)
    monkeypatch.setattr(psds, "PSDS_EVAL_MAX_PAIRS", 10)
    predictions = EventPredictions({}, reference, LABELS, frames, durations)
    scores = compute_scores(["psds1", "psds1_sed_scores_eval"], predictions)
    assert np.isnan(scores["psds1"]) and np.isfinite(scores["psds1_sed_scores_eval"])
