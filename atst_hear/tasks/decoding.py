"""Frame scores and the one SED decoder: runs of frames above a threshold become events.

Two conventions for an event's extent exist and both are kept, because each protocol's numbers
depend on its own: DCASE systems (the ``sed`` protocol, PSDS) span a run's frame edges, from
the first frame's start to the last frame's end; hear-eval-kit (``hear-mlp``) spans its frame
centres, from the first timestamp to the last (heareval/score.py, ``get_events_for_all_files``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .folder import Event

EXTENTS = ("edges", "centres")


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
        from scipy import ndimage

        return FrameScores(
            self.labels,
            self.hop_ms,
            {f: ndimage.median_filter(s, size=(frames, 1)) for f, s in self.scores.items()},
            self.timestamps,
        )

    def boundaries(self, filename: str, duration_ms: float | None = None) -> np.ndarray:
        """Frame edges in ms (``T + 1`` values), clipped to ``[0, duration_ms]``."""
        return frame_edges(self.timestamps[filename], self.hop_ms, duration_ms)

    def decode(
        self,
        threshold: float,
        durations_ms: Mapping[str, float] | None = None,
        *,
        extent: str = "edges",
        median_filter_ms: float = 0.0,
        min_duration_ms: float = 0.0,
    ) -> dict[str, list[Event]]:
        """Events from runs of frames above ``threshold``, ordered by start then class.

        ``extent`` is ``"edges"`` (DCASE: frame edges clipped to the clip's duration; empty runs
        dropped) or ``"centres"`` (hear-eval-kit: first to last frame centre, so a one-frame run
        is a zero-length event). Before thresholding, ``median_filter_ms`` smooths each class
        with a median filter as many frames long as that span over the mean timestamp spacing
        (hear-eval-kit's width); runs shorter than ``min_duration_ms`` are dropped.
        """
        if extent not in EXTENTS:
            raise ValueError(f"unknown event extent {extent!r}; expected one of {EXTENTS}")
        events: dict[str, list[Event]] = {}
        for filename, scores in self.scores.items():
            order = np.argsort(self.timestamps[filename], kind="stable")
            stamps = np.asarray(self.timestamps[filename], dtype=np.float64)[order]
            probs = np.asarray(scores)[order]
            if median_filter_ms and len(stamps) > 1:
                width = int(round(median_filter_ms / float(np.mean(np.diff(stamps)))))
                if width:
                    from scipy import ndimage

                    probs = ndimage.median_filter(probs, size=(width, 1))
            if extent == "edges":
                duration = None if durations_ms is None else durations_ms.get(filename)
                edges = frame_edges(stamps, self.hop_ms, duration)
                spans = [(c, edges[a], edges[b]) for c, a, b in active_runs(probs > threshold)]
                spans = [(c, a, b) for c, a, b in spans if b > a]
            else:
                spans = [
                    (c, stamps[a], stamps[b - 1]) for c, a, b in active_runs(probs > threshold)
                ]
            events[filename] = [
                Event(self.labels[c], float(start), float(end))
                for c, start, end in spans
                if end - start >= min_duration_ms
            ]
        return events


def frame_edges(centres, hop_ms: float, duration_ms: float | None = None) -> np.ndarray:
    """Edges in ms of frames ``hop_ms`` long around ``centres`` (``T + 1`` values), clipped to
    ``[0, duration_ms]``."""
    centres = np.asarray(centres, dtype=np.float64)
    edges = np.concatenate([centres - hop_ms / 2, centres[-1:] + hop_ms / 2])
    edges = np.clip(edges, 0.0, None)
    if duration_ms is not None:
        edges = np.minimum(edges, duration_ms)
    return edges


def active_runs(active: np.ndarray) -> list[tuple[int, int, int]]:
    """``(class, first_frame, end_frame_exclusive)`` of every run of True in a ``[T, C]`` mask,
    ordered by first frame then class."""
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
