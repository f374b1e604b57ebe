"""The leaderboard view of a benchmark and its machine-readable ``summary.json``.

``leaderboard.md`` has one table per protocol: a row per task, a column per model, each cell the
task's primary score as mean ± 95 % confidence half-width over seeds, the best mean of a row in
bold. ``summary.json`` holds every (model, task, protocol) group of ``summary.md`` with mean,
std, the per-seed means and the interval, the matching published number, failures and
provenance, for plotting and tables elsewhere.

The interval is over **seeds**: the folds of a k-fold task are averaged within each seed first
(they are different test sets, not repeated draws), then Student's t at 97.5 % with
``n_seeds - 1`` degrees of freedom gives ``t * std(seed means) / sqrt(n_seeds)``. With one seed
there is no interval (shown as "–", ``null`` in JSON).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..fileio import write_json_atomic, write_text_atomic

GROUP_KEYS = ["model", "task", "protocol", "metric"]
# lower is better for these primary scores; every other metric is higher-is-better
LOWER_IS_BETTER = {"segment_1s_er"}


def seed_statistics(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, protocol, metric): per-seed means, their count and the 95 % CI."""
    rows = []
    if frame.empty:
        return pd.DataFrame(columns=[*GROUP_KEYS, "seed_means", "n_seeds", "ci95"])
    for key, group in frame.groupby(GROUP_KEYS, sort=True, dropna=False):
        per_seed = group.groupby("seed")["value"].mean().astype(float)
        rows.append(
            {
                **dict(zip(GROUP_KEYS, key)),
                "seed_means": {int(s): float(v) for s, v in per_seed.items()},
                "n_seeds": int(len(per_seed)),
                "ci95": confidence_half_width(per_seed.tolist()),
            }
        )
    return pd.DataFrame(rows)


def confidence_half_width(values: list[float], level: float = 0.95) -> float:
    """Half-width of the Student-t interval of the mean; NaN for fewer than two finite values."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2 or len(finite) != len(values):
        return math.nan
    from scipy import stats

    n = len(finite)
    mean = sum(finite) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (n - 1))
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def with_seed_statistics(summary: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with the ``seed_means``, ``n_seeds`` and ``ci95`` columns joined in."""
    if summary.empty:
        return summary
    return summary.merge(seed_statistics(frame), on=GROUP_KEYS, how="left")


def _cell(mean: float, ci: float, scale: float) -> str:
    if not math.isfinite(mean):
        return "inf" if mean == math.inf else "–"
    text = f"{mean * scale:.3f}"
    return text + (f" ± {ci * scale:.3f}" if math.isfinite(ci) else "")


def leaderboard_markdown(summary: pd.DataFrame, title: str = "") -> str:
    """One table per protocol: tasks × models, primary score mean ± 95 % CI over seeds."""
    lines = [f"# Leaderboard{': ' + title if title else ''}", ""]
    if summary.empty:
        return "\n".join([*lines, "No finished units.", ""])
    lines += [
        "Primary score of each task, mean ± 95 % confidence half-width over seeds (Student t; "
        "k-fold tasks: folds averaged within a seed first; no ± with one seed). Best mean of "
        "a row in **bold**; † validation on a seeded slice of train; (n) seeds when they differ "
        "across a row. Scores are fractions, as our metrics return them.",
        "",
    ]
    models = list(dict.fromkeys(summary["model"]))
    for protocol, rows in summary.groupby("protocol", sort=True):
        present = [m for m in models if m in set(rows["model"])]
        lines += [f"## {protocol}", "", "| task | metric | " + " | ".join(present) + " |"]
        lines.append("|---" * (len(present) + 2) + "|")
        for (task, metric), cells in rows.groupby(["task", "metric"], sort=True):
            by_model = {r.model: r for r in cells.itertuples()}
            means = [by_model[m].mean for m in present if m in by_model]
            finite = [v for v in means if math.isfinite(v)]
            best = (min if metric in LOWER_IS_BETTER else max)(finite) if finite else None
            seed_counts = {
                int(by_model[m].n_seeds)
                for m in present
                if m in by_model and math.isfinite(by_model[m].n_seeds)
            }
            out = []
            for model in present:
                row = by_model.get(model)
                if row is None:
                    out.append("")
                    continue
                text = _cell(row.mean, row.ci95, 1.0)
                if row.valid_from_train:
                    text += " †"
                if len(seed_counts) > 1 and math.isfinite(row.n_seeds):
                    text += f" ({int(row.n_seeds)})"
                out.append(f"**{text}**" if best is not None and row.mean == best else text)
            lines.append(f"| {task} | {metric} | " + " | ".join(out) + " |")
        lines.append("")
    return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


SUMMARY_FIELDS = (
    "model",
    "task",
    "protocol",
    "metric",
    "mean",
    "std",
    "n",
    "ci95",
    "n_seeds",
    "seed_means",
    "valid_from_train",
    "variant_of",
    "variant",
    "published",
    "published_plus_minus",
    "published_unit",
    "published_protocol",
    "published_source",
    "difference",
    "protocol_mismatch",
)


def summary_document(
    summary: pd.DataFrame, failures: list, skipped: list, run_info: dict
) -> dict[str, Any]:
    """What ``summary.json`` holds (NaN as null, infinities as "inf" / "-inf")."""
    groups = []
    for row in summary.to_dict("records") if not summary.empty else []:
        entry = {name: row.get(name) for name in SUMMARY_FIELDS if name in row}
        if isinstance(entry.get("variant_of"), float):  # pandas' NaN for "not a sweep"
            entry["variant_of"] = None
        groups.append(entry)
    return _jsonable(
        {
            "suite": run_info.get("suite_name"),
            "suite_file": run_info.get("suite"),
            "interval": "95 % Student-t confidence half-width of the mean over seeds",
            "groups": groups,
            "failed": [{"unit": f.get("unit"), "error": str(f.get("error"))} for f in failures],
            "skipped": list(skipped),
            "provenance": run_info.get("provenance", {}),
        }
    )


def write_leaderboard(
    out: Path,
    summary: pd.DataFrame,
    frame: pd.DataFrame,
    failures: list,
    skipped: list,
    run_info: dict,
) -> dict[str, Path]:
    """Write ``leaderboard.md`` and ``summary.json``; return their paths."""
    if "ci95" not in summary.columns:
        summary = with_seed_statistics(summary, frame)
    write_text_atomic(
        out / "leaderboard.md", leaderboard_markdown(summary, run_info.get("suite_name", ""))
    )
    write_json_atomic(out / "summary.json", summary_document(summary, failures, skipped, run_info))
    return {"leaderboard": out / "leaderboard.md", "summary_json": out / "summary.json"}
