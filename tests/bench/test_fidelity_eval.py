"""Evaluation fidelity: grouped validation slices, mAP conventions, reference matching, result
and cache keys that carry the protocol and toolkit versions, deviation marks in the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from atst_hear.bench import cache as cache_module
from atst_hear.bench import planning, report, runner
from atst_hear.bench.cache import EmbeddingCache, ModelSpec, stable_hash
from atst_hear.bench.protocols import get_protocol
from atst_hear.bench.protocols.data import (
    VALID_SLICE_BY_FILE,
    VALID_SLICE_BY_GROUP,
    holdout_rotation,
)
from atst_hear.bench.records import RecipeRecord, UnitIdentity, UnitResult
from atst_hear.tasks.folder import GROUP_FILE, TaskFolder, TaskFolderError
from atst_hear.tasks.scores import MAP_ALL_CLASSES, MAP_PRESENT_CLASSES, clip_score, compute_scores
from atst_hear.tasks.validation import validate_task_folder
from atst_hear.tasks.writing import write_task_files

BASELINE = ModelSpec("logmel", "atst_hear.bench.baselines")
REFERENCE_HEADER = (
    "model,task,metric,value,plus_minus,unit,protocol,published_protocol,source,verified,note\n"
)


def add_groups(task_dir, size: int) -> dict[str, str]:
    """Group the files of every split in runs of ``size`` (clips cut from one recording)."""
    task = TaskFolder.open(task_dir)
    groups, flat = {}, {}
    for split in task.splits:
        names = sorted(task.split_labels(split))
        groups[split] = {n: f"{split}-rec{i // size}" for i, n in enumerate(names)}
        flat.update(groups[split])
    (task_dir / GROUP_FILE).write_text(json.dumps(groups))
    return flat


# --- grouped validation slices ----------------------------------------------------------------
def test_validation_slice_never_shares_a_group_with_train(make_task):
    task_dir = make_task("kfold", n_folds=4, n_eval=12)
    group_of = add_groups(task_dir, size=3)
    task = TaskFolder.open(task_dir)
    for seed in range(5):
        for fold in holdout_rotation(task, valid_fraction=0.2, valid_seed=seed):
            assert fold.valid_source == VALID_SLICE_BY_GROUP
            valid_groups = {group_of[f] for f in fold.valid.files}
            train_groups = {group_of[f] for f in fold.train.files}
            assert valid_groups and train_groups and not valid_groups & train_groups
            assert len(fold.valid.files) + len(fold.train.files) == 36
            # whole groups of 3 files, about a fifth of 36 files
            assert len(fold.valid.files) % 3 == 0 and 6 <= len(fold.valid.files) <= 9


def test_file_level_slice_without_groups_shares_recordings(make_task):
    """The old behaviour, kept only where a task records no groups, and named as such."""
    task_dir = make_task("kfold", n_folds=4, n_eval=12)
    task = TaskFolder.open(task_dir)
    folds = holdout_rotation(task, valid_fraction=0.2, valid_seed=0)
    assert {f.valid_source for f in folds} == {VALID_SLICE_BY_FILE}
    # had these files come in recordings of three, the file-level slice would split them
    group_of = add_groups(task_dir, size=3)
    valid_groups = {group_of[f] for f in folds[0].valid.files}
    assert valid_groups & {group_of[f] for f in folds[0].train.files}


def test_groups_are_validated_and_written_for_every_file(make_task, tmp_path):
    task_dir = make_task("kfold", n_folds=3, n_eval=6)
    add_groups(task_dir, size=2)
    assert not [p for p in validate_task_folder(task_dir) if p.severity == "error"]
    stored = json.loads((task_dir / GROUP_FILE).read_text())
    dropped = next(iter(stored["fold01"]))
    del stored["fold01"][dropped]
    stored["fold02"]["ghost.wav"] = "x"
    (task_dir / GROUP_FILE).write_text(json.dumps(stored))
    messages = [str(p) for p in validate_task_folder(task_dir) if p.severity == "error"]
    assert any("'fold01': 1 files have no group" in m and dropped in m for m in messages)
    assert any("grouped files are not in fold02.json" in m for m in messages)
    with pytest.raises(TaskFolderError, match="no group for 1 files of split 'fold01'"):
        TaskFolder.open(task_dir).groups("fold01")
    stored["fold00"][next(iter(stored["fold00"]))] = ""
    (task_dir / GROUP_FILE).write_text(json.dumps(stored))
    assert any("non-empty string" in str(p) for p in validate_task_folder(task_dir))

    task = TaskFolder.open(task_dir)
    labels = {s: task.split_labels(s) for s in task.splits}
    with pytest.raises(TaskFolderError, match="no group given for"):
        write_task_files(tmp_path / "copy", task.metadata, labels, task.labels, groups={})


# --- mAP conventions --------------------------------------------------------------------------
def test_map_conventions_differ_on_a_class_without_positives():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.5], [0.7, 0.3, 0.1], [0.1, 0.6, 0.2]])
    hear = clip_score("mAP", scores, targets, MAP_ALL_CLASSES)
    paper = clip_score("mAP", scores, targets, MAP_PRESENT_CLASSES)
    assert hear == pytest.approx(2 / 3)  # the absent class counts as AP 0
    assert paper == pytest.approx(1.0)  # audiossl's Metric drops the NaN class
    both = compute_scores(["top1_acc", "mAP"], scores, targets, map_convention=MAP_PRESENT_CLASSES)
    assert both == {"top1_acc": 1.0, "mAP": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="unknown mAP convention"):
        clip_score("mAP", scores, targets, "median")


def test_each_protocol_names_its_map_convention():
    assert get_protocol("paper-linear").map_convention == MAP_PRESENT_CLASSES
    assert get_protocol("finetune").map_convention == MAP_PRESENT_CLASSES
    for name in ("hear-mlp", "knn", "evar-linear"):
        assert get_protocol(name).map_convention == MAP_ALL_CLASSES


# --- reference table --------------------------------------------------------------------------
def write_references(tmp_path, rows: str):
    table = tmp_path / "ref.csv"
    table.write_text(REFERENCE_HEADER + rows)
    return report.load_references([table])


def test_only_a_verified_row_of_the_same_model_and_protocol_is_matched(tmp_path):
    refs = write_references(
        tmp_path,
        "unattributed,ESC-50,top1_acc,96.0,,percent,not comparable,headline,aggregator,no,\n"
        "ATST-Frame,ESC-50,top1_acc,90.9,0.6,percent,evar-linear,EVAR,EVAR README,yes,\n"
        "ATST-Frame,ESC-50,top1_acc,93.0,,percent,paper-linear,paper,survey,no,\n"
        "ATST-Clip,ESC-50,top1_acc,94.1,,percent,not comparable,headline,aggregator,yes,\n",
    )
    same = report.match_reference(refs, "ATST-Frame", "ESC-50", "top1_acc", "evar-linear")
    assert (same.value, same.protocol, same.source) == (90.9, "EVAR", "EVAR README")
    # another protocol, an unverified row, another model, a "not comparable" row: nothing
    assert report.match_reference(refs, "ATST-Frame", "ESC-50", "top1_acc", "knn") is None
    assert report.match_reference(refs, "ATST-Frame", "ESC-50", "top1_acc", "paper-linear") is None
    assert report.match_reference(refs, "ATST-Clip", "ESC-50", "top1_acc", "evar-linear") is None
    assert report.match_reference(refs, "ATST-Clip", "ESC-50", "top1_acc", "hear-mlp") is None
    assert report.match_reference(refs, "unattributed", "ESC-50", "top1_acc", "hear-mlp") is None
    assert report.match_reference(refs, None, "ESC-50", "top1_acc", "evar-linear") is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("*,ESC-50,top1_acc,94.1,,percent,evar-linear,x,src,yes,", "model must name the model"),
        ("M,ESC-50,top1_acc,94.1,,percent,L-EVAR,x,src,yes,", "protocol must be one of"),
        ("M,ESC-50,top1_acc,94.1,,percent,evar-linear,x,,yes,", "source is empty"),
        ("M,ESC-50,top1_acc,94.1,,percent,evar-linear,x,src,maybe,", "verified must be"),
        ("M,ESC-50,top1_acc,high,,percent,evar-linear,x,src,yes,", "value must be a number"),
    ],
)
def test_reference_rows_must_be_attributed(tmp_path, row, message):
    with pytest.raises(ValueError, match=rf"ref.csv:2: {message}"):
        write_references(tmp_path, row + "\n")


def test_shipped_reference_tables_attribute_every_row():
    from atst_hear.bench.suite import load_suite

    for name in ("paper", "hear"):
        refs = report.load_references(load_suite(name).references)
        assert "*" not in set(refs.model)
        verified = refs[refs.verified == "yes"]
        # verified rows come from primary sources, never from aggregators or surveys
        assert not verified.source.str.contains("secondary|aggregator|survey").any()
    paper = report.load_references(load_suite("paper").references)
    evar = paper[(paper.model == "ATST-Clip") & (paper.protocol == "evar-linear")]
    assert dict(zip(evar.task, evar.value.astype(float)))["ESC-50"] == 94.1
    audioset = paper[paper.task.str.startswith("AudioSet-")]
    assert {"AudioSet-20K", "AudioSet-2M"} <= set(audioset.task)
    assert (audioset.verified == "no").all()  # secondary sources only, never shown


# --- deviations in the report -----------------------------------------------------------------
def _one_row(protocol: str, params: dict, run_deviations: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["m"],
            "variant_of": [None],
            "protocol": [protocol],
            "valid_source": ["valid"],
            "protocol_version": [2],
            "params": [json.dumps(params)],
            "run_deviations": [run_deviations],
        }
    )


def test_finetune_and_sed_rows_name_their_deviations_from_the_official_recipe():
    """Fine-tuning tests the best validation epoch where the official code tests the last one,
    paper-linear on whole clips is not the official centre crop, and a changed sed value
    departs from the DCASE recipe: the report must say so rather than present the rows as the
    published recipe."""
    finetune = get_protocol("finetune")
    found = report.deviations("finetune", _one_row("finetune", finetune.defaults))
    assert any("best validation epoch" in d for d in found)
    found = report.deviations("finetune", _one_row("finetune", {"drop_path": 0.0}))
    assert "drop_path = 0.0 (published: 0.1)" in found
    linear = get_protocol("paper-linear")
    found = report.deviations("paper-linear", _one_row("paper-linear", {"crop_seconds": None}))
    assert "crop_seconds = None (published: 12.0)" in found
    assert not any(
        "crop" in d
        for d in report.deviations("paper-linear", _one_row("paper-linear", linear.defaults))
    )
    sed = get_protocol("sed")
    assert report.deviations("sed", _one_row("sed", sed.defaults)) == []
    found = report.deviations("sed", _one_row("sed", {**sed.defaults, "epochs": 10}))
    assert found == ["epochs = 10 (published: 100)"]


def test_summary_marks_and_names_deviations():
    frame = pd.DataFrame(
        {
            "model": ["m"] * 2 + ["m"] * 2,
            "model_reference": ["ATST-Frame"] * 4,
            "variant_of": [None] * 4,
            "variant": ["{}"] * 4,
            "task": ["t"] * 4,
            "task_reference": ["ESC-50"] * 4,
            "protocol": ["evar-linear"] * 2 + ["hear-mlp"] * 2,
            "seed": [42, 43, 0, 1],
            "fold": ["fold00"] * 4,
            "metric": ["top1_acc"] * 4,
            "value": [0.9, 0.91, 0.8, 0.81],
            "valid_source": ["train-slice"] * 2 + ["next-fold"] * 2,
            "protocol_version": [1] * 4,
            "map_convention": ["all-classes"] * 4,
            "params": [json.dumps({"epochs": 50})] * 2 + [json.dumps({"grid": "default"})] * 2,
            # what a unit reports about its own task (evar-linear: clips not cropped as EVAR)
            "run_deviations": ["evar-linear: clips are embedded whole"] * 2 + [""] * 2,
        }
    )
    refs = pd.DataFrame(
        [
            {
                "model": "ATST-Frame",
                "task": "ESC-50",
                "metric": "top1_acc",
                "value": "90.9",
                "plus_minus": "0.6",
                "unit": "percent",
                "protocol": "evar-linear",
                "published_protocol": "EVAR linear",
                "source": "EVAR README",
                "verified": "yes",
                "note": "",
            }
        ]
    )
    summary = report.summarise(frame, refs)
    evar = summary[summary.protocol == "evar-linear"].iloc[0]
    assert evar.published == 90.9 and evar.deviates
    assert "epochs = 50 (published: 200)" in evar.deviations
    assert "validation slice drawn by file" in evar.deviations
    assert "clips are embedded whole" in evar.deviations
    mlp = summary[summary.protocol == "hear-mlp"].iloc[0]
    assert not mlp.deviates and np.isnan(mlp.published)
    text = report.summary_markdown(summary, [], [], {"provenance": {}}, [])
    assert "## Deviations from the published recipes" in text
    assert "| m | t | hear-mlp | top1_acc | 0.805 ± 0.007 | 2 | – |" in text
    assert "epochs = 50 (published: 200)" in text and "⚠ [1] [2] [3] [4]" in text


# --- versioned keys ---------------------------------------------------------------------------
def test_unit_key_changes_with_protocol_and_toolkit_version(monkeypatch):
    unit = planning.Unit("m", BASELINE, "t", "/t", "knn", {"k": 10}, 0, "fold00")
    before = stable_hash(unit.key())
    knn = get_protocol("knn")
    monkeypatch.setattr(type(knn), "version", knn.version + 1)
    bumped = stable_hash(unit.key())
    assert bumped != before and unit.key()["protocol_version"] == knn.version
    monkeypatch.setattr(planning, "__version__", "99.0")
    assert stable_hash(unit.key()) not in (before, bumped)


def test_resumed_run_does_not_reuse_a_result_of_another_protocol_version(tmp_path, monkeypatch):
    unit = planning.Unit("m", BASELINE, "t", "/t", "knn", {"k": 10}, 0, "fold00")
    result = unit.workdir(tmp_path) / "result.json"
    result.parent.mkdir(parents=True)
    stored = UnitResult(
        UnitIdentity(unit.id, "m", "t", "knn", 0, "fold00"),
        stable_hash(unit.key()),
        {},
        {},
        RecipeRecord("knn", get_protocol("knn").version, "", MAP_ALL_CLASSES, {"k": 10}, 0),
        (),
        0.0,
        {},
    )
    stored.write(result)
    assert planning.is_done(unit, tmp_path)
    monkeypatch.setattr(type(get_protocol("knn")), "version", get_protocol("knn").version + 1)
    assert not planning.is_done(unit, tmp_path)


def test_embedding_cache_folder_changes_with_toolkit_version(make_task, tmp_path, monkeypatch):
    task = TaskFolder.open(make_task("multiclass"))
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    before = cache.split_dir(BASELINE, task, "train", "scene")
    monkeypatch.setattr(cache_module, "__version__", "99.0")
    after = cache.split_dir(BASELINE, task, "train", "scene")
    assert before != after and before.parent.name == after.parent.name


def test_scores_table_keeps_what_a_unit_reports_about_itself(tmp_path):
    unit_dir = tmp_path / "units" / "m" / "t" / "evar-linear" / "seed-42" / "fold00"
    unit_dir.mkdir(parents=True)
    fold = {
        "fold": "fold00",
        "primary": "top1_acc",
        "valid_source": VALID_SLICE_BY_GROUP,
        "scores": {"top1_acc": 0.5},
        "details": {"deviations": ["clips whole", "another"]},
    }
    result = {
        "unit": {
            "id": "m/t/evar-linear/seed-42/fold00",
            "model": "m",
            "task": "t",
            "protocol": "evar-linear",
            "seed": 42,
            "fold": "fold00",
        },
        "key_hash": "0" * 64,
        "model": {"reference": "ATST-Frame"},
        "task": {"reference": "VoxCeleb1"},
        "recipe": {
            "protocol": "evar-linear",
            "seed": 42,
            "version": 1,
            "description": "",
            "params": {},
            "map_convention": MAP_ALL_CLASSES,
        },
        "provenance": {},
        "folds": [fold],
        "elapsed_s": 0.0,
    }
    (unit_dir / "result.json").write_text(json.dumps(result))
    frame, _ = report.collect_results(tmp_path)
    row = frame.iloc[0]
    assert row.run_deviations == "clips whole; another" and row.map_convention == MAP_ALL_CLASSES
    summary = report.summarise(frame, report.load_references([]))
    assert summary.iloc[0].valid_from_train  # a grouped slice of train is still a slice
    assert "clips whole; another" in summary.iloc[0].deviations
    assert "validation slice drawn by file" not in summary.iloc[0].deviations


def test_runner_embeds_every_crop_a_unit_reads(make_task, tmp_path):
    task_dir = make_task("multiclass", name="spcv2_35", n_train=6, n_eval=3, duration=0.5)
    params = get_protocol("evar-linear").resolve_params({})
    unit = planning.Unit("m", BASELINE, "spcv2", str(task_dir), "evar-linear", params, 42, "test")
    specs = [spec for _, spec in runner._embedding_specs(unit)]
    assert [s.window_crop for s in specs] == [("random", 1.0), ("start", 1.0)]
    assert runner.compute_embeddings([unit], tmp_path, "cpu", progress=False) == {}
    cache = EmbeddingCache(tmp_path / "embeddings", progress=False)
    task = TaskFolder.open(task_dir)
    for spec in specs:
        assert (cache.split_dir(spec, task, "test", "scene") / "done.json").is_file()


def test_crops_of_one_model_share_one_loaded_model(make_task, tmp_path, monkeypatch):
    task = TaskFolder.open(make_task("multiclass", n_train=4, n_eval=2))
    loads = []
    original = ModelSpec.load

    def counting_load(self, device="cpu"):
        loads.append(self.key)
        return original(self, device)

    monkeypatch.setattr(ModelSpec, "load", counting_load)
    cache = EmbeddingCache(tmp_path / "cache", progress=False)
    for spec in (
        BASELINE,
        BASELINE.with_window_crop("start", 0.25),
        BASELINE.with_centre_crop(0.2),
    ):
        cache.get(spec, task, "train", "scene")
    assert len(loads) == 1
    params = get_protocol("paper-linear").resolve_params({})
    (spec,) = get_protocol("paper-linear").embedding_models(BASELINE, task, params)
    assert spec == BASELINE.with_centre_crop(params["crop_seconds"])
