"""Event scores with sed_eval and hear-eval-kit's parameters; events are
``{file: [Event | {"label", "start", "end"}]}`` with times in milliseconds."""

from __future__ import annotations

import importlib
import warnings
from collections import ChainMap
from collections.abc import Sequence

from .folder import EventDict, EventLike, as_event


def import_quietly(name: str):
    """Import an evaluation library without dcase_util's pkg_resources deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        return importlib.import_module(name)


def _sed_eval():
    return import_quietly("sed_eval"), import_quietly("dcase_util.containers").MetaDataContainer


def _sed_eval_container(events: Sequence[EventLike], filename: str):
    _, MetaDataContainer = _sed_eval()

    rows = []
    for item in events:
        event = as_event(item)
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
