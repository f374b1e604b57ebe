"""Tables and plots from a benchmark output folder (``atst-hear report``).

Writes into the output folder:

* ``scores.csv``: one row per finished unit and test fold, every score, and where it came from
  (recipe, task checksum, toolkit version, git commit, machine);
* ``summary.md``: mean ± std and run count per (model, task, protocol) of the primary score, next
  to the matching published number with its protocol and source, the difference, and a flag
  where the protocols differ; failed and skipped units; provenance;
* ``plots/``: per-task bars against published values (error bars: std over runs), PSD-ROC
  curves of SED units, per-layer curves when a suite sweeps a model option (``n_blocks``).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..fileio import atomic_output, write_text_atomic
from . import provenance
from .leaderboard import with_seed_statistics, write_leaderboard
from .plots import chance_levels, plot_layer_curves, plot_psd_roc, plot_task_bars
from .protocols import PROTOCOLS, get_protocol
from .records import RESULT_FILE, UnitResult

REFERENCE_COLUMNS = (
    "model",  # the suite's model ``reference`` name (model family), or "unattributed"
    "task",  # the suite's task ``reference`` name
    "metric",
    "value",
    "plus_minus",
    "unit",  # percent | fraction
    "protocol",  # ours that reproduces the published recipe, or "not comparable"
    "published_protocol",  # the recipe as the source describes it
    "source",  # primary source, with file:line or table where possible
    "verified",  # yes: checked against that source; no: never shown as published
    "note",
)
_FIXED_COLUMNS = [
    "model",
    "model_reference",
    "variant_of",
    "variant",
    "task",
    "task_reference",
    "protocol",
    "seed",
    "fold",
    "metric",
    "value",
    "valid_source",
]
_PROVENANCE_COLUMNS = [
    "protocol_version",
    "map_convention",
    "params",
    "task_checksum",
    "checkpoint_sha256",
    "toolkit_version",
    "git_commit",
    "device",
    "gpu",
    "cpu",
    "elapsed_s",
    "unit_dir",
    "run_deviations",
]


# --- collecting -------------------------------------------------------------------------------
def collect_results(out: Path) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Rows of every finished unit's folds, and the units whose last attempt failed."""
    rows, failures = [], []
    for result_dir in sorted({p.parent for p in (out / "units").rglob("*.json")}):
        result_file, error_file = result_dir / RESULT_FILE, result_dir / "error.json"
        if result_file.is_file():
            rows += _rows(UnitResult.read(result_file), result_dir, out)
        elif error_file.is_file():
            failures.append(json.loads(error_file.read_text()))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, failures
    score_columns = sorted(
        c for c in frame.columns if c not in _FIXED_COLUMNS + _PROVENANCE_COLUMNS
    )
    return frame[_FIXED_COLUMNS + score_columns + _PROVENANCE_COLUMNS], failures


def _rows(result: UnitResult, unit_dir: Path, out: Path) -> list[dict[str, Any]]:
    model, task, recipe, prov = result.model, result.task, result.recipe, result.provenance
    rows = []
    for fold in result.folds:
        scores = dict(fold.scores)
        rows.append(
            {
                "model": result.unit.model,
                "model_reference": model.get("reference"),
                "variant_of": model.get("variant_of"),
                "variant": json.dumps(model.get("variant") or {}, sort_keys=True),
                "task": result.unit.task,
                "task_reference": task.get("reference"),
                "protocol": recipe.protocol,
                "seed": recipe.seed,
                "fold": fold.fold,
                "metric": fold.primary,
                "value": scores.get(fold.primary, math.nan),
                "valid_source": fold.valid_source,
                **scores,
                "protocol_version": recipe.version,
                "map_convention": recipe.map_convention,
                "params": json.dumps(recipe.params, sort_keys=True),
                "task_checksum": task.get("checksum"),
                "checkpoint_sha256": model.get("checkpoint_sha256"),
                "toolkit_version": prov.get("toolkit_version"),
                "git_commit": prov.get("git_commit"),
                "device": prov.get("machine", {}).get("device"),
                "gpu": prov.get("machine", {}).get("gpu"),
                "cpu": prov.get("machine", {}).get("cpu"),
                "elapsed_s": result.elapsed_s,
                "unit_dir": str(unit_dir.relative_to(out)),
                "run_deviations": "; ".join(fold.details.get("deviations") or []),
            }
        )
    return rows


# --- references -------------------------------------------------------------------------------
NOT_COMPARABLE = "not comparable"
UNATTRIBUTED = "unattributed"
VERIFIED = ("yes", "no")


def load_references(paths: list[Path]) -> pd.DataFrame:
    """Reference tables (see ``docs/benchmark.md``): every row names its model, the protocol of
    ours it compares with (or ``not comparable``), its source and whether it was checked."""
    frames = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"reference table {path} does not exist")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        missing = [c for c in REFERENCE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{path}: missing columns {missing}; expected {list(REFERENCE_COLUMNS)}"
            )
        for line, row in enumerate(frame.itertuples(), start=2):
            where = f"{path}:{line}"
            if row.unit not in ("percent", "fraction"):
                raise ValueError(f"{where}: unit must be 'percent' or 'fraction', got {row.unit!r}")
            if not row.model or row.model == "*":
                raise ValueError(
                    f"{where}: model must name the model the number belongs to "
                    f"(or {UNATTRIBUTED!r}), got {row.model!r}"
                )
            if row.protocol != NOT_COMPARABLE and row.protocol not in PROTOCOLS:
                raise ValueError(
                    f"{where}: protocol must be one of {sorted(PROTOCOLS)} or "
                    f"{NOT_COMPARABLE!r}, got {row.protocol!r}"
                )
            if row.verified not in VERIFIED:
                raise ValueError(f"{where}: verified must be 'yes' or 'no', got {row.verified!r}")
            if not row.source:
                raise ValueError(f"{where}: source is empty; every number needs its source")
            try:
                float(row.value)
            except ValueError:
                raise ValueError(f"{where}: value must be a number, got {row.value!r}") from None
        frame["file"] = str(path)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*REFERENCE_COLUMNS, "file"])
    return pd.concat(frames, ignore_index=True)


@dataclass
class Published:
    value: float
    plus_minus: str
    unit: str
    protocol: str  # as the source describes it
    source: str


def match_reference(references: pd.DataFrame, model, task, metric, protocol) -> Published | None:
    """The published number shown beside a result: a verified row of the same model family
    (the suite's ``reference`` name), task, metric and protocol. Unattributed, unverified and
    ``not comparable`` rows are never matched; neither is a row of another protocol."""
    if not model or not task or references.empty:
        return None
    rows = references[
        (references.model == model)
        & (references.task == task)
        & (references.metric == metric)
        & (references.protocol == protocol)
        & (references.verified == "yes")
        & (references.model != UNATTRIBUTED)
    ]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return Published(float(row.value), row.plus_minus, row.unit, row.published_protocol, row.source)


def deviations(protocol: str, rows: pd.DataFrame) -> list[str]:
    """How the results of one summary row depart from the published recipe of their protocol:
    the protocol's known deviations, parameters the suite set away from the published values,
    a file-level validation slice, a model variant and what the units reported themselves."""
    recipe = get_protocol(protocol)
    found = list(recipe.deviations)
    first = rows.iloc[0]
    params = json.loads(first.params) if isinstance(first.params, str) else {}
    for key in recipe.published_params:
        if key in params and params[key] != recipe.defaults[key]:
            found.append(f"{key} = {params[key]} (published: {recipe.defaults[key]})")
    if (rows["valid_source"] == "train-slice").any():
        found.append("validation slice drawn by file: the task records no groups")
    if _text(first.variant_of):
        found.append(f"model is a variant of {first.variant_of}")
    for reported in rows.get("run_deviations", pd.Series(dtype=object)).map(_text):
        found += [d for d in reported.split("; ") if d and d not in found]
    if "protocol_version" in rows and rows["protocol_version"].nunique() > 1:
        found.append("runs of different protocol versions are pooled")
    return found


# --- summary ----------------------------------------------------------------------------------
def summarise(frame: pd.DataFrame, references: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, task, protocol, metric): mean, std (ddof 1), n, published match and
    the deviations from the published recipe."""
    groups = []
    keys = ["model", "task", "protocol", "metric"]
    for (model, task, protocol, metric), rows in frame.groupby(keys, sort=True, dropna=False):
        values = rows["value"].astype(float)
        first = rows.iloc[0]
        published = match_reference(
            references, first.model_reference, first.task_reference, metric, protocol
        )
        scale = 100.0 if published is not None and published.unit == "percent" else 1.0
        mean = float(values.mean())
        found = deviations(protocol, rows)
        groups.append(
            {
                "model": model,
                "task": task,
                "protocol": protocol,
                "metric": metric,
                "map_convention": _text(first.get("map_convention")),
                "mean": mean,
                # d_prime is inf when a class is perfectly separated: no spread to report then
                "std": float(values.std())
                if len(values) > 1 and bool(values.map(math.isfinite).all())
                else math.nan,
                "n": int(len(values)),
                "valid_from_train": bool(
                    rows["valid_source"].astype(str).str.startswith("train-slice").any()
                ),
                "variant_of": first.variant_of,
                "variant": first.variant,
                "published": published.value if published else math.nan,
                "published_plus_minus": published.plus_minus if published else "",
                "published_unit": published.unit if published else "",
                "published_protocol": published.protocol if published else "",
                "published_source": published.source if published else "",
                "difference": mean * scale - published.value if published else math.nan,
                "deviates": bool(found),
                "deviations": "; ".join(found),
            }
        )
    return pd.DataFrame(groups)


def _text(value: Any) -> str:
    """A text cell of ``scores.csv`` (empty, not NaN, where older results lack it)."""
    return value if isinstance(value, str) else ""


def _fmt(value: float, scale: float = 1.0, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value * scale:.{digits}f}"


def summary_markdown(summary: pd.DataFrame, failures, skipped, run_info, plots) -> str:
    lines = [f"# Benchmark summary: {run_info.get('suite_name', '')}".rstrip(), ""]
    description = (run_info.get("suite_definition") or {}).get("description")
    if description:
        lines += [f"**{description}**", ""]
    with_published = bool(summary["published"].notna().any()) if len(summary) else False
    intro = (
        "Mean ± std over seeds × folds (n runs) of each task's primary score, and in brackets "
        "the 95 % confidence half-width over seeds (leaderboard.md). † marks results "
        "whose validation set is a seeded slice of the training data (the task has no "
        "validation split). ⚠ [k] marks a result whose recipe departs from the published one; "
        "the deviations are listed below the table. mAP names its convention: over all classes "
        "(hear-eval-kit, EVAR) or over the classes present in the evaluated split (ATST paper)."
    )
    header = "| model | task | protocol | metric | ours (mean ± std) | n | deviations |"
    if with_published:
        intro += (
            " A published number is shown only for the same model family, task, metric and "
            "protocol, from a verified source; it is in its own unit (percent or fraction) and "
            "*difference* is ours minus published in that unit."
        )
        header += " published | published protocol | source | difference |"
    lines += [intro, "", header, "|---" * header.count(" |") + "|"]
    notes: list[str] = []
    for row in summary.itertuples():
        scale = 100.0 if row.published_unit == "percent" else 1.0
        ours = f"{_fmt(row.mean, scale)} ± {_fmt(row.std, scale)}"
        ci95 = getattr(row, "ci95", math.nan)  # leaderboard.with_seed_statistics
        if isinstance(ci95, float) and math.isfinite(ci95):
            ours += f" [CI ± {_fmt(ci95, scale)}]"
        if row.valid_from_train:
            ours += " †"
        metric = row.metric
        if metric == "mAP" and row.map_convention:
            metric += f" ({row.map_convention})"
        marks = []
        for deviation in filter(None, str(row.deviations).split("; ")):
            if deviation not in notes:
                notes.append(deviation)
            marks.append(f"[{notes.index(deviation) + 1}]")
        flag = "⚠ " + " ".join(marks) if marks else "–"
        line = (
            f"| {row.model} | {row.task} | {row.protocol} | {metric} | {ours} | {row.n} | {flag} |"
        )
        if with_published:
            published = "–"
            if not math.isnan(row.published):
                published = f"{row.published:g}" + (
                    f" ± {row.published_plus_minus}" if row.published_plus_minus else ""
                )
                if row.published_unit == "percent":
                    published += " %"
            line += (
                f" {published} | {row.published_protocol} | {row.published_source} | "
                f"{_fmt(row.difference, 1.0, 2)} |"
            )
        lines.append(line)
    if notes:
        lines += ["", "## Deviations from the published recipes", ""]
        lines += [f"{k}. {note}" for k, note in enumerate(notes, start=1)]
    if failures:
        lines += ["", "## Failed units", "", "| unit | error |", "|---|---|"]
        lines += [f"| {f['unit']} | {str(f['error']).replace('|', '/')[:300]} |" for f in failures]
    if skipped:
        lines += [
            "",
            "## Skipped (protocol does not apply)",
            "",
            "| protocol | task | reason |",
            "|---|---|---|",
        ]
        lines += [f"| {s['protocol']} | {s['task']} | {s['reason']} |" for s in skipped]
    if plots:
        lines += ["", "## Plots", ""] + [f"- [{p}]({p})" for p in plots]
    prov = run_info.get("provenance") or provenance.collect()
    machine = prov.get("machine", {})
    lines += [
        "",
        "## Provenance",
        "",
        f"- toolkit: atst-hear {prov.get('toolkit_version')}, git commit "
        f"{prov.get('git_commit') or 'unknown'}{' (uncommitted changes)' if prov.get('git_dirty') else ''}",
        f"- machine: {machine.get('cpu')}; GPU: {machine.get('gpu') or 'none'}; device "
        f"{machine.get('device')}",
        f"- libraries: {', '.join(f'{k} {v}' for k, v in (prov.get('libraries') or {}).items())}",
        f"- suite: {run_info.get('suite', 'unknown')}; command: {' '.join(run_info.get('command', []))}",
        "- per-unit recipes (protocol version, hyper-parameters, seed), task checksums and "
        "provenance: `scores.csv` and `units/**/result.json`",
        "",
    ]
    return "\n".join(lines)


# --- entry point ------------------------------------------------------------------------------
def write_report(
    out: str | os.PathLike, references: list[str | os.PathLike] | None = None
) -> dict[str, Path]:
    """Write ``scores.csv``, ``summary.md`` and ``plots/`` for a benchmark output folder."""
    out = Path(out)
    if not (out / "units").is_dir():
        raise FileNotFoundError(f"{out}: not a benchmark output folder (no units/ inside)")
    run_info = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    status = (
        json.loads((out / "status.json").read_text()) if (out / "status.json").is_file() else {}
    )
    reference_paths = [
        Path(p) for p in (references if references is not None else run_info.get("references", []))
    ]
    frame, failures = collect_results(out)
    written = {}
    with atomic_output(out / "scores.csv") as tmp:
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_MINIMAL)
    written["scores"] = out / "scores.csv"
    plots: list[Path] = []
    summary = pd.DataFrame()
    if not frame.empty:
        summary = summarise(frame, load_references(reference_paths))
        plot_dir = out / "plots"
        plots = (
            plot_task_bars(summary, plot_dir, chance_levels(frame, out))
            + plot_psd_roc(frame, out, plot_dir)
            + plot_layer_curves(summary, plot_dir)
        )
    summary = with_seed_statistics(summary, frame)
    text = summary_markdown(
        summary if not summary.empty else pd.DataFrame(columns=_SUMMARY_EMPTY),
        failures,
        status.get("skipped", []),
        run_info,
        [str(p.relative_to(out)) for p in plots],
    )
    write_text_atomic(out / "summary.md", text)
    written["summary"] = out / "summary.md"
    written.update(
        write_leaderboard(out, summary, frame, failures, status.get("skipped", []), run_info)
    )
    return written


_SUMMARY_EMPTY = [
    "model",
    "task",
    "protocol",
    "metric",
    "map_convention",
    "mean",
    "std",
    "n",
    "valid_from_train",
    "published",
    "published_plus_minus",
    "published_unit",
    "published_protocol",
    "published_source",
    "difference",
    "deviates",
    "deviations",
]
