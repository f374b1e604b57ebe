"""The one SED decoder, in both extents: DCASE frame edges and hear-eval-kit frame centres."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from atst_hear.tasks.decoding import FrameScores
from atst_hear.tasks.folder import Event


def hear_eval_kit_events(frames, median_filter_ms, min_duration, threshold=0.5):
    """heareval/score.py's decoding, written out plainly: median filter over a width of
    ``median_filter_ms`` / mean timestamp spacing, threshold, runs from first to last
    timestamp, runs shorter than ``min_duration`` dropped, events sorted by start."""
    events = {}
    for name, scores in frames.scores.items():
        stamps = np.asarray(frames.timestamps[name], float)
        probs = scores
        if median_filter_ms:
            width = int(round(median_filter_ms / float(np.mean(np.diff(stamps)))))
            probs = ndimage.median_filter(probs, size=(width, 1))
        found = []
        for label in range(probs.shape[1]):
            rows = np.flatnonzero(probs[:, label] > threshold)
            if not len(rows):
                continue
            for run in np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1):
                start, end = float(stamps[run[0]]), float(stamps[run[-1]])
                if end - start >= min_duration:
                    found.append(Event(frames.labels[label], start, end))
        events[name] = sorted(found, key=lambda e: e.start)
    return events


def test_hear_extent_by_hand():
    stamps = np.arange(10) * 100.0 + 50.0
    probs = np.zeros((10, 2))
    probs[1:4, 0] = 0.9  # a: frames 1-3 -> 150..350 ms, 200 ms long
    probs[6, 1] = 0.9  # b: one frame, removed by a 3-frame median filter
    probs[8:10, 1] = 0.6  # b: frames 8-9 -> 850..950 ms, 100 ms long
    frames = FrameScores(["a", "b"], 100.0, {"f.wav": probs}, {"f.wav": stamps})

    def decode(**settings):
        return frames.decode(0.5, extent="centres", **settings)["f.wav"]

    assert decode() == [
        Event("a", 150.0, 350.0),
        Event("b", 650.0, 650.0),
        Event("b", 850.0, 950.0),
    ]
    assert decode(min_duration_ms=125) == [Event("a", 150.0, 350.0)]
    smoothed = decode(median_filter_ms=300)
    assert Event("b", 650.0, 650.0) not in smoothed and Event("a", 150.0, 350.0) in smoothed
    # the DCASE extent spans frame edges and drops nothing of one frame
    assert frames.decode(0.5, {"f.wav": 1000.0})["f.wav"] == [
        Event("a", 100.0, 400.0),
        Event("b", 600.0, 700.0),
        Event("b", 800.0, 1000.0),
    ]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("median_filter_ms", "min_duration"), [(0, 0), (250, 125), (250, 250)])
def test_hear_extent_equals_hear_eval_kit_decoding(seed, median_filter_ms, min_duration):
    rng = np.random.default_rng(seed)
    hop = 40.0
    scores, stamps = {}, {}
    for index in range(4):
        n = int(rng.integers(20, 80))
        smooth = ndimage.uniform_filter1d(rng.random((n, 3)), size=5, axis=0)
        scores[f"{index}.wav"] = smooth
        stamps[f"{index}.wav"] = np.arange(n) * hop + hop / 2
    frames = FrameScores(["x", "y", "z"], hop, scores, stamps)
    ours = frames.decode(
        0.5, extent="centres", median_filter_ms=median_filter_ms, min_duration_ms=min_duration
    )
    assert ours == hear_eval_kit_events(frames, median_filter_ms, min_duration)


def test_unknown_extent_is_refused():
    frames = FrameScores(["a"], 10.0, {"f.wav": np.zeros((3, 1))}, {"f.wav": np.arange(3.0)})
    with pytest.raises(ValueError, match="unknown event extent 'middle'"):
        frames.decode(0.5, extent="middle")
