"""``result.json`` is one typed record, written by the runner and read back strictly."""

from __future__ import annotations

import json
import math

import pytest

from atst_hear.bench import planning, report
from atst_hear.bench.cache import ModelSpec, stable_hash
from atst_hear.bench.protocols.base import FoldResult
from atst_hear.bench.records import (
    RESULT_FILE,
    RESULT_FORMAT,
    RecipeRecord,
    ResultFileError,
    UnitIdentity,
    UnitResult,
)
from atst_hear.tasks.scores import MAP_ALL_CLASSES


def make_result(key_hash: str = "0" * 64) -> UnitResult:
    return UnitResult(
        unit=UnitIdentity("m/t/knn/seed-0/fold00", "m", "t", "knn", 0, "fold00"),
        key_hash=key_hash,
        model={"reference": "ATST-Frame", "checkpoint_sha256": "ab"},
        task={"path": "/tasks/t", "checksum": "cd"},
        recipe=RecipeRecord("knn", 2, "k nearest neighbours", MAP_ALL_CLASSES, {"k": 3}, 0),
        folds=(
            FoldResult(
                "fold00",
                {"top1_acc": 0.25, "mAP": math.nan, "d_prime": math.inf},
                "top1_acc",
                "valid",
                {"deviations": ["shortened"]},
            ),
        ),
        elapsed_s=1.5,
        provenance={"toolkit_version": "0.1.0", "machine": {"device": "cpu"}},
    )


def test_round_trip_through_the_file_keeps_every_field(tmp_path):
    result = make_result()
    path = tmp_path / RESULT_FILE
    result.write(path)
    data = json.loads(path.read_text())
    assert data["format"] == RESULT_FORMAT
    # JSON has no NaN / inf: they are stored as null and "inf"
    assert data["folds"][0]["scores"] == {"top1_acc": 0.25, "mAP": None, "d_prime": "inf"}
    loaded = UnitResult.read(path)
    assert loaded.folds[0].scores["top1_acc"] == 0.25 and math.isnan(loaded.folds[0].scores["mAP"])
    assert loaded.to_json() == data
    assert (loaded.unit, loaded.recipe, loaded.model, loaded.task) == (
        result.unit,
        result.recipe,
        result.model,
        result.task,
    )


def test_a_file_from_before_the_format_field_still_loads(tmp_path):
    data = make_result().to_json()
    del data["format"]
    path = tmp_path / RESULT_FILE
    path.write_text(json.dumps(data))
    assert UnitResult.read(path).format == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("key_hash"), "missing key_hash"),
        (lambda d: d.update(score=1.0), "unknown score"),
        (lambda d: d["recipe"].pop("map_convention"), "missing recipe.map_convention"),
        (lambda d: d["folds"][0].update(extra=1), r"unknown folds\[0\].extra"),
        (lambda d: d.update(folds={}), "'folds' must be a list"),
        (lambda d: d.update(unit="m/t"), "unit must be a JSON object"),
        (lambda d: d["folds"][0]["scores"].update(mAP="high"), "malformed unit result"),
        (lambda d: d.update(format=2), "result format 2, but this toolkit reads format 1"),
    ],
)
def test_a_malformed_result_names_the_file_and_the_field(tmp_path, change, message):
    data = make_result().to_json()
    change(data)
    path = tmp_path / RESULT_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=message) as caught:
        UnitResult.read(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_a_file_that_is_not_json_names_the_file(tmp_path):
    path = tmp_path / RESULT_FILE
    path.write_bytes(b'{"unit": ')
    with pytest.raises(ResultFileError, match=f"{path}: not a JSON file"):
        UnitResult.read(path)


def test_the_report_refuses_a_malformed_result_by_name(tmp_path):
    unit_dir = tmp_path / "units" / "m" / "t" / "knn" / "seed-0" / "fold00"
    unit_dir.mkdir(parents=True)
    data = make_result().to_json()
    data["recipe"]["protocol_version"] = data["recipe"].pop("version")  # a renamed key
    (unit_dir / RESULT_FILE).write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=f"{unit_dir / RESULT_FILE}: .*recipe.version"):
        report.collect_results(tmp_path)


def test_the_report_reads_what_the_record_holds(tmp_path):
    unit_dir = tmp_path / "units" / "m" / "t" / "knn" / "seed-0" / "fold00"
    unit_dir.mkdir(parents=True)
    make_result().write(unit_dir / RESULT_FILE)
    frame, failures = report.collect_results(tmp_path)
    row = frame.iloc[0]
    assert not failures and (row.model, row.task, row.protocol, row.seed) == ("m", "t", "knn", 0)
    assert (row.metric, row.value, row.protocol_version, row.elapsed_s) == (
        "top1_acc",
        0.25,
        2,
        1.5,
    )
    assert math.isnan(row.mAP) and row.d_prime == math.inf and row.run_deviations == "shortened"
    assert (row.task_checksum, row.checkpoint_sha256, row.device) == ("cd", "ab", "cpu")


def test_a_malformed_result_is_run_again(tmp_path, caplog):
    unit = planning.Unit(
        "m",
        ModelSpec("logmel", "atst_hear.bench.baselines"),
        "t",
        "/t",
        "knn",
        {"k": 10},
        0,
        "fold00",
    )
    path = unit.workdir(tmp_path) / RESULT_FILE
    path.parent.mkdir(parents=True)
    make_result(stable_hash(unit.key())).write(path)
    assert planning.is_done(unit, tmp_path)
    data = json.loads(path.read_text())
    del data["provenance"]
    path.write_text(json.dumps(data))
    assert not planning.is_done(unit, tmp_path)
    assert f"{path}: not a unit result" in caplog.text
